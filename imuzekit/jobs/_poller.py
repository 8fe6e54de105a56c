"""The poller: one scheduler task per provider per Client refreshes every waiting job.

Jobs never poll on their own. ``Job.wait`` and ``Job.watch`` register with their provider's
poller and await a future; the scheduler sleeps until the earliest job is due, then refreshes
with as few requests as it can:

* when the provider has a list endpoint that carries statuses (a :class:`BatchDriver`), and at
  least ``batch_threshold`` jobs are waiting, one list request (following pages as needed)
  refreshes *every* waiting job at once; jobs the list does not show are fetched one by one;
* otherwise each due job gets its own status request, under a per-provider cap on status
  requests per second.

Each poll (one job, or one batch) runs as its own task, so a slow status request never holds up
the other jobs of the provider; a job has at most one poll in flight. A batch that fails with a
permanent error (an unreadable or oversized list) turns batching off for that kind of job, and
its jobs are polled one by one instead.

Batched jobs share the scheduler's tick, so their intervals are not jittered (jitter would only
make the earliest job due sooner); per-job polls use full jitter so that thousands of jobs
created together do not poll in lockstep. A ``Retry-After`` on a status response postpones that
job. A poll never waits for a provider paused after a 429 beyond the latest deadline of its
job's waiters (`imuzekit._retry.deadline_scope`): it fails at once with ``RateLimitError``
instead, and is retried like any 429. Transient failures (5xx, 429, connection problems) are
retried on the next tick with backoff (after five in a row the error reaches the waiters); a
permanent one (401 after re-login, 404, an unreadable body, a status parser that fails) is
raised to the waiters at once and kept on ``job.last_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Collection, Coroutine, Mapping
from typing import Any, Protocol

from imuzekit import errors
from imuzekit._http import Request, Response, Sender
from imuzekit._retry import deadline_scope, parse_retry_after
from imuzekit.jobs.job import Job, JobStatus

__all__ = ["BatchDriver", "Poller"]

_log = logging.getLogger("imuzekit.jobs")

_TRANSIENT = (errors.ServerError, errors.RateLimitError, errors.TransportError)
_MAX_TRANSIENT_FAILURES = 5
_MAX_BATCH_PAGES = 100  # a list that keeps saying "more" must not page forever


class BatchDriver(Protocol):
    """A job driver whose provider can report many jobs' statuses in one request."""

    def batch_request(self, page: int, job_ids: Collection[str]) -> Request:
        """The request for page ``page`` (1-based) of statuses covering ``job_ids``."""
        ...

    def parse_batch(
        self, response: Response, page: int, previous: Mapping[str, Any]
    ) -> tuple[dict[str, JobStatus[Any]], bool]:
        """Statuses by job id found on this page, and whether another page should be read.

        ``previous`` maps job ids to their last known results (for merging partial items).
        """
        ...


class _Entry:
    """A registered job: its schedule and the futures of everyone waiting on it."""

    __slots__ = ("direct", "due", "failures", "in_flight", "job", "waiters")

    def __init__(self, job: Job[Any], due: float) -> None:
        self.job = job
        self.due = due
        self.failures = 0
        self.in_flight = False
        self.direct = False  # missing from the last batch: poll it on its own next time
        # (future, until_change, deadline in loop time) of everyone waiting on the job.
        self.waiters: list[tuple[asyncio.Future[None], bool, float]] = []

    def deadline(self) -> float | None:
        """The latest deadline of the waiters: no poll of this job need wait beyond it."""
        return max((deadline for _, _, deadline in self.waiters), default=None)


