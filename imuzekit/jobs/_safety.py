"""The safety schedule: how a job whose completion is pushed is polled anyway (pure data).

While a push receiver (`imuzekit.webhooks.Webhooks`) awaits a job's callbacks, a callback
normally says at once that the job ended, and one confirming status request settles it. Polling
is then only the safety net for callbacks that never come (lost, refused by a proxy, sent
while no receiver listened): `SAFETY` says when. The schedule (`imuzekit.jobs._schedule`) reads
it; nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import attrs

__all__ = ["SAFETY", "SafetyRule"]


@attrs.frozen
class SafetyRule:
    """When a pushed job is polled: late enough that a delivered callback always comes first.

    * `hint_factor`, `first`: the first safety poll comes `hint_factor` times the job's hint
      (Mureka's ~45 s) after the provider accepted it, and never sooner than `first` seconds
      after that (90 s for Mureka: twice its usual time, so a job whose callback arrives costs
      its one confirming request and nothing more);
    * a job of unknown age (resumed from a token) is polled first after its policy's
      ``initial`` wait: it may have ended while no receiver listened;
    * then every `every` seconds (half jitter when the policy jitters), so a job whose
      callback was lost is noticed within about a minute of the first safety poll.

    `Retry-After`, stalls and deadlines apply as to any poll.
    """

    hint_factor: float = 2.0
    first: float = 60.0
    every: float = 60.0

    def first_wait(self, *, hint: float | None, age: float | None, initial: float) -> float:
        """Seconds from now to the first safety poll of a job ``age`` seconds old."""
        if age is None:
            return initial
        target = max(self.first, self.hint_factor * hint if hint is not None else 0.0)
        return max(0.0, target - age)

    def next_wait(self, rand: float, *, jitter: bool) -> float:
        """Seconds between two safety polls (``rand`` in [0, 1): half jitter)."""
        return self.every * (0.5 + 0.5 * rand) if jitter else self.every


SAFETY = SafetyRule()
"""The safety schedule every pushed job follows."""
