"""The watchdog that enforces `Timeouts.read` and `.total` of buffered API calls.

One periodic check per transport instead of aiohttp's per-request timers (see `Deadlines`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from imuzekit._http import Timeouts

__all__ = ["Deadlines", "Limits", "Stall", "Watch"]


class Limits:
    """A `Timeouts` value prepared for the transport (cached per value: see _limits_for).

    ``aiohttp_timeout`` gives aiohttp every limit (its own timers); ``connect_only`` leaves read
    and total to the watchdog, which then checks every ``tick`` seconds.
    """

    __slots__ = ("aiohttp_timeout", "connect_only", "read", "stream_timeout", "tick", "total")

    def __init__(self, timeouts: Timeouts) -> None:
        # sock_connect rather than connect: waiting for a free pooled connection under load
        # is not the server's fault and must not count as a connect timeout.
        self.aiohttp_timeout = aiohttp.ClientTimeout(
            total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
        self.connect_only = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=None
        )
        # A stream's read limit is its `Stall` check's (and its headers' the watchdog's).
        self.stream_timeout = aiohttp.ClientTimeout(
            total=timeouts.total, sock_connect=timeouts.connect, sock_read=None
        )
        self.read = timeouts.read or None
        self.total = timeouts.total or None
        limits = [limit for limit in (self.read, self.total) if limit is not None]
        # A quarter of the limit: a request is given up on between 1 and 1.25 times its limit,
        # and never more than a second late.
        self.tick = min(1.0, max(_MIN_TICK, min(limits) / 4)) if limits else None


_MIN_TICK = 0.005


class Watch:
    """One request whose read and total limits the `Deadlines` watchdog enforces."""

    __slots__ = (
        "cancelling",
        "expired",
        "limits",
        "progress_at",
        "raw",
        "received",
        "started",
        "task",
    )

    def __init__(self, task: asyncio.Task[Any], limits: Limits, now: float) -> None:
        self.task = task
        # Cancellations already requested (cleanup code sending from an `except
        # CancelledError`): the watchdog's own is the one above this count.
        self.cancelling = task.cancelling()
        self.limits = limits
        self.started = now
        self.progress_at = now
        self.raw: aiohttp.ClientResponse | None = None
        self.received = 0
        self.expired: str | None = None


class Deadlines:
    """One periodic check that enforces ``Timeouts.read`` and ``.total`` of buffered requests.

    aiohttp enforces ``sock_read`` and ``total`` with timers of its own: per request three
    ``call_later`` and two cancellations, about 10 µs of CPU per call at 64 calls in flight,
    more than any other piece of imuzekit's bookkeeping (``docs/performance.md``). Here a request
    costs a set insertion and removal instead, and one timer callback every ``tick`` looks at
    all requests in flight: "read" counts from the request's start, then from the arrival of
    the answer's headers, then from the last body bytes received. The price is precision: a
    limit is noticed up to one tick late.

    An expired request's task is cancelled; the transport turns that cancellation into
    `RequestTimeout` with ``Task.uncancel`` (the way
    ``asyncio.timeout`` does), so a cancellation from outside still propagates as one.
    """

    def __init__(self) -> None:
        self._watched: dict[Watch, None] = {}  # an insertion-ordered set
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tick = 1.0

    def watch(self, task: asyncio.Task[Any], limits: Limits) -> Watch:
        """Start watching a request that ``task`` is about to send."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        watch = Watch(task, limits, loop.time())
        self._watched[watch] = None
        tick = limits.tick or 1.0
        if self._timer is None:
            self._tick = tick
            self._timer = loop.call_later(tick, self._check)
        elif tick < self._tick:  # a tighter limit than those in flight: check sooner
            self._tick = tick
            self._timer.cancel()
            self._timer = loop.call_later(tick, self._check)
        return watch

    def answered(self, watch: Watch, raw: aiohttp.ClientResponse) -> None:
        """The answer's status and headers are in: progress, and the body is watched from now."""
        assert self._loop is not None  # set by watch()
        watch.raw = raw
        watch.progress_at = self._loop.time()

    def done(self, watch: Watch) -> None:
        """Stop watching (the request finished, failed or was cancelled)."""
        self._watched.pop(watch, None)

    def close(self) -> None:
        """Stop the periodic check (the transport is closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        tick: float | None = None
        try:
            for watch in tuple(self._watched):
                if watch.expired is not None:
                    continue
                limits = watch.limits
                if limits.tick is not None and (tick is None or limits.tick < tick):
                    tick = limits.tick
                raw = watch.raw
                if raw is not None and raw.content.total_bytes != watch.received:
                    watch.received = raw.content.total_bytes
                    watch.progress_at = now
                read = limits.read
                if limits.total is not None and now - watch.started >= limits.total:
                    watch.expired = (
                        f"the attempt took longer than {limits.total:g} s (Timeouts.total)"
                    )
                elif read is not None and now - watch.progress_at >= read:
                    watch.expired = f"no response data for {limits.read:g} s (Timeouts.read)"
                else:
                    continue
                # Only schedules the CancelledError: nothing runs now that could change
                # _watched.
                watch.task.cancel()
        finally:
            # Whatever happened above, the check goes on while anything is watched, at the
            # pace of the tightest limit still in flight.
            if self._watched:
                self._tick = tick or self._tick
                self._timer = loop.call_later(self._tick, self._check)
            else:
                self._timer = None


class Stall:
    """Enforces ``Timeouts.read`` on a streamed body: a read that waits that long for bytes fails.

    aiohttp's ``sock_read`` does the same with a timer cancelled and made again for every chunk
    received (and at every resume of reading), a few percent of a download's event-loop time.
    Here one timer per stream is made again only when it fires; `waiting()` and
    `done_waiting()` around each read cost a clock read. A read returns as soon as any byte is
    there, so one that has waited ``limit`` seconds means that long without a byte; a caller
    busy elsewhere (reading paused, its buffer full) is never taken for a silent server. A
    stalled read fails with aiohttp's own ``SocketTimeoutError``, set on the body as aiohttp
    sets it.
    """

    __slots__ = ("_content", "_limit", "_loop", "_timer", "_waiting_since")

    def __init__(self, content: aiohttp.StreamReader, limit: float) -> None:
        self._content = content
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self._waiting_since: float | None = None
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(limit, self._check)

    def waiting(self) -> None:
        """The caller starts waiting for bytes."""
        self._waiting_since = self._loop.time()

    def done_waiting(self) -> None:
        """The caller has its bytes (or an error)."""
        self._waiting_since = None

    def close(self) -> None:
        """Stop checking (the stream was released)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        now = self._loop.time()
        since = self._waiting_since
        if since is None:
            due = now + self._limit
        elif now - since >= self._limit:
            self._timer = None
            self._content.set_exception(
                aiohttp.SocketTimeoutError("Timeout on reading data from socket")
            )
            return
        else:
            due = since + self._limit  # the earliest this wait can expire
        self._timer = self._loop.call_at(due, self._check)