class Poller:
    """Refreshes the jobs of one provider through ``sender`` (see the module docstring)."""

    def __init__(
        self,
        provider: str,
        sender: Sender,
        *,
        batch_threshold: int = 3,
        max_status_rps: float = 50.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.provider = provider
        self._sender = sender
        self.batch_threshold = batch_threshold
        self.max_status_rps = max_status_rps
        self._rand = rand
        self._entries: dict[int, _Entry] = {}
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._polls: set[asyncio.Task[None]] = set()
        self._batching: set[int] = set()  # drivers with a batch in flight
        self._no_batch: set[int] = set()  # drivers whose batch failed for good
        self._closed = False
        self._next_request_at = 0.0
        self.requests = 0
        """Status requests sent so far (list pages and per-job requests)."""

    # -- public ------------------------------------------------------------------------------

    async def refresh(self, job: Job[Any]) -> bool:
        """Send one status request for ``job`` now; return whether its state changed."""
        self._check_open()
        response = await self._fetch_one(job)
        changed = job.take_response(response)
        entry = self._entries.get(id(job))
        if entry is not None and (changed or job.done):
            self._settle(entry)
        return changed

    async def wait(self, job: Job[Any], *, deadline: float, until_change: bool = False) -> None:
        """Wait until ``job`` is done (or, with ``until_change``, until its state changes).

        ``deadline`` is in event-loop time. Raises :class:`~imuzekit.errors.JobTimeout` when it
        passes or the job stalls; cancelling the wait unregisters it. A job polled before
        keeps its cadence: waiting again does not restart at ``PollPolicy.initial``.
        """
        self._check_open()
        if job.done:
            return
        loop = asyncio.get_running_loop()
        entry = self._entries.get(id(job))
        if entry is None:
            entry = self._entries[id(job)] = _Entry(job, self._first_due(job, loop.time()))
            self._ensure_task()
            self._wake()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (future, until_change, deadline)
        entry.waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await future
        except TimeoutError:
            raise errors.JobTimeout(
                f"{job.provider} job {job.id} did not finish before its deadline "
                f"(state {job.state.value}, status {job.raw_status!r})",
                job=job,
            ) from None
        finally:
            self._drop_waiter(entry, waiter)

    @property
    def waiting(self) -> int:
        """How many jobs are registered."""
        return len(self._entries)

    async def close(self) -> None:
        """Stop the scheduler and every poll in flight; waiters get ClientClosedError."""
        self._closed = True
        tasks = [t for t in (self._task, *self._polls) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        closed = errors.ClientClosedError("the Client was closed while jobs were being waited on")
        for entry in list(self._entries.values()):
            self._resolve(entry, closed, all_waiters=True)
        self._entries.clear()

    # -- bookkeeping --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise errors.ClientClosedError("this imuzekit Client is closed")

    def _first_due(self, job: Job[Any], now: float) -> float:
        if job.last_polled_at is None:
            return now + job.policy.initial
        interval = job.policy.interval(job.polls, lambda: 1.0)
        return now + max(0.0, job.last_polled_at + interval - time.monotonic())

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"imuzekit-poller-{self.provider}"
            )

    def _remove(self, entry: _Entry) -> None:
        # Only the current entry of a job may be removed: a poll that finishes after its
        # waiters left must not delete a newer registration of the same job.
        if self._entries.get(id(entry.job)) is entry:
            del self._entries[id(entry.job)]

    def _drop_waiter(self, entry: _Entry, waiter: tuple[asyncio.Future[None], bool, float]) -> None:
        with contextlib.suppress(ValueError):
            entry.waiters.remove(waiter)
        if not entry.waiters:
            self._remove(entry)

    def _resolve(self, entry: _Entry, error: BaseException | None, *, all_waiters: bool) -> None:
        """Wake waiters: all of them (done or error), or only the until-change ones."""
        for future, until_change, _ in list(entry.waiters):
            if future.done() or not (all_waiters or until_change):
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def _settle(self, entry: _Entry) -> None:
        """After a state change: wake the waiters of this entry and of the job's current one."""
        current = self._entries.get(id(entry.job))
        for target in {entry, current} - {None}:
            assert target is not None
            self._resolve(target, None, all_waiters=entry.job.done)
        if entry.job.done:
            self._remove(entry)
            if current is not None:
                self._remove(current)

    # -- the scheduler ------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        while self._entries:
            self._wakeup.clear()
            next_due = self._launch(loop.time())
            delay = next_due - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wakeup.wait()
            else:
                await asyncio.sleep(0)  # never spin: let the polls in flight progress

    def _launch(self, now: float) -> float:
        """Start the polls that are due; return when the next one is due (or far away).

        Jobs that ride on a batch in flight are not due: the batch's end wakes the scheduler.
        """
        groups: dict[int, list[_Entry]] = {}
        for entry in self._entries.values():
            if not entry.in_flight:
                groups.setdefault(id(entry.job.driver), []).append(entry)
        next_due = now + 3600.0
        for key, entries in groups.items():
            driver = entries[0].job.driver
            batchable = key not in self._no_batch and _is_batch(driver)
            shared = [e for e in entries if not e.direct] if batchable else []
            use_batch = len(shared) >= self.batch_threshold
            for entry in entries:
                if entry.in_flight:
                    continue
                if use_batch and not entry.direct:
                    if key in self._batching:
                        continue
                    if entry.due <= now:
                        self._batching.add(key)
                        for member in shared:
                            member.in_flight = True
                        self._spawn(self._poll_batch(key, shared, driver))
                        continue
                elif entry.due <= now:
                    entry.in_flight = True
                    self._spawn(self._poll_one(entry))
                    continue
                next_due = min(next_due, entry.due)
        return next_due

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._polls.add(task)
        task.add_done_callback(self._polls.discard)

    async def _poll_batch(self, key: int, entries: list[_Entry], driver: Any) -> None:
        try:
            await self._batch(key, entries, driver)
        finally:
            self._batching.discard(key)
            for entry in entries:
                entry.in_flight = False
            self._wake()

    async def _batch(self, key: int, entries: list[_Entry], driver: Any) -> None:
        by_id: dict[str, list[_Entry]] = {}
        for entry in entries:
            by_id.setdefault(entry.job.id, []).append(entry)
        previous = {job_id: group[0].job.result for job_id, group in by_id.items()}
        seen: dict[str, JobStatus[Any]] = {}
        page = 1
        # A paused provider (after a 429) makes this batch fail at once rather than outwait
        # every waiter: it is then retried like any transient failure.
        deadlines = [d for d in (entry.deadline() for entry in entries) if d is not None]
        try:
            while True:
                await self._pace()
                self.requests += 1
                with deadline_scope(max(deadlines, default=None)):
                    response = await self._sender.send(driver.batch_request(page, list(by_id)))
                statuses, more = driver.parse_batch(response, page, previous)
                seen.update({k: v for k, v in statuses.items() if k in by_id})
                if not more or len(seen) == len(by_id) or page >= _MAX_BATCH_PAGES:
                    break
                page += 1
        except _TRANSIENT as exc:
            for entry in entries:
                self._failed(entry, exc)
            return
        except Exception as exc:  # an unreadable or oversized list: poll these jobs one by one
            _log.warning(
                "%s: status list unusable (%s); polling jobs one by one", self.provider, exc
            )
            self._no_batch.add(key)
            now = asyncio.get_running_loop().time()
            for entry in entries:
                entry.due = now
            return
        now = asyncio.get_running_loop().time()
        for job_id, group in by_id.items():
            status = seen.get(job_id)
            for entry in group:
                if status is None:
                    # Not in the list (another account, an eventually-consistent list, a job
                    # that left a "running" list): ask about it directly, once.
                    entry.direct = True
                    entry.due = now
                else:
                    self._apply(entry, status, None)

    async def _poll_one(self, entry: _Entry) -> None:
        job = entry.job
        try:
            await self._pace()
            # No waiter left by then: a poll stuck behind a paused provider must not outlive
            # every deadline (the gate raises RateLimitError instead, retried like a 429).
            with deadline_scope(entry.deadline()):
                response = await self._fetch_one(job)
            status = job.driver.parse_status(job.id, response, job.result)
            entry.direct = False
            self._apply(entry, status, parse_retry_after(response.headers))
        except _TRANSIENT as exc:
            self._failed(entry, exc)
        except Exception as exc:  # a permanent error, or a parser that failed: tell the waiters
            self._abort(entry, exc)
        finally:
            entry.in_flight = False
            self._wake()

    async def _fetch_one(self, job: Job[Any]) -> Response:
        self.requests += 1
        return await self._sender.send(
            job.driver.status_request(job.id), ok_statuses=job.driver.ok_statuses
        )

    async def _pace(self) -> None:
        """Keep status requests under ``max_status_rps`` for this provider."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next_request_at)
        self._next_request_at = slot + 1.0 / self.max_status_rps
        if slot > now:
            await asyncio.sleep(slot - now)

    def _apply(self, entry: _Entry, status: JobStatus[Any], retry_after: float | None) -> None:
        job = entry.job
        changed = job.apply_status(status)
        entry.failures = 0
        if changed or job.done:
            self._settle(entry)
        if job.done:
            return
        stall = job.policy.stall_after
        if stall is not None and time.monotonic() - job.changed_at >= stall:
            self._abort(
                entry,
                errors.JobTimeout(
                    f"{job.provider} job {job.id} stalled: no state change for {stall:g}s "
                    f"(last status {job.raw_status!r})",
                    job=job,
                ),
            )
            return
        self._schedule(entry, retry_after)

    def _schedule(self, entry: _Entry, retry_after: float | None = None) -> None:
        job = entry.job
        policy = job.policy
        key = id(job.driver)
        batched = (
            key not in self._no_batch
            and len(self._entries) >= self.batch_threshold
            and _is_batch(job.driver)
        )
        # Batched jobs share the scheduler's tick: jitter would only make the earliest sooner.
        interval = policy.interval(job.polls, (lambda: 1.0) if batched else self._rand)
        if retry_after is not None:
            interval = max(interval, retry_after)
        if policy.stall_after is not None:
            stalled_for = time.monotonic() - job.changed_at
            interval = min(interval, max(0.0, policy.stall_after - stalled_for))
        entry.due = asyncio.get_running_loop().time() + interval

    def _failed(self, entry: _Entry, error: errors.ImuzekitError) -> None:
        entry.failures += 1
        if entry.failures >= _MAX_TRANSIENT_FAILURES:
            self._abort(entry, error)
            return
        retry_after = error.retry_after if isinstance(error, errors.RateLimitError) else None
        _log.info(
            "%s job %s: status check failed (%s); retrying", self.provider, entry.job.id, error
        )
        backoff = entry.job.policy.max_interval * self._rand()
        self._schedule(entry, max(backoff, retry_after or 0.0))

    def _abort(self, entry: _Entry, error: BaseException) -> None:
        entry.job.last_error = error
        self._resolve(entry, error, all_waiters=True)
        self._remove(entry)


def _is_batch(driver: Any) -> bool:
    return callable(getattr(driver, "batch_request", None)) and callable(
        getattr(driver, "parse_batch", None)
    )
