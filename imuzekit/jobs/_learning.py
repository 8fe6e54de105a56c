"""What the schedule learns: a uniform sample of the render times of finished jobs."""

from __future__ import annotations

import bisect
from collections.abc import Callable

__all__ = ["MAX_SAMPLES", "MIN_SAMPLES", "Samples"]

MIN_SAMPLES = 5
"""Finished jobs (or jobs still older than an age) before the learned figures are trusted."""
MAX_SAMPLES = 512
"""Render times kept per group (a uniform sample of all): quantiles to within a few %."""


class Samples:
    """Render times of one group (normalised by each job's hint when it had one).

    A uniform sample of every finish so far (reservoir sampling): the jobs of one wave finish
    shortest first, so the most recent finishes alone would say every job is slow.
    """

    def __init__(self, rand: Callable[[], float]) -> None:
        self._rand = rand
        self._seen = 0
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._sorted)

    def add(self, value: float) -> None:
        """Count one finish; keep it with the chance that keeps the sample uniform."""
        self._seen += 1
        if len(self._sorted) >= MAX_SAMPLES:
            if self._rand() * self._seen >= MAX_SAMPLES:
                return
            del self._sorted[min(len(self._sorted) - 1, int(self._rand() * MAX_SAMPLES))]
        bisect.insort(self._sorted, value)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the sample (it must not be empty)."""
        return self._sorted[min(len(self._sorted) - 1, int(q * len(self._sorted)))]

    def share(self, start: float, width: float, survivors: list[float]) -> float | None:
        """Of the jobs alive at ``start`` (samples above it, and the sorted ``survivors``: the
        ages of jobs still waiting), the share that finished by ``start + width``.

        Counting the waiting jobs as alive keeps a wave's first finishes from saying that
        every job finishes at once. None: too few samples above ``start``.
        """
        above = len(self._sorted) - bisect.bisect_right(self._sorted, start)
        if above < MIN_SAMPLES:
            return None
        within = bisect.bisect_right(self._sorted, start + width) - (len(self._sorted) - above)
        alive = above + len(survivors) - bisect.bisect_right(survivors, start)
        return within / alive
