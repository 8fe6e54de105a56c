"""A dead service stops being hammered: a circuit per provider that pauses and probes.

A batch of thousands of lines against a service that went away would otherwise try every
line, each after the pipeline's own retries, and fail them one after another. The runner
puts each network step of a line (create, wait, download) through the provider's
`Circuit` instead:

- **closed** (the normal case): every step goes; a connection failure (`TransportError`) is
  counted, any answer from the service resets the count.
- **open**: after ``threshold`` connection failures in a row, nothing goes. The lines wait
  (keeping their leases), and after ``first_probe`` seconds **one** step is let through as a
  probe; it fails: the next probe comes twice as late (at most ``max_probe``); it gets an
  answer: the circuit closes and every waiting line goes on.
- After ``give_up_after`` seconds open, waiting steps raise `ServiceDown`: the run stops
  working on that provider's lines and leaves them where they are (``pending`` lines were
  never sent; the next run takes them up).

The circuit never decides what a failed create means: a create that failed before it was
sent goes back to ``pending``, one that may have been sent stays ``submitting`` and is
reconciled, exactly as without it. Pure: the clock and the sleep are injected.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio
import attrs

from imuzekit import errors

__all__ = ["Circuit", "Outages", "ServiceDown", "is_connection_failure"]


class ServiceDown(errors.TransportError):
    """A provider has answered nothing for longer than the run waits (``give_up_after``)."""


def is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the service could not be reached (not what it answered)."""
    if isinstance(exc, BaseExceptionGroup):
        return any(is_connection_failure(inner) for inner in exc.exceptions)
    return isinstance(exc, errors.TransportError) and not isinstance(exc, ServiceDown)


@attrs.frozen
class OutagePolicy:
    """When a provider's circuit opens, how it probes, and when the run gives up on it."""

    threshold: int = 3
    """Connection failures in a row that open the circuit."""
    first_probe: float = 1.0
    """Seconds from opening to the first probe; each failed probe doubles the wait."""
    max_probe: float = 30.0
    """The longest wait between two probes."""
    give_up_after: float | None = 600.0
    """Seconds open after which waiting steps raise `ServiceDown` (None: wait forever)."""


class Circuit:
    """One provider's circuit (see the module docstring)."""

    def __init__(
        self,
        provider: str,
        policy: OutagePolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.provider = provider
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self.failures = 0
        """Connection failures in a row."""
        self.opened_at: float | None = None
        """When the circuit opened (None: closed)."""
        self.probes = 0
        """Probes let through since it opened."""
        self._next_probe = 0.0
        self._probing = False
        self._wait = policy.first_probe

    @property
    def is_open(self) -> bool:
        """Whether steps are held back now."""
        return self.opened_at is not None

    async def admit(self) -> bool:
        """Wait until a step may go; True when this step is the probe (report its outcome
        with `succeeded` or `failed`). `ServiceDown` once the run gives up."""
        while self.opened_at is not None:
            now = self._clock()
            limit = self.policy.give_up_after
            if limit is not None and now - self.opened_at >= limit:
                raise ServiceDown(
                    f"{self.provider} has not been reachable for {now - self.opened_at:.0f} s "
                    f"({self.failures} connection failures in a row); its lines are left "
                    "where they are: run again once it is back",
                    provider=self.provider,
                    sent=False,
                )
            if not self._probing and now >= self._next_probe:
                self._probing = True
                self.probes += 1
                return True
            await self._sleep(max(0.05, min(self._next_probe - now, 1.0)))
        return False

    def succeeded(self) -> None:
        """The service answered (whatever it said): the circuit closes."""
        self.failures = 0
        self.opened_at = None
        self.probes = 0
        self._probing = False
        self._wait = self.policy.first_probe

    def failed(self, exc: BaseException, *, probe: bool = False) -> bool:
        """Record a step's failure; True when it was a connection failure (the line is not
        at fault: the caller keeps it and tries again once the circuit lets it)."""
        if not is_connection_failure(exc):
            if probe:
                self.succeeded()  # an answer, even an error, means the service is there
            else:
                self.failures = 0
            return False
        self.failures += 1
        now = self._clock()
        if probe:
            self._probing = False
            self._wait = min(self._wait * 2, self.policy.max_probe)
            self._next_probe = now + self._wait
        elif self.opened_at is None and self.failures >= self.policy.threshold:
            self.opened_at = now
            self._next_probe = now + self._wait
        return True


class Outages:
    """The circuits of one run, one per provider."""

    def __init__(
        self,
        policy: OutagePolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.policy = policy or OutagePolicy()
        self._clock = clock
        self._sleep = sleep
        self._circuits: dict[str, Circuit] = {}

    def __getitem__(self, provider: str) -> Circuit:
        circuit = self._circuits.get(provider)
        if circuit is None:
            circuit = Circuit(provider, self.policy, clock=self._clock, sleep=self._sleep)
            self._circuits[provider] = circuit
        return circuit

    def open(self) -> list[Circuit]:
        """The circuits open now (for the progress view)."""
        return [c for c in self._circuits.values() if c.is_open]
