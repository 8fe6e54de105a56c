"""The poller: refreshes a provider's jobs until they reach a terminal state.

One poller per provider per Client. Jobs never poll on their own; ``Job.wait`` and
``Job.watch`` ask their poller, which owns the timing (backoff with jitter, deadlines, stall
detection) and sends the status requests through the transport.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from imuzekit import errors
from imuzekit._http import Sender
from imuzekit.jobs.job import Job

__all__ = ["Poller"]


class Poller:
    """Polls the jobs of one provider through ``sender``."""

    def __init__(
        self, provider: str, sender: Sender, *, rand: Callable[[], float] = random.random
    ) -> None:
        self.provider = provider
        self._sender = sender
        self._rand = rand
        self.requests = 0
        """Status requests sent so far (for metrics and benchmarks)."""

    async def refresh(self, job: Job[Any]) -> bool:
        """Send one status request for ``job``; return whether its state changed."""
        self.requests += 1
        response = await self._sender.send(
            job.driver.status_request(job.id), ok_statuses=job.driver.ok_statuses
        )
        return job.take_response(response)

    async def wait(self, job: Job[Any], *, deadline: float, until_change: bool = False) -> None:
        """Poll ``job`` until it is done (or, with ``until_change``, until its state changes).

        ``deadline`` is in event-loop time. Raises :class:`~imuzekit.errors.JobTimeout` when
        it passes, or when the job's state has not changed for ``policy.stall_after``.
        """
        policy = job.policy
        loop = asyncio.get_running_loop()
        polls = 0
        try:
            async with asyncio.timeout_at(deadline):
                while not job.done:
                    delay = policy.interval(polls, self._rand)
                    if policy.stall_after is not None:
                        stalled_for = time.monotonic() - job.changed_at
                        if stalled_for + delay > policy.stall_after:
                            delay = max(0.0, policy.stall_after - stalled_for)
                    await asyncio.sleep(delay)
                    polls += 1
                    changed = await self.refresh(job)
                    if changed and until_change:
                        return
                    if (
                        not job.done
                        and policy.stall_after is not None
                        and time.monotonic() - job.changed_at >= policy.stall_after
                    ):
                        raise errors.JobTimeout(
                            f"{job.provider} job {job.id} stalled: no state change for "
                            f"{policy.stall_after:g}s (last status {job.raw_status!r})",
                            job=job,
                        )
        except TimeoutError:
            late = loop.time() - deadline
            raise errors.JobTimeout(
                f"{job.provider} job {job.id} did not finish before its deadline "
                f"(state {job.state.value}, status {job.raw_status!r}, {late:+.2f}s)",
                job=job,
            ) from None
