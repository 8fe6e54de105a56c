"""The per-provider circuit, on a fake clock: opens after repeated connection failures, lets
one probe through at a time (doubling the wait), closes on any answer, gives up in the end."""

from __future__ import annotations

import pytest

from imuzekit import errors
from imuzekit.batch._workers_outage import Circuit, OutagePolicy, ServiceDown

REFUSED = errors.TransportError("connection refused", sent=False)
POLICY = OutagePolicy(threshold=3, first_probe=1.0, max_probe=4.0, give_up_after=20.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _circuit() -> tuple[Circuit, Clock]:
    clock = Clock()
    return Circuit("imuze", POLICY, clock=clock, sleep=clock.sleep), clock


async def test_closed_until_three_connection_failures_in_a_row() -> None:
    circuit, _ = _circuit()
    assert circuit.failed(REFUSED) and circuit.failed(REFUSED)
    assert not circuit.is_open
    assert circuit.failed(errors.ServerError("boom", status=500)) is False  # an answer
    assert circuit.failures == 0
    for _ in range(3):
        circuit.failed(REFUSED)
    assert circuit.is_open and circuit.opened_at == 100.0


async def test_one_probe_at_a_time_with_doubling_waits_then_closed_by_an_answer() -> None:
    circuit, clock = _circuit()
    for _ in range(3):
        circuit.failed(REFUSED)
    assert await circuit.admit() is True  # after the first wait (1 s)
    assert clock.now == pytest.approx(101.0)
    circuit.failed(REFUSED, probe=True)  # still down: next probe in 2 s
    assert await circuit.admit() is True
    assert clock.now == pytest.approx(103.0)
    circuit.failed(REFUSED, probe=True)  # next in 4 s (the maximum)
    assert await circuit.admit() is True
    assert clock.now == pytest.approx(107.0)
    circuit.failed(errors.NotFoundError("gone", status=404), probe=True)  # it answered
    assert not circuit.is_open
    assert await circuit.admit() is False  # closed: every step goes at once


async def test_gives_up_after_the_limit() -> None:
    circuit, clock = _circuit()
    for _ in range(3):
        circuit.failed(REFUSED)
    clock.now += 20.0
    with pytest.raises(ServiceDown, match="imuze has not been reachable for 20 s"):
        await circuit.admit()
