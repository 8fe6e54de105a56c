"""Rich progress: for many jobs one bar per state (`StateBoard`); for a batch, the view that
reads at a glance (`BatchBoard`); and the bytes downloaded."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, Self

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)
from rich.table import Table
from rich.text import Text

__all__ = ["BatchBoard", "ByteMeter", "StateBoard", "human_bytes"]


def human_bytes(size: float) -> str:
    """``1.4 MB``-style sizes (decimal units, like rich's download column)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _bytes_text(done: int, total: int) -> str:
    """``1.2 MB / 3.4 MB`` (the total once known; never below what is done)."""
    text = human_bytes(done)
    shown_total = max(total, done)
    return f"{text} / {human_bytes(shown_total)}" if shown_total else text


def _columns() -> tuple[ProgressColumn, ...]:
    """A bar's name, the bar, its percentage and its detail text."""
    return (
        TextColumn("[bold]{task.description:<11}"),
        BarColumn(bar_width=40),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
    )


class _Live:
    """A board whose rich `Progress` is shown live inside ``with board:``."""

    _progress: Progress

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()


class StateBoard(_Live):
    """A bar per job state (how many of all the jobs are in it now) and a bytes bar.

    ``update(counts)`` sets the state bars; `add_bytes()` moves the bytes bar. Disabled (no
    output at all) when ``enabled`` is false, e.g. under ``--json`` or when not on a terminal.
    """

    def __init__(
        self,
        console: Console,
        states: Sequence[str],
        *,
        total: int = 0,
        enabled: bool = True,
        bytes_bar: bool = True,
    ) -> None:
        self.enabled = enabled
        self._total = total
        self._progress = Progress(
            *_columns(),
            console=console,
            disable=not enabled,
            refresh_per_second=8,
        )
        self._states: dict[str, TaskID] = {
            state: self._progress.add_task(state, total=max(total, 1), detail=f"0/{total}")
            for state in states
        }
        self._bytes_done = 0
        self._bytes_total = 0
        self._bytes: TaskID | None = (
            self._progress.add_task("downloaded", total=None, detail="0 B") if bytes_bar else None
        )

    def set_total(self, total: int) -> None:
        """How many jobs the state bars count over."""
        self._total = total
        for task in self._states.values():
            self._progress.update(task, total=max(total, 1))

    def update(self, counts: Mapping[str, int]) -> None:
        """Set each state's bar to its number of jobs."""
        for state, task in self._states.items():
            count = counts.get(state, 0)
            self._progress.update(task, completed=count, detail=f"{count}/{self._total}")

    def add_bytes(self, done: int, total: int) -> None:
        """``done`` more bytes received, ``total`` more bytes announced (Content-Length)."""
        if self._bytes is None:
            return
        self._bytes_done += done
        self._bytes_total += total
        shown_total = max(self._bytes_total, self._bytes_done) or None
        detail = _bytes_text(self._bytes_done, self._bytes_total)
        self._progress.update(
            self._bytes, completed=self._bytes_done, total=shown_total, detail=detail
        )

    def finish_bytes(self) -> None:
        """Mark the bytes bar complete (every file is on disk)."""
        if self._bytes is not None:
            self._progress.update(self._bytes, total=max(self._bytes_done, 1))


class ByteMeter:
    """Turns the downloader's per-file ``on_progress(done, total)`` calls into byte deltas.

    ``Client.download_many`` calls one callback for every file without saying which; each
    file is downloaded by its own task, so the running task tells the files apart. A file whose
    count goes back down restarted (the server ignored a Range): only new bytes are counted.
    """

    def __init__(self, sink: Callable[[int, int], None]) -> None:
        self._sink = sink
        self._seen: dict[object, tuple[int, int | None]] = {}

    def callback(self) -> Callable[[int, int | None], None]:
        """A callback for one ``Client.download`` call."""
        key = object()
        return lambda done, total: self._record(key, done, total)

    def __call__(self, done: int, total: int | None) -> None:
        """The shared callback for ``Client.download_many``, keyed by the calling task."""
        try:
            key: object = asyncio.current_task()
        except RuntimeError:
            key = None
        self._record(key, done, total)

    def _record(self, key: object, done: int, total: int | None) -> None:
        last_done, last_total = self._seen.get(key, (0, None))
        delta = done - last_done if done >= last_done else 0
        total_delta = 0
        if total is not None and last_total is None:
            total_delta = total
        elif total is not None and last_total is not None and total != last_total:
            total_delta = total - last_total
        self._seen[key] = (max(done, last_done), total if total is not None else last_total)
        if delta or total_delta:
            self._sink(delta, total_delta)


# -- the batch view ------------------------------------------------------------------------

_SETTLED = ("downloaded", "failed", "uncertain")
"""States with no work left in a run: the overall bar counts these as done."""


class _Rate:
    """A value's rate of change over the last ``window`` seconds (on ``clock``)."""

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self._window = window
        self._clock = clock
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, value: float) -> None:
        now = self._clock()
        self._samples.append((now, value))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()

    def per_second(self) -> float | None:
        """None until two samples some time apart."""
        if len(self._samples) < 2:
            return None
        (t0, v0), (t1, v1) = self._samples[0], self._samples[-1]
        return (v1 - v0) / (t1 - t0) if t1 > t0 else None


