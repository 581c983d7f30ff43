"""IBM Quantum backends: fake ones (real calibrations, run locally on Aer) and the real service.

Credentials come from ``QISKIT_IBM_TOKEN`` / ``QISKIT_IBM_INSTANCE`` or from an account saved
with ``QiskitRuntimeService.save_account``. The token is passed straight to the service and
never printed, logged or written to a run folder.
"""

from __future__ import annotations

import logging
import os
import warnings

from ..errors import QkdError

TOKEN_ENV, INSTANCE_ENV = "QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE"


def is_fake(name: str) -> bool:
    return name.startswith("fake_")


def _provider():
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    with warnings.catch_warnings():  # some fake devices warn that their numbers are not typical
        warnings.simplefilter("ignore")
        return FakeProviderForBackendV2()


def fake_backend_names() -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sorted(b.name for b in _provider().backends())


def fake_backend(name: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _provider().backend(name)
    except Exception:  # noqa: BLE001 - qiskit raises its own error type for unknown names
        raise QkdError(f"unknown IBM fake backend {name!r}; e.g. fake_manila (5 qubits), fake_brisbane "
                       f"(127); all: {', '.join(fake_backend_names())}") from None


def aer(noise: str | None = None):
    """An Aer simulator: noiseless, or with the noise model, basis gates and coupling map of fake
    backend ``noise``."""
    from qiskit_aer import AerSimulator

    return AerSimulator() if noise is None else AerSimulator.from_backend(fake_backend(noise))


def noise_model(backend):
    """The noise model a fake backend runs its own jobs with (``ibm:<fake>``): gate errors, and
    readout errors from its calibrations, asymmetric (P(1|0) != P(0|1)), which Aer's
    ``NoiseModel.from_backend`` would make symmetric."""
    from qiskit_aer.noise import NoiseModel

    if getattr(backend.options, "noise_model", None) is None and hasattr(backend, "_setup_sim"):
        backend._setup_sim()  # qiskit-ibm-runtime builds it on the first run
    return getattr(backend.options, "noise_model", None) or NoiseModel.from_backend(backend)


def check_fits(backend, n_qubits: int) -> None:
    if n_qubits > backend.num_qubits:
        raise QkdError(f"{backend.name} has {backend.num_qubits} qubits; the student needs {n_qubits}")


def credentials() -> dict[str, str]:
    """Keyword arguments for QiskitRuntimeService, or a one-line error naming both ways to provide them."""
    token, instance = os.environ.get(TOKEN_ENV), os.environ.get(INSTANCE_ENV)
    if token:
        kw = {"channel": "ibm_quantum_platform", "token": token}
        if instance:
            kw["instance"] = instance
        return kw
    from qiskit_ibm_runtime.accounts import AccountManager

    try:
        AccountManager.get()
        return {}
    except Exception:  # noqa: BLE001 - no saved account, or an unreadable one
        raise QkdError(f"no IBM Quantum credentials: set {TOKEN_ENV} (and {INSTANCE_ENV}) or save an account "
                       f"once with QiskitRuntimeService.save_account(token=..., instance=...)") from None


def redact(text: str) -> str:
    """``text`` with the IBM token, if one is set, replaced: for messages that quote the service."""
    token = os.environ.get(TOKEN_ENV)
    return text.replace(token, "***") if token else text


def runtime_service():
    """The IBM Quantum service of the credentials (``credentials``); tests put a fake one here."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    return QiskitRuntimeService(**credentials())


def real_backend(name: str, n_qubits: int):
    """(service, backend) for ``ibm:<name>`` or ``ibm:least_busy``, or a one-line refusal."""
    credentials()
    logging.getLogger("qiskit_ibm_runtime").setLevel(logging.ERROR)  # its account notices are not ours to print
    try:
        service = runtime_service()
        hw = (service.least_busy(operational=True, simulator=False, min_num_qubits=n_qubits)
              if name == "least_busy" else service.backend(name))
    except QkdError:
        raise
    except Exception as exc:  # noqa: BLE001 - network, auth or name errors from the service
        detail = redact((str(exc).splitlines() or [""])[0][:200])  # never echo the token, whatever the service says
        raise QkdError(f"IBM Quantum service refused or could not be reached for backend {name!r} "
                       f"({type(exc).__name__}: {detail})") from None
    check_fits(hw, n_qubits)
    return service, hw
