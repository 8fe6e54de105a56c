"""Blocking file system calls in worker threads, for the downloader (`imuzekit.downloads`).

`Handoff` runs a call in a thread with a bound on threads stuck on a disk that stopped
answering; `DirectorySync` (called in those threads) makes renames into a directory durable
with as few directory fsyncs as the files finishing together allow.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from imuzekit import errors

__all__ = ["DirectorySync", "Handoff", "fsync_directory"]


class Handoff:
    """Runs blocking file system calls in threads, and counts those the disk never answered.

    The threads are a pool of ``limit`` of its own (never the default executor the rest of the
    program shares). A call given up on (its deadline passed) keeps its thread until the disk
    answers; it counts as stuck until then, and once ``limit`` are stuck every hand-off fails
    at once with `DownloadError` instead of queueing behind them. `close()` lets the threads
    end; a hand-off after it fails with `DownloadError`.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stuck = 0
        self._lock = threading.Lock()  # the loop and the workers both update the counts
        # Made on first use. A thread stuck on the disk keeps its worker, so at most `limit`
        # calls run or hang at once; `check()` refuses more once `limit` are stuck.
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def check(self) -> None:
        """Raise `DownloadError` when ``limit`` calls are stuck on the disk."""
        if self.stuck >= self.limit:
            raise errors.DownloadError(
                f"the disk has not answered {self.stuck} calls; not starting another"
            )

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` in a worker thread, abandoned (and counted while it runs) on cancel."""
        with self._lock:
            self.check()
        pool = self._pool
        if pool is None:
            if self._closed:
                raise errors.DownloadError("the downloader is closed; its disk threads are gone")
            pool = self._pool = ThreadPoolExecutor(self.limit, thread_name_prefix="imuzekit-disk")
            # A Client dropped without close(): its idle threads end when it is collected.
            weakref.finalize(self, pool.shutdown, wait=False)
        state = {"running": False, "abandoned": False}

        def call() -> Any:
            with self._lock:
                if state["abandoned"]:
                    return None  # given up before it started: nothing to do
                state["running"] = True
            try:
                return func(*args)
            finally:
                with self._lock:
                    state["running"] = False
                    if state.get("abandoned"):  # given up on while it ran: it was stuck
                        self.stuck -= 1

        # asyncio's executor rather than anyio.to_thread: a tenth of the calls per hand-off,
        # and no checkpoint (an extra trip round the event loop) before and after it. A
        # cancelled wait abandons the call: one not started never runs, one running finishes
        # in its thread and is counted as stuck until then. The caller's context variables go
        # with the call (log filters, tracing), as with asyncio.to_thread.
        context = contextvars.copy_context()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, functools.partial(context.run, call)
            )
        except BaseException:
            with self._lock:
                if not state["abandoned"]:
                    state["abandoned"] = True
                    self.stuck += state["running"]
            raise

    def close(self) -> None:
        """Let the worker threads end once idle (a call still running finishes first)."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)


class DirectorySync:
    """Makes renames into one directory durable with as few directory fsyncs as possible.

    Called in a worker thread, right after the rename it makes durable (within the same hand-off
    as the file's own fsync and publication: one trip to a thread a file). `sync()` returns once
    an fsync of the directory that *started after the call* has finished; callers that arrive
    while one fsync runs share the next one (a group commit). Sixteen transfers finishing
    together cost two fsyncs, not sixteen: each is a journal commit on ext4, and they were the
    largest cost of a download after the data itself. On a disk that stopped answering, the
    callers behind a hung fsync of their folder wait in their threads (those of other folders
    do not); the downloader's deadline gives up on them and `Handoff` counts them as stuck.
    """

    def __init__(self) -> None:
        # One fsync at a time a folder: a caller that waited for it finds out whether it
        # started late enough to cover its rename, from the count of fsyncs started, read
        # under the folder's lock.
        self._locks: dict[str, threading.Lock] = {}
        self._started: dict[str, int] = {}

    def sync(self, directory: str) -> None:
        """Blocking: make the renames into ``directory`` made before this call durable.

        Raises:
            OSError: the disk failed the fsync (`fsync_directory`).
        """
        ticket = self._started.get(directory, 0)
        # setdefault is atomic: two threads arriving together get the same lock.
        lock = self._locks.get(directory) or self._locks.setdefault(directory, threading.Lock())
        with lock:
            before = self._started.get(directory, 0)
            if before > ticket:
                return  # an fsync began after our rename and has finished (it ran under the lock)
            self._started[directory] = before + 1
            try:
                fsync_directory(directory)
            except BaseException:
                # It failed: the callers counting on it must run their own (none started
                # meanwhile: we hold the lock).
                self._started[directory] = before
                raise


def fsync_directory(directory: str | Path) -> None:
    """Make the renames into ``directory`` durable (where the platform can open a directory).

    Raises:
        OSError: the disk failed to write it (EIO, ENOSPC, EDQUOT): the renames may be lost.
            Where a directory cannot be opened or fsynced at all (Windows, some network file
            systems), nothing is raised: there is nothing more to do.
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in _WRITE_FAILED:
            raise
    finally:
        os.close(fd)


# What fsync reports when the disk did not write what it was given.
_WRITE_FAILED = frozenset(
    getattr(errno, name) for name in ("EIO", "ENOSPC", "EDQUOT") if hasattr(errno, name)
)
