"""Random circuits over every gate and template qkd.fused's fast path accepts: the differential
tests of the device (tests/devices) and of traced layers (tests/circuits) draw from the same
family."""

from __future__ import annotations

import random

import pennylane as qml

ONE_QUBIT_PARAMETRIC = [(qml.RX, 1), (qml.RY, 1), (qml.RZ, 1), (qml.PhaseShift, 1), (qml.Rot, 3), (qml.U3, 3),
                        (qml.U2, 2)]
ONE_QUBIT_FIXED = [qml.Hadamard, qml.PauliX, qml.PauliY, qml.PauliZ, qml.S, qml.T, qml.SX, qml.Identity]
TWO_QUBIT_FIXED = [qml.CNOT, qml.CZ, qml.CY, qml.SWAP, qml.ISWAP, qml.ECR]
TWO_QUBIT_PARAMETRIC = [(qml.CRX, 1), (qml.CRY, 1), (qml.CRZ, 1), (qml.IsingXX, 1), (qml.IsingZZ, 1),
                        (qml.ControlledPhaseShift, 1)]


def random_circuit(rng: random.Random, opt: random.Random, n: int):
    """A circuit function of (x, w) and the sizes of x and w. ``rng`` draws the structure (gates,
    wires, parameter sources), ``opt`` every option: the same ``rng`` seed with another ``opt``
    seed gives a circuit that differs only in template and gate options."""
    ops, nx, nw = [], 0, 0

    def take_x(k):
        nonlocal nx
        nx += k
        return slice(nx - k, nx)

    def take_w(k):
        nonlocal nw
        nw += k
        return slice(nw - k, nw)

    if rng.random() < 0.3:
        k, pad = rng.choice([2**n, max(1, 2**n - 3)]), opt.choice([0.0, 0.2])
        s = take_x(k)
        ops.append(lambda x, w, s=s, pad=pad: qml.AmplitudeEmbedding(x[..., s].abs() + 0.1, wires=range(n),
                                                                      normalize=True, pad_with=pad))
    for _ in range(rng.randint(3, 9)):
        wires = rng.sample(range(n), n)
        r = rng.random()
        if r < 0.12:
            k, rot = rng.randint(1, n), opt.choice("XYZ")
            s = take_x(k)
            ops.append(lambda x, w, s=s, rot=rot, wires=wires: qml.AngleEmbedding(x[..., s], wires=wires,
                                                                                  rotation=rot))
        elif r < 0.22:
            layers, ranges = rng.randint(1, 2), None
            if n > 1 and opt.random() < 0.5:
                ranges = tuple(opt.randint(1, n - 1) for _ in range(layers))
            imprimitive = opt.choice([qml.CNOT, qml.CZ])
            s = take_w(layers * n * 3)
            ops.append(lambda x, w, s=s, layers=layers, ranges=ranges, imp=imprimitive, wires=wires:
                       qml.StronglyEntanglingLayers(w[s].reshape(layers, n, 3), wires=wires, ranges=ranges,
                                                    imprimitive=imp))
        elif r < 0.3:
            layers, rot = rng.randint(1, 2), opt.choice([qml.RX, qml.RY, qml.RZ])
            s = take_w(layers * n)
            ops.append(lambda x, w, s=s, layers=layers, rot=rot, wires=wires:
                       qml.BasicEntanglerLayers(w[s].reshape(layers, n), wires=wires, rotation=rot))
        elif r < 0.6:
            gate, k = rng.choice(ONE_QUBIT_PARAMETRIC)
            src = rng.randint(0, 1)  # 0: from the batched input x, 1: from the weights w
            s = take_x(k) if src == 0 else take_w(k)
            ops.append(lambda x, w, g=gate, s=s, src=src, wire=wires[0]: g(*[(x, w)[src][..., i]
                                                                              for i in range(s.start, s.stop)],
                                                                            wires=wire))
        elif r < 0.72:
            gate = rng.choice(ONE_QUBIT_FIXED)
            ops.append(lambda x, w, g=gate, wire=wires[0]: g(wires=wire))
        elif n > 1 and r < 0.84:
            gate = rng.choice(TWO_QUBIT_FIXED)
            ops.append(lambda x, w, g=gate, wires=wires[:2]: g(wires=wires))
        elif n > 1 and r < 0.92:
            gate, k = rng.choice(TWO_QUBIT_PARAMETRIC)
            s = take_w(k)
            ops.append(lambda x, w, g=gate, s=s, wires=wires[:2]: g(w[s.start], wires=wires))
        elif n > 2:
            gate = rng.choice([qml.Toffoli, qml.CSWAP, "mcx"])
            if gate == "mcx":
                values = [opt.randint(0, 1) for _ in range(2)]
                ops.append(lambda x, w, wires=wires[:3], v=values: qml.MultiControlledX(wires=wires,
                                                                                         control_values=v))
            else:
                ops.append(lambda x, w, g=gate, wires=wires[:3]: g(wires=wires))
    kind = rng.choice(["z", "zz", "probs", "mixed"])
    mw = opt.sample(range(n), min(n, 2))

    def measure():
        if kind == "z":
            return [qml.expval(qml.PauliZ(i)) for i in range(n)]
        if kind == "zz" and n > 1:
            return [qml.expval(qml.PauliZ(mw[0]) @ qml.PauliZ(mw[1]))]
        if kind == "probs":
            return [qml.probs(wires=mw)]
        return [qml.expval(qml.PauliZ(mw[0])), qml.probs(wires=mw[::-1])]

    def circuit(x, w):
        for op in ops:
            op(x, w)
        return measure()

    return circuit, max(nx, 1), max(nw, 1)
