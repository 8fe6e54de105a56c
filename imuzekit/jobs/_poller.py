"""The poller: one asyncio task per provider per Client drives the poll schedule.

Jobs never poll on their own. ``Job.wait`` and ``Job.watch`` register with their provider's
poller and await a future. What to poll and when is decided by the sans-I/O
`imuzekit.jobs._schedule.Schedule` (coalescing, the latency budget, learning, jitter, stalls,
``Retry-After``, failure budgets, deadlines); this module only asks it what is due, sends, and
feeds the results back. In short, it refreshes with as few requests as it can:

* when the provider has a list endpoint that carries statuses (a `BatchDriver`), and at
  least ``batch_threshold`` jobs are waiting, one list request (following pages as needed)
  refreshes *every* waiting job at once; jobs the list does not show are fetched one by one;
* otherwise each due job gets its own status request, under a per-provider cap on status
  requests per second.

Each poll (one job, or one batch) runs as its own task, so a slow status request never holds up
the other jobs of the provider; a job has at most one poll in flight. A batch that fails with a
permanent error (an unreadable or oversized list) turns batching off for that kind of job, and
its jobs are polled one by one instead.

Batched jobs share the group's tick, paced by ``PollPolicy.budget``; per-job polls are jittered
so that thousands of jobs created together do not poll in lockstep. A ``Retry-After`` on a
status response postpones that job. A poll never waits for a provider paused after a 429
beyond the latest deadline of its job's waiters (`imuzekit._retry.deadline_scope`): it fails
at once with ``RateLimitError`` instead, and is retried like any 429. Transient failures (5xx,
429, connection problems) are retried with backoff (after five in a row the error reaches the
waiters); a permanent one (401 after re-login, 404, an unreadable body, a status parser that
fails) is raised to the waiters at once and kept on ``job.last_error``.
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
from imuzekit.jobs._schedule import Entry, Plan, Poll, Schedule, Verdict
from imuzekit.jobs.job import Job, JobStatus

__all__ = ["BatchDriver", "Poller"]

_log = logging.getLogger("imuzekit.jobs")

_TRANSIENT = (errors.ServerError, errors.RateLimitError, errors.TransportError)
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


Waiter = tuple[asyncio.Future[None], bool, float]
"""(future, until_change, deadline in loop time) of one ``wait``."""


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
        self._batch_threshold = batch_threshold
        self.max_status_rps = max_status_rps
        self._rand = rand
        self._schedule: Schedule | None = None
        self._current: dict[int, Entry] = {}  # id(job) -> its live entry
        self._waiters: dict[Entry, list[Waiter]] = {}
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._polls: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, asyncio.Future[None]] = {}  # id(job) -> its per-job poll
        self._closed = False
        self._next_request_at = 0.0
        self.requests = 0
        """Status requests sent so far (list pages and per-job requests)."""

    @property
    def batch_threshold(self) -> int:
        """Waiting jobs of one kind from which one list request refreshes them all."""
        return self._batch_threshold

    # -- public ------------------------------------------------------------------------------

    async def refresh(self, job: Job[Any]) -> bool:
        """Send one status request for ``job`` now; return whether its state changed."""
        self._check_open()
        response = await self._fetch_one(job)
        changed = job.take_response(response)
        entry = self._current.get(id(job))
        if entry is not None and (changed or job.done):
            self._schedule_of().observe(entry, changed=changed, done=job.done)
            self._settle(entry, changed)
        return changed

    async def confirm(self, job: Job[Any]) -> bool:
        """Check ``job`` after a pushed callback (a hint): return whether it is done.

        A per-job poll of it already in flight is awaited first; only when that one does not
        show the job done is a status request of its own sent (the hint may postdate it).
        """
        self._check_open()
        running = self._in_flight.get(id(job))
        if running is not None:
            await asyncio.shield(running)
        if not job.done:
            await self.refresh(job)
        return job.done

    async def wait(self, job: Job[Any], *, deadline: float, until_change: bool = False) -> None:
        """Wait until ``job`` is done (or, with ``until_change``, until its state changes).

        ``deadline`` is in event-loop time. Raises `JobTimeout` when it
        passes or the job stalls; cancelling the wait unregisters it. A job polled before
        keeps its cadence: waiting again does not restart at ``PollPolicy.initial``.
        """
        self._check_open()
        if job.done:
            return
        loop = asyncio.get_running_loop()
        entry = self._current.get(id(job))
        if entry is None:
            entry = self._register(job)
            self._ensure_task()
            self._wake()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (future, until_change, deadline)
        waiters = self._waiters[entry]
        waiters.append(waiter)
        self._schedule_of().set_deadline(entry, max(d for _, _, d in waiters))
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
        return len(self._current)

    async def close(self) -> None:
        """Stop the scheduler and every poll in flight; waiters get ClientClosedError."""
        self._closed = True
        tasks = [t for t in (self._task, *self._polls) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        closed = errors.ClientClosedError("the Client was closed while jobs were being waited on")
        for entry in list(self._waiters):
            self._resolve(entry, closed, all_waiters=True)
        self._waiters.clear()
        self._current.clear()

    # -- bookkeeping --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise errors.ClientClosedError("this imuzekit Client is closed")

    def _schedule_of(self) -> Schedule:
        if self._schedule is None:
            self._schedule = Schedule(
                clock=asyncio.get_running_loop().time,
                rand=self._rand,
                batch_threshold=self._batch_threshold,
            )
        return self._schedule

    def _register(self, job: Job[Any]) -> Entry:
        mono = time.monotonic()
        entry = self._schedule_of().add(
            job,
            group=id(job.driver),
            batchable=_is_batch(job.driver),
            policy=job.policy,
            expected=job.expected,
            age=None if job.started_at is None else mono - job.started_at,
            polls=job.polls,
            since_poll=None if job.last_polled_at is None else mono - job.last_polled_at,
            since_change=mono - job.changed_at,
            pushed=job.push is not None and job.push(),
        )
        self._current[id(job)] = entry
        self._waiters[entry] = []
        return entry

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"imuzekit-poller-{self.provider}"
            )

    def _forget(self, entry: Entry) -> None:
        # Only the current entry of a job may be forgotten: a poll that finishes after its
        # waiters left must not drop a newer registration of the same job.
        self._waiters.pop(entry, None)
        if self._current.get(id(entry.key)) is entry:
            del self._current[id(entry.key)]

    def _drop_waiter(self, entry: Entry, waiter: Waiter) -> None:
        waiters = self._waiters.get(entry)
        if waiters is None:
            return
        with contextlib.suppress(ValueError):
            waiters.remove(waiter)
        if waiters:
            self._schedule_of().set_deadline(entry, max(d for _, _, d in waiters))
            return
        self._schedule_of().leave(entry)
        self._forget(entry)
        self._wake()  # the driver task ends once no job is registered

    def _resolve(self, entry: Entry, error: BaseException | None, *, all_waiters: bool) -> None:
        """Wake waiters: all of them (done or error), or only the until-change ones."""
        for future, until_change, _ in list(self._waiters.get(entry, ())):
            if future.done() or not (all_waiters or until_change):
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def _settle(self, entry: Entry, changed: bool) -> None:
        """After a reading: wake the waiters of this entry and of the job's current one."""
        job: Job[Any] = entry.key
        if not (changed or job.done):
            return
        current = self._current.get(id(job))
        if current is not None and current is not entry:
            self._schedule_of().observe(current, changed=changed, done=job.done)
        for target in {entry, current} - {None}:
            assert target is not None
            self._resolve(target, None, all_waiters=job.done)
            if job.done:
                self._forget(target)

    def _abort(self, entry: Entry, error: BaseException) -> None:
        entry.key.last_error = error
        self._resolve(entry, error, all_waiters=True)
        self._forget(entry)

    def _verdict(self, entry: Entry, verdict: Verdict, changed: bool, error: Any = None) -> None:
        job: Job[Any] = entry.key
        if verdict is Verdict.STALLED:
            stall = job.policy.stall_after
            self._abort(
                entry,
                errors.JobTimeout(
                    f"{job.provider} job {job.id} stalled: no state change for {stall:g}s "
                    f"(last status {job.raw_status!r})",
                    job=job,
                ),
            )
        elif verdict is Verdict.GAVE_UP:
            self._abort(entry, error)
        else:
            self._settle(entry, changed)

    # -- the driver ---------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        while self._current:
            self._wakeup.clear()
            plan = self._schedule_of().due()
            self._launch(plan)
            if plan.next_due is None:  # everything is in flight: its end wakes us
                await self._wakeup.wait()
                continue
            delay = plan.next_due - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wakeup.wait()
            else:
                await asyncio.sleep(0)  # never spin: let the polls in flight progress

    def _launch(self, plan: Plan) -> None:
        for entry in plan.expired:
            job: Job[Any] = entry.key
            self._abort(
                entry,
                errors.JobTimeout(
                    f"{job.provider} job {job.id} did not finish before its deadline "
                    f"(state {job.state.value}, status {job.raw_status!r})",
                    job=job,
                ),
            )
        for poll in plan.polls:
            coro = self._poll_batch(poll) if poll.batch else self._poll_one(poll)
            self._spawn(coro)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._polls.add(task)
        task.add_done_callback(self._polls.discard)

    async def _poll_batch(self, poll: Poll) -> None:
        try:
            await self._batch(poll)
        finally:
            self._wake()

    async def _batch(self, poll: Poll) -> None:
        schedule = self._schedule_of()
        driver: Any = poll.entries[0].key.driver
        by_id: dict[str, list[Entry]] = {}
        for entry in poll.entries:
            by_id.setdefault(entry.key.id, []).append(entry)
        previous = {job_id: group[0].key.result for job_id, group in by_id.items()}
        seen: dict[str, JobStatus[Any]] = {}
        page = 1
        # A paused provider (after a 429) makes this batch fail at once rather than outwait
        # every waiter: it is then retried like any transient failure.
        deadlines = [e.deadline for e in poll.entries if e.deadline is not None]
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
            retry_after = exc.retry_after if isinstance(exc, errors.RateLimitError) else None
            _log.info("%s: status list failed (%s); retrying", self.provider, exc)
            verdicts = schedule.failed(poll, retry_after=retry_after, requests=page)
            for entry, verdict in verdicts.items():
                self._verdict(entry, verdict, False, exc)
            return
        except Exception as exc:  # an unreadable or oversized list: poll these jobs one by one
            _log.warning(
                "%s: status list unusable (%s); polling jobs one by one", self.provider, exc
            )
            schedule.batch_refused(poll, pages=page)
            return
        readings: dict[Entry, tuple[bool, bool]] = {}
        for job_id, group in by_id.items():
            status = seen.get(job_id)
            if status is None:
                # Not in the list (another account, an eventually-consistent list, a job that
                # left a "running" list): the schedule asks about it directly, once.
                continue
            for entry in group:
                job: Job[Any] = entry.key
                readings[entry] = (job.apply_status(status), job.done)
        verdicts = schedule.batch_read(poll, readings, pages=page)
        for entry, verdict in verdicts.items():
            self._verdict(entry, verdict, readings.get(entry, (False, False))[0])

    async def _poll_one(self, poll: Poll) -> None:
        schedule = self._schedule_of()
        entry = poll.entries[0]
        job: Job[Any] = entry.key
        done = asyncio.get_running_loop().create_future()
        self._in_flight[id(job)] = done
        try:
            await self._pace()
            # No waiter left by then: a poll stuck behind a paused provider must not outlive
            # every deadline (the gate raises RateLimitError instead, retried like a 429).
            with deadline_scope(entry.deadline):
                response = await self._fetch_one(job)
            status = job.driver.parse_status(job.id, response, job.result)
        except _TRANSIENT as exc:
            retry_after = exc.retry_after if isinstance(exc, errors.RateLimitError) else None
            _log.info("%s job %s: status check failed (%s); retrying", self.provider, job.id, exc)
            for target, verdict in schedule.failed(poll, retry_after=retry_after).items():
                self._verdict(target, verdict, False, exc)
        except Exception as exc:  # a permanent error, or a parser that failed: tell the waiters
            schedule.abort(entry)
            self._abort(entry, exc)
        else:
            changed = job.apply_status(status)
            verdict = schedule.read(
                entry,
                changed=changed,
                done=job.done,
                retry_after=parse_retry_after(response.headers),
            )
            self._verdict(entry, verdict, changed)
        finally:
            if self._in_flight.get(id(job)) is done:
                del self._in_flight[id(job)]
            done.set_result(None)
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


def _is_batch(driver: Any) -> bool:
    return callable(getattr(driver, "batch_request", None)) and callable(
        getattr(driver, "parse_batch", None)
    )
