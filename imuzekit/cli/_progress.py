"""Rich progress for many jobs: one bar per state, and one for the bytes downloaded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

__all__ = ["ByteMeter", "StateBoard", "human_bytes"]


def human_bytes(size: float) -> str:
    """``1.4 MB``-style sizes (decimal units, like rich's download column)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


class StateBoard:
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
            TextColumn("[bold]{task.description:<11}"),
            BarColumn(bar_width=40),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
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

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

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
        detail = human_bytes(self._bytes_done)
        if shown_total:
            detail += f" / {human_bytes(shown_total)}"
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
