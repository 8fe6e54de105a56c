"""What a running batch reports: frozen values, one per thing that happened, in order.

`Batch.run` yields them as they happen: a line's every committed move (`LineChanged`), each
file written and recorded (`FileWritten`), an error recorded on a line that keeps its state
(`LineError`: a download to retry, a line left for the next run) and the runner's own
remarks (`Notice`: reconciling after a crash, waiting for a create's landing window).
A line's events come in the order its journal recorded them.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping
from typing import Protocol

import attrs

from imuzekit import errors

__all__ = [
    "BatchEvent",
    "Board",
    "FileWritten",
    "LineChanged",
    "LineError",
    "Notice",
    "ProgressCallback",
    "describe",
]


@attrs.frozen
class LineChanged:
    """A line moved from ``previous`` to ``state`` (committed in the journal).

    ``previous`` is None when this run had not seen the line before the move. ``error`` is the
    reason of a move to ``failed`` or ``uncertain`` (None otherwise).
    """

    key: str
    line: int
    provider: str
    previous: str | None
    state: str
    error: str | None = None
    attempts: int = 0


@attrs.frozen
class FileWritten:
    """One file of a line is on disk, verified and recorded (``index`` counts from 1)."""

    key: str
    index: int
    path: pathlib.Path
    size: int
    sha256: str
    remote_id: str | None = None


@attrs.frozen
class LineError:
    """An error recorded on a line that keeps its state (this run leaves it, or retries it)."""

    key: str
    message: str


@attrs.frozen
class Notice:
    """Something the runner is doing for the whole batch (reconciling, waiting)."""

    message: str


BatchEvent = LineChanged | FileWritten | LineError | Notice
"""Any event `Batch.run` yields."""


ProgressCallback = Callable[[int, int | None], None]
"""A download's ``on_progress(bytes_done, bytes_total_or_None)``."""


class Board(Protocol):
    """What shows a run's progress (the CLI's rich view): counts per state, bytes done.

    On a PostgreSQL journal the runner reads the whole batch (every worker's lines) once a
    second and passes its counts to `update`; a board that also has a method
    ``show_workers(workers, lease_seconds)`` is given the batch's live workers each time (each
    with ``host``, ``pid``, ``leases``: lines held, ``slots``: generation slots held, and
    ``idle_seconds`` since its last heartbeat).
    """

    def set_total(self, total: int) -> None:
        """How many lines the counts are out of."""

    def update(self, counts: Mapping[str, int]) -> None:
        """The lines in each state now."""

    def finish_bytes(self) -> None:
        """Every file is on disk."""


def describe(exc: errors.ImuzekitError) -> str:
    """One line explaining ``exc`` for the journal: its first line, or the field refused."""
    if isinstance(exc, errors.ValidationError):
        return f"invalid {exc.field}: {exc.reason}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
