"""Bounded retries with exponential backoff, only for errors that retrying can fix."""

import pytest
from qiskit.providers import JobError, JobTimeoutError
from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError, RuntimeInvalidStateError

from qkd_pl.devices.retry import RetriesExhausted, with_retries


def failing(times: int, error: Exception):
    calls = {"n": 0}

    def fn():
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return "done"

    return fn, calls


@pytest.mark.parametrize("error", [JobError("failed"), JobTimeoutError("timed out"),
                                   RuntimeInvalidStateError("job was cancelled"), ConnectionError("reset")])
def test_transient_failures_are_retried_with_growing_pauses(error):
    fn, calls = failing(2, error)
    pauses, seen = [], []
    assert with_retries(fn, attempts=4, base_delay_s=3, sleep=pauses.append,
                        on_retry=lambda attempt, exc, delay: seen.append((attempt, type(exc)))) == "done"
    assert calls["n"] == 3 and pauses == [3, 6] and seen == [(1, type(error)), (2, type(error))]


def test_past_the_bound_the_last_error_is_reported():
    fn, calls = failing(10, JobError("queue full"))
    pauses = []
    with pytest.raises(RetriesExhausted, match="3 attempts failed; last: JobError: .*queue full"):
        with_retries(fn, attempts=3, base_delay_s=1, sleep=pauses.append)
    assert calls["n"] == 3 and pauses == [1, 2]


def test_errors_retrying_cannot_fix_are_not_retried():
    for error in (IBMNotAuthorizedError("bad token"), ValueError("bad input")):
        fn, calls = failing(1, error)
        with pytest.raises(type(error)):
            with_retries(fn, attempts=4, base_delay_s=0, sleep=lambda s: None)
        assert calls["n"] == 1


def test_the_services_http_errors_are_retried_then_end_in_one_line():
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError

    from qkd_pl.devices import retry

    calls = []

    def flaky():
        calls.append(1)
        raise RequestsApiError("503 Service Unavailable")

    with pytest.raises(retry.RetriesExhausted, match="RequestsApiError"):
        retry.with_retries(flaky, attempts=3, base_delay_s=0.0, sleep=lambda s: None)
    assert len(calls) == 3
