"""The poller: one scheduler task per provider per Client refreshes every waiting job.

Jobs never poll on their own. ``Job.wait`` and ``Job.watch`` register with their provider's
poller and await a future; the scheduler sleeps until the earliest job is due, then refreshes
with as few requests as it can:

* when the provider has a list endpoint that carries statuses (a :class:`BatchDriver`), and at
  least ``batch_threshold`` jobs are waiting, one list request (following pages as needed)
  refreshes *every* waiting job at once; jobs the list does not show are fetched one by one;
* otherwise each due job gets its own status request, under a per-provider cap on status
  requests per second.

Batched jobs share the scheduler's tick, so their intervals are not jittered (jitter would only
make the earliest job due sooner); per-job polls use full jitter so that thousands of jobs
created together do not poll in lockstep. A ``Retry-After`` on a status response postpones that
job. Transient failures (5xx, 429, connection problems) are retried on the next tick with
backoff; a permanent one (401 after re-login, 404, an unreadable body) is raised to the waiters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from imuzekit import errors
from imuzekit._http import Request, Response, Sender
from imuzekit._retry import parse_retry_after
from imuzekit.jobs.job import Job, JobStatus

__all__ = ["BatchDriver", "Poller"]

_log = logging.getLogger("imuzekit.poller")

_TRANSIENT = (errors.ServerError, errors.RateLimitError, errors.TransportError)
_MAX_TRANSIENT_FAILURES = 5


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

    __slots__ = ("due", "failures", "job", "polls", "waiters")

    def __init__(self, job: Job[Any], due: float) -> None:
        self.job = job
        self.due = due
        self.polls = 0
        self.failures = 0
        self.waiters: list[tuple[asyncio.Future[None], bool]] = []


class Poller:
    """Refreshes the jobs of one provider through ``sender`` (see the module docstring)."""

    def __init__(
        self,
        provider: str,
        sender: Sender,
        *,
        batch_threshold: int = 3,
        max_status_rps: float = 20.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.provider = provider
        self._sender = sender
        self.batch_threshold = batch_threshold
        self.max_status_rps = max_status_rps
        self._rand = rand
        self._entries: dict[int, _Entry] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._next_request_at = 0.0
        self.requests = 0
        """Status requests sent so far (list pages and per-job requests)."""

    # -- public ------------------------------------------------------------------------------

    async def refresh(self, job: Job[Any]) -> bool:
        """Send one status request for ``job`` now; return whether its state changed."""
        self._check_open()
        response = await self._fetch_one(job)
        return job.take_response(response)

    async def wait(self, job: Job[Any], *, deadline: float, until_change: bool = False) -> None:
        """Wait until ``job`` is done (or, with ``until_change``, until its state changes).

        ``deadline`` is in event-loop time. Raises :class:`~imuzekit.errors.JobTimeout` when it
        passes or the job stalls; cancelling the wait unregisters it.
        """
        self._check_open()
        if job.done:
            return
        loop = asyncio.get_running_loop()
        entry = self._entries.get(id(job))
        if entry is None:
            entry = self._entries[id(job)] = _Entry(job, loop.time() + job.policy.initial)
            self._ensure_task()
            self._wakeup.set()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (future, until_change)
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
        """Stop the scheduler; waiters get ClientClosedError. Safe to call twice."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        closed = errors.ClientClosedError("the Client was closed while jobs were being waited on")
        for entry in list(self._entries.values()):
            self._resolve(entry, closed, all_waiters=True)
        self._entries.clear()

    # -- bookkeeping --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise errors.ClientClosedError("this imuzekit Client is closed")

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"imuzekit-poller-{self.provider}"
            )

    def _drop_waiter(self, entry: _Entry, waiter: tuple[asyncio.Future[None], bool]) -> None:
        with contextlib.suppress(ValueError):
            entry.waiters.remove(waiter)
        if not entry.waiters and self._entries.get(id(entry.job)) is entry:
            del self._entries[id(entry.job)]

    def _resolve(self, entry: _Entry, error: BaseException | None, *, all_waiters: bool) -> None:
        """Wake waiters: all of them (done or error), or only the until-change ones."""
        for future, until_change in list(entry.waiters):
            if future.done() or not (all_waiters or until_change):
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    # -- the scheduler ------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._entries:
            now = loop.time()
            earliest = min(entry.due for entry in self._entries.values())
            if earliest > now:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(earliest - now):
                        await self._wakeup.wait()
                continue
            try:
                await self._tick(loop.time())
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the scheduler die silently: waiters would hang
                _log.exception("%s poller tick failed", self.provider)
                for entry in list(self._entries.values()):
                    entry.due = loop.time() + 1.0

    async def _tick(self, now: float) -> None:
        groups: dict[int, list[_Entry]] = {}
        for entry in self._entries.values():
            groups.setdefault(id(entry.job.driver), []).append(entry)
        ticks = []
        for entries in groups.values():
            driver = entries[0].job.driver
            if len(entries) >= self.batch_threshold and _is_batch(driver):
                ticks.append(self._tick_batch(entries, driver))
            else:
                ticks.extend(self._tick_one(entry) for entry in entries if entry.due <= now)
        await asyncio.gather(*ticks)

    async def _tick_batch(self, entries: list[_Entry], driver: Any) -> None:
        by_id: dict[str, list[_Entry]] = {}
        for entry in entries:
            by_id.setdefault(entry.job.id, []).append(entry)
        previous = {job_id: group[0].job.result for job_id, group in by_id.items()}
        seen: dict[str, JobStatus[Any]] = {}
        page = 1
        try:
            while True:
                await self._pace()
                self.requests += 1
                response = await self._sender.send(driver.batch_request(page, list(by_id)))
                statuses, more = driver.parse_batch(response, page, previous)
                seen.update({k: v for k, v in statuses.items() if k in by_id})
                if not more or len(seen) == len(by_id):
                    break
                page += 1
        except _TRANSIENT as exc:
            for entry in entries:
                self._failed(entry, exc)
            return
        except errors.ImuzekitError as exc:
            for entry in entries:
                self._abort(entry, exc)
            return
        missing: list[_Entry] = []
        for job_id, group in by_id.items():
            status = seen.get(job_id)
            if status is None:
                missing.extend(group)
                continue
            for entry in group:
                self._apply(entry, status, None)
        # A job the list does not show (another account, an eventually-consistent list, a job
        # that left a "running" list) is asked about directly, once.
        await asyncio.gather(*(self._tick_one(entry) for entry in missing))

    async def _tick_one(self, entry: _Entry) -> None:
        job = entry.job
        try:
            await self._pace()
            response = await self._fetch_one(job)
        except _TRANSIENT as exc:
            self._failed(entry, exc)
            return
        except errors.ImuzekitError as exc:
            self._abort(entry, exc)
            return
        status = job.driver.parse_status(job.id, response, job.result)
        self._apply(entry, status, parse_retry_after(response.headers))

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
        entry.polls += 1
        entry.failures = 0
        if job.done:
            self._resolve(entry, None, all_waiters=True)
            self._entries.pop(id(job), None)
            return
        if changed:
            self._resolve(entry, None, all_waiters=False)
        policy = job.policy
        stall = policy.stall_after
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
        policy = entry.job.policy
        batched = len(self._entries) >= self.batch_threshold and _is_batch(entry.job.driver)
        interval = policy.interval(entry.polls, (lambda: 1.0) if batched else self._rand)
        if retry_after is not None:
            interval = max(interval, retry_after)
        if policy.stall_after is not None:
            stalled_for = time.monotonic() - entry.job.changed_at
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
        self._resolve(entry, error, all_waiters=True)
        self._entries.pop(id(entry.job), None)


def _is_batch(driver: Any) -> bool:
    return callable(getattr(driver, "batch_request", None)) and callable(
        getattr(driver, "parse_batch", None)
    )
