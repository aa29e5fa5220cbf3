"""SingleFlight with real threads: overlapping callers of a key share one load, or its error."""

from __future__ import annotations

import threading
import time

import pytest

from hushtune.services.common.single_flight import SingleFlight
from tests.threads import together

CALLERS = 8


class SlowLoad:
    """A load that takes a while and counts how often it ran (from any thread)."""

    def __init__(self, value: str = "loaded", error: Exception | None = None) -> None:
        self.runs = 0
        self._lock = threading.Lock()
        self._value, self._error = value, error

    def __call__(self) -> str:
        with self._lock:
            self.runs += 1
        time.sleep(0.3)
        if self._error is not None:
            raise self._error
        return self._value


def test_overlapping_callers_share_one_load() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    load = SlowLoad()
    results = together(CALLERS, lambda _: flights.run("v1", load))
    assert load.runs == 1, f"{CALLERS} simultaneous misses ran {load.runs} loads"
    assert results == ["loaded"] * CALLERS, results
    assert flights.in_flight() == 0


def test_different_keys_load_separately() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    loads = {key: SlowLoad(key) for key in ("a", "b")}
    results = together(CALLERS, lambda _: [flights.run(k, loads[k]) for k in ("a", "b")])
    assert [load.runs for load in loads.values()] == [1, 1], loads
    assert results == [["a", "b"]] * CALLERS, results


def test_an_error_reaches_every_waiting_caller_and_is_not_remembered() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    failing = SlowLoad(error=LookupError("version gone"))
    results = together(CALLERS, lambda _: flights.run("v1", failing))
    assert failing.runs == 1, failing.runs
    assert all(isinstance(r, LookupError) and "version gone" in str(r) for r in results), results
    assert flights.run("v1", SlowLoad("second try")) == "second try"


def test_a_call_after_the_flight_loads_again() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    load = SlowLoad()
    assert flights.run("v1", load) == "loaded"
    assert flights.run("v1", load) == "loaded"
    assert load.runs == 2, "SingleFlight is not a cache: the caller's cache keeps results"


def test_a_keyboard_interrupt_in_the_load_still_ends_the_flight() -> None:
    flights: SingleFlight[str, str] = SingleFlight()

    def interrupted() -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        flights.run("v1", interrupted)
    assert flights.in_flight() == 0
