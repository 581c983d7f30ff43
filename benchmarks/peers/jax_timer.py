"""Times the peers' training step in JAX and prints JSON, like step_timer.py; run by compare_peers.py.

Usage: python jax_timer.py {pennylane-jax,tensorcircuit} QUBITS BATCH STEPS {64,32}

The same student as step_timer.py (reference.py): FC, amplitude encoding, 2 x (RX RY RZ on every
qubit + CNOT ring), <Z>, linear head; one step is forward, cross-entropy, backward and an Adam
update (optax), the whole step under one ``jax.jit``. ``64``: float64 / complex128; ``32``:
float32 / complex64. Before timing, the logits on the shared weights must match reference.py.
The first (compiling) step is timed apart and reported as ``compile_s``.
"""

import json
import statistics
import sys
import time

import numpy as np

from reference import CLASSES, LAYERS, check, shared


def pennylane_circuit(n: int):
    import pennylane as qml

    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="jax", diff_method="backprop")
    def circuit(features, rot):
        qml.AmplitudeEmbedding(features, wires=range(n), normalize=True)
        for layer in range(LAYERS):
            for w in range(n):
                qml.RX(rot[layer, w, 0], wires=w)
                qml.RY(rot[layer, w, 1], wires=w)
                qml.RZ(rot[layer, w, 2], wires=w)
            for control, target in ([(0, 1)] if n == 2 else [(w, (w + 1) % n) for w in range(n)] if n > 2 else []):
                qml.CNOT(wires=[control, target])
        return [qml.expval(qml.PauliZ(w)) for w in range(n)]

    import jax.numpy as jnp

    return lambda f, rot: jnp.stack(circuit(f, rot), axis=-1)


def tensorcircuit_circuit(n: int, bits: str):
    import jax
    import jax.numpy as jnp
    import tensorcircuit as tc

    tc.set_backend("jax")
    tc.set_dtype("complex128" if bits == "64" else "complex64")

    def one(f, rot):
        c = tc.Circuit(n, inputs=f / jnp.linalg.norm(f))
        for layer in range(LAYERS):
            for w in range(n):
                c.rx(w, theta=rot[layer, w, 0])
                c.ry(w, theta=rot[layer, w, 1])
                c.rz(w, theta=rot[layer, w, 2])
            for control, target in ([(0, 1)] if n == 2 else [(w, (w + 1) % n) for w in range(n)] if n > 2 else []):
                c.cnot(control, target)
        return jnp.stack([jnp.real(c.expectation_ps(z=[w])) for w in range(n)])

    return jax.vmap(one, in_axes=(0, None))


def main() -> None:
    who, n, batch, steps, bits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    import jax

    jax.config.update("jax_enable_x64", bits == "64")
    import jax.numpy as jnp
    import optax

    real = jnp.float64 if bits == "64" else jnp.float32
    circuit = pennylane_circuit(n) if who == "pennylane-jax" else tensorcircuit_circuit(n, bits)
    p = shared(n, batch)
    params = {k: jnp.asarray(p[k], dtype=real) for k in ("fc_w", "fc_b", "rot", "head_w", "head_b")}
    x, y = jnp.asarray(p["x"], dtype=real), jnp.asarray(p["y"])

    def forward(params, x):
        z = circuit(x @ params["fc_w"].T + params["fc_b"], params["rot"]).astype(real)
        return z @ params["head_w"].T + params["head_b"]

    error = check(f"{who} {bits}", np.asarray(jax.jit(forward)(params, x)), p, 1e-9 if bits == "64" else 1e-4)
    opt = optax.adam(1e-3)

    @jax.jit
    def step(params, state, x, y):
        def loss(params):
            return optax.softmax_cross_entropy_with_integer_labels(forward(params, x), y).mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    state = opt.init(params)
    t0 = time.perf_counter()
    params, state, value = step(params, state, x, y)
    value.block_until_ready()
    compile_s = time.perf_counter() - t0
    for _ in range(3):
        params, state, value = step(params, state, x, y)
    value.block_until_ready()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        params, state, value = step(params, state, x, y)
        value.block_until_ready()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"who": who, "bits": bits, "qubits": n, "batch": batch, "classes": CLASSES,
                      "samples_per_s": batch / statistics.median(times), "steps": steps, "error": error,
                      "compile_s": compile_s}))


if __name__ == "__main__":
    main()