def _clock_text(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class _WorkerInfo(Protocol):
    """What the view reads of a PostgreSQL worker (the journal's worker record)."""

    @property
    def host(self) -> str: ...
    @property
    def leases(self) -> int: ...
    @property
    def slots(self) -> int: ...
    @property
    def idle_seconds(self) -> float: ...


class _View(Progress):
    """The bars, each followed by the line of text `below` gives for it (if any)."""

    below: Callable[[TaskID], RenderableType | None] = staticmethod(lambda task: None)

    def get_renderables(self) -> Iterable[RenderableType]:
        for task in self.tasks:
            table: Table = self.make_tasks_table([task])
            yield table
            text = self.below(task.id)
            if text is not None:
                yield text


class BatchBoard(_Live):
    """A batch's progress at a glance: one overall bar (lines done of the total, the rate in
    lines a minute, the time left), one line of counts per state, one bytes bar with the
    throughput and, on a shared (PostgreSQL) journal, a line on the live workers.

    The runner calls `set_total` and `update` (on PostgreSQL: the whole batch, every second)
    and `show_workers`; the byte meter calls `add_bytes`. Disabled (no output at all) when
    ``enabled`` is false, e.g. under ``--json`` or when not on a terminal. ``clock`` (seconds)
    times the rates.
    """

    def __init__(
        self,
        console: Console,
        states: Sequence[str],
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self._states = tuple(states)
        self._counts: dict[str, int] = dict.fromkeys(self._states, 0)
        self._total = 0
        self._started = False
        self._lines_rate = _Rate(60.0, clock)
        self._bytes_rate = _Rate(10.0, clock)
        self._bytes_done = 0
        self._bytes_total = 0
        self._workers: Text | None = None
        self._progress = _View(
            *_columns(),
            console=console,
            disable=not enabled,
            refresh_per_second=4,
        )
        self._progress.below = self.text_below
        self._lines = self._progress.add_task("lines", total=1, detail=self._lines_detail())
        self._bytes = self._progress.add_task("downloaded", total=None, detail="0 B")

    # -- what the runner calls -----------------------------------------------------------

    def set_total(self, total: int) -> None:
        """How many lines the batch (or this run) has."""
        self._total = total
        self._progress.update(self._lines, total=max(total, 1), detail=self._lines_detail())

    def update(self, counts: Mapping[str, int]) -> None:
        """The lines in each state now."""
        self._counts = {state: counts.get(state, 0) for state in self._states}
        done = self.done
        self._lines_rate.add(done)
        if not self._started:
            # Lines done before this run are not this run's rate.
            self._started = True
            self._progress.reset(self._lines, completed=done, total=max(self._total, 1))
        self._progress.update(self._lines, completed=done, detail=self._lines_detail())

    def show_workers(self, workers: Sequence[_WorkerInfo], lease_seconds: float) -> None:
        """The batch's live workers (those not stopped): how many, on how many hosts, what
        they hold; the ones silent for longer than a lease (their lines are taken over)."""
        silent = [w for w in workers if w.idle_seconds > lease_seconds]
        alive = [w for w in workers if w.idle_seconds <= lease_seconds]
        hosts = sorted({w.host for w in alive})
        text = (
            f"{len(alive)} live on {len(hosts)} host{'s' * (len(hosts) != 1)}"
            f" ({', '.join(hosts[:3])}{', ...' if len(hosts) > 3 else ''}):"
            f" {sum(w.leases for w in alive)} lines held,"
            f" {sum(w.slots for w in alive)} generation slots"
        )
        if silent:
            text += f"; {len(silent)} silent > {lease_seconds:g} s: their lines are taken over"
        self._workers = Text.assemble(("workers".ljust(12), "bold"), text)
        self._progress.refresh()

    def add_bytes(self, done: int, total: int) -> None:
        """``done`` more bytes received, ``total`` more bytes announced (Content-Length)."""
        self._bytes_done += done
        self._bytes_total += total
        self._bytes_rate.add(self._bytes_done)
        shown_total = max(self._bytes_total, self._bytes_done) or None
        self._progress.update(
            self._bytes, completed=self._bytes_done, total=shown_total, detail=self._bytes_detail()
        )

    def finish_bytes(self) -> None:
        """Mark the bytes bar complete (every file is on disk)."""
        self._progress.update(self._bytes, total=max(self._bytes_done, 1))

    # -- what it shows --------------------------------------------------------------------

    def renderable(self) -> RenderableType:
        """The view as it is now (what the live display redraws)."""
        return self._progress.get_renderable()

    @property
    def done(self) -> int:
        """Lines with no work left: downloaded, failed or uncertain."""
        return sum(self._counts.get(state, 0) for state in _SETTLED)

    def _lines_detail(self) -> str:
        done, total = self.done, self._total
        per_second = self._lines_rate.per_second()
        if per_second is None:
            return f"{done}/{total} done  - lines/min  ETA -"
        rate = f"{per_second * 60:.1f} lines/min"
        if done >= total:
            return f"{done}/{total} done  {rate}  ETA 0:00:00"
        eta = _clock_text((total - done) / per_second) if per_second > 0 else "-"
        return f"{done}/{total} done  {rate}  ETA {eta}"

    def _bytes_detail(self) -> str:
        detail = _bytes_text(self._bytes_done, self._bytes_total)
        per_second = self._bytes_rate.per_second()
        if per_second is not None:
            detail += f"  {human_bytes(per_second)}/s"
        return detail

    def states_text(self) -> Text:
        """The compact line of counts per state (a state with lines in bold)."""
        text = Text("states".ljust(12), style="bold")
        for n, state in enumerate(self._states):
            count = self._counts.get(state, 0)
            if n:
                text.append(" · ", style="dim")
            text.append(f"{state} {count}", style="bold" if count else "dim")
        return text

    def text_below(self, task: TaskID) -> Text | None:
        """The text line shown under a bar: the states under the lines bar, the workers
        under the bytes bar (once known)."""
        if task == self._lines:
            return self.states_text()
        if task == self._bytes:
            return self._workers
        return None
