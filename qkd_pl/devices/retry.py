"""Bounded retries with exponential backoff for jobs on remote (IBM) and shot-based devices.

A job on IBM Quantum can fail, time out or be cancelled for reasons that have nothing to do
with the circuit (queue limits, calibration windows, network). Retrying the same batch a few
times with growing pauses rides those out; past the bound the caller stops with a clear error
and keeps what finished, rather than retrying forever or losing an hour of finished batches.
Errors that retrying cannot fix (bad credentials, invalid input) are not retried.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")

ATTEMPTS = 4
BASE_DELAY_S = 5.0


def retryable_errors() -> tuple[type[BaseException], ...]:
    """Job failures, timeouts and cancellations from qiskit and qiskit-ibm-runtime, and network faults."""
    errors: list[type[BaseException]] = [TimeoutError, ConnectionError]
    try:
        from qiskit.providers import JobError, JobTimeoutError

        errors += [JobError, JobTimeoutError]
    except ImportError:
        pass
    try:
        from qiskit_ibm_runtime import exceptions as rt

        errors += [rt.RuntimeJobFailureError, rt.RuntimeJobTimeoutError, rt.RuntimeJobMaxTimeoutError,
                   rt.RuntimeInvalidStateError, rt.IBMRuntimeError, rt.JobError, rt.JobTimeoutError]
        from qiskit_ibm_runtime.api.exceptions import RequestsApiError  # the service's HTTP errors

        errors.append(RequestsApiError)  # a refused request ends in one line after the retries, not a traceback
    except ImportError:
        pass
    return tuple(errors)


class RetriesExhausted(Exception):
    """The last error after ``attempts`` tries; carries it for the caller's message."""

    def __init__(self, attempts: int, last: BaseException):
        first_line = (str(last).splitlines() or [""])[0][:200]
        super().__init__(f"{attempts} attempts failed; last: {type(last).__name__}: {first_line}")
        self.attempts, self.last = attempts, last


def with_retries(fn: Callable[[], T], attempts: int = ATTEMPTS, base_delay_s: float = BASE_DELAY_S,
                 on_retry: Callable[[int, BaseException, float], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()``, retried on retryable errors after base_delay_s * 2^k seconds; RetriesExhausted past the bound."""
    errors = retryable_errors()
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except errors as exc:
            if attempt == attempts:
                raise RetriesExhausted(attempts, exc) from exc
            delay = base_delay_s * 2 ** (attempt - 1)
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")
