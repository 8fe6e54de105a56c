"""Shared plumbing of the benchmark scripts: isolated client processes, statistics, tables.

Each contender runs in its own freshly spawned process (:func:`run_isolated`, or
:class:`Resident` for contenders that take turns pass by pass), so its peak RSS and CPU time are
its own and not the sum of everything measured before it. The libraries a
contender needs are imported before its measurement starts (``imports=``), so CPU figures do
not include import time; RSS figures do include the imported libraries, as a user's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import resource
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

__all__ = [
    "OtherLoad",
    "PassServer",
    "Resident",
    "busy_fraction",
    "cpu_pair",
    "machine",
    "percentile",
    "print_table",
    "rss_mb",
    "run_isolated",
]

AsyncTarget = Callable[..., Coroutine[Any, Any, dict[str, Any]]]
OnePass = Callable[[int], Awaitable[dict[str, Any]]]
PassServer = Callable[[OnePass], Awaitable[dict[str, Any]]]
"""What a `Resident` hands its target as ``serve``: ``await serve(one_pass)`` runs
``one_pass(number)`` each time the parent asks, and returns when the parent says stop."""


def cpu_pair() -> tuple[int, int] | None:
    """Two CPUs, one for the emulator and one for the client under test; None if fewer.

    Used with ``--pin``: it keeps the two processes off each other's core. Not the default:
    on the 2-core VM these figures were taken on, every request then costs a cross-core
    wake-up, and the emulator, not the client, becomes the bottleneck (see docs/performance.md).
    """
    available = sorted(os.sched_getaffinity(0))
    return (available[0], available[1]) if len(available) >= 2 else None


def rss_mb() -> float:
    """The calling process's resident set size right now, in MiB (Linux ``/proc``)."""
    with open("/proc/self/statm") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def _child(
    conn: multiprocessing.connection.Connection,
    target: AsyncTarget,
    kwargs: dict[str, Any],
    imports: Sequence[str],
    pin: bool,
) -> None:
    try:
        pair = cpu_pair() if pin else None
        if pair is not None:
            os.sched_setaffinity(0, {pair[1]})
        for name in imports:
            importlib.import_module(name)
        before = resource.getrusage(resource.RUSAGE_SELF)
        rss_before = rss_mb()
        result = asyncio.run(target(**kwargs))
        after = resource.getrusage(resource.RUSAGE_SELF)
        result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        result["peak_rss_mb"] = after.ru_maxrss / 1024  # KiB on Linux
        result["start_rss_mb"] = rss_before
        conn.send(("ok", result))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def run_isolated(
    target: AsyncTarget,
    *,
    timeout: float,
    imports: Sequence[str] = (),
    pin: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run ``asyncio.run(target(**kwargs))`` in a fresh process and return its result dict.

    The dict gains ``cpu_s`` (user + system CPU seconds of the run), ``peak_rss_mb`` (the
    process's high-water RSS) and ``start_rss_mb`` (RSS just before the run). The child is
    terminated if it has not answered after ``timeout`` seconds. With ``pin`` it runs on the
    second CPU of :func:`cpu_pair` (pair it with ``EmulatorProcess(pin=True)``).
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(
        target=_child,
        args=(child, target, kwargs, tuple(imports), pin),
        name="imuzekit-bench-client",
    )
    process.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise TimeoutError(f"{target.__name__} did not finish within {timeout:.0f} s")
        status, value = parent.recv()
    finally:
        parent.close()
        process.join(10.0)
        if process.is_alive():
            process.terminate()  # only this child, by its handle
            process.join(5.0)
    if status != "ok":
        raise RuntimeError(f"{target.__name__} failed in its process:\n{value}")
    return dict(value)


def _resident_child(
    conn: multiprocessing.connection.Connection,
    target: AsyncTarget,
    kwargs: dict[str, Any],
    imports: Sequence[str],
) -> None:
    try:
        for name in imports:
            importlib.import_module(name)
        state: dict[str, float] = {}

        async def serve(one_pass: OnePass) -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            while True:
                # In a thread: the loop stays free for the sessions' housekeeping between passes.
                kind, number = await loop.run_in_executor(None, conn.recv)
                if kind == "stop":
                    return {}
                state.setdefault("rss_before", rss_mb())  # after the setup, before any pass
                before = resource.getrusage(resource.RUSAGE_SELF)
                result = await one_pass(number)
                after = resource.getrusage(resource.RUSAGE_SELF)
                result["cpu_s"] = (after.ru_utime - before.ru_utime) + (
                    after.ru_stime - before.ru_stime
                )
                conn.send(("pass", result))

        asyncio.run(target(serve=serve, **kwargs))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        conn.send(("done", {"peak_rss_mb": peak, "rss_before": state.get("rss_before", 0.0)}))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class Resident:
    """A contender that stays up in a process of its own and runs one pass each time it is asked.

    ``target(serve=..., **kwargs)`` sets itself up (sessions, metadata: not timed), then calls
    ``await serve(one_pass)``. Contenders that are all resident can take turns pass by pass
    instead of process by process: a machine that speeds up or slows down over tens of seconds
    (another tenant of the host, kernel writeback) then affects every contender alike, not the
    one whose turn it happened to be. A waiting contender blocks on its pipe and uses no CPU.
    Use as a context manager; `close()` returns ``peak_rss_mb`` and ``rss_before`` (RSS just
    before the first pass).
    """

    def __init__(
        self, target: AsyncTarget, *, timeout: float, imports: Sequence[str] = (), **kwargs: Any
    ) -> None:
        self._name = target.__name__
        self._timeout = timeout
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_resident_child,
            args=(child, target, kwargs, tuple(imports)),
            name="imuzekit-bench-client",
        )
        self._process.start()
        child.close()

    def __enter__(self) -> Resident:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def _answer(self) -> tuple[str, Any]:
        if not self._conn.poll(self._timeout):
            raise TimeoutError(f"{self._name} did not answer within {self._timeout:.0f} s")
        kind, value = self._conn.recv()
        if kind == "error":
            raise RuntimeError(f"{self._name} failed in its process:\n{value}")
        return kind, value

    def run_pass(self, number: int) -> dict[str, Any]:
        """Run one pass in the contender's process; its result gains ``cpu_s``."""
        self._conn.send(("pass", number))
        return dict(self._answer()[1])

    def close(self) -> dict[str, Any]:
        """Stop the contender; returns its ``peak_rss_mb`` and ``rss_before``."""
        self._conn.send(("stop", 0))
        try:
            return dict(self._answer()[1])
        finally:
            self._stop()

    def _stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()
        self._process.join(10.0)
        if self._process.is_alive():
            self._process.terminate()  # only this child, by its handle
            self._process.join(5.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print a Markdown table with right-aligned columns (left-aligned first column)."""
    body = [list(row) for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "| " + " | ".join(parts) + " |"

    print(line(headers))
    print(
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i else (":" + "-" * (w + 1)) for i, w in enumerate(widths)
        )
        + "|"
    )
    for row in body:
        print(line(row))


def machine() -> str:
    """A one-line description of the machine and the interpreter."""
    import aiohttp

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for text in handle:
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    busy = busy_fraction()
    note = "" if busy < 0.1 else " (other work is running: expect noisier figures)"
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()} "
        f"({sys.implementation.name}), aiohttp {aiohttp.__version__}, {platform.system()} "
        f"{platform.release()}; CPU busy before the run: {busy:.0%}{note}"
    )


def _machine_busy_seconds() -> float:
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # without guest time (counted)


def _own_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # joined children only
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class OtherLoad:
    """CPU time the rest of the machine used while a benchmark ran (a context manager).

    The benchmark's own processes (this one and every child it joined: emulator and clients)
    are subtracted from the machine's busy time; leave the block only after they exited.
    """

    def __enter__(self) -> OtherLoad:
        self._machine = _machine_busy_seconds()
        self._own = _own_cpu_seconds()
        self._started = time.monotonic()
        self.cpu_seconds = 0.0
        self.wall = 0.0
        return self

    def __exit__(self, *exc_info: object) -> None:
        machine = _machine_busy_seconds() - self._machine
        own = _own_cpu_seconds() - self._own
        self.cpu_seconds = max(0.0, machine - own)
        self.wall = time.monotonic() - self._started

    def describe(self) -> str:
        """One line for the report."""
        share = self.cpu_seconds / self.wall if self.wall else 0.0
        note = "" if share < 0.1 else ": the figures above are disturbed, run again when idle"
        return (
            f"other processes used {self.cpu_seconds:.1f} CPU-seconds during the run "
            f"({share:.0%} of one core){note}"
        )


def busy_fraction(seconds: float = 1.0) -> float:
    """How busy the machine's CPUs were over the next ``seconds`` (0..1), from /proc/stat."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return idle, sum(fields)

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    elapsed = total1 - total0
    return 0.0 if elapsed <= 0 else 1.0 - (idle1 - idle0) / elapsed
