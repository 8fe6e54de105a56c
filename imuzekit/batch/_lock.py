"""The journal's identity on disk: its real path, a single hard link, and the run lock.

SQLite names a database's ``-wal`` and ``-shm`` files after the path it was given, and the run
lock is a side file named the same way: a journal has exactly one name, its real path
(symlinks resolved), and a journal reachable under two names (a hard link) is refused.
"""

from __future__ import annotations

import os
import pathlib
from types import TracebackType
from typing import Self

from imuzekit import errors

__all__ = ["JournalError", "RunLock", "check_single_link", "is_postgres_url", "real_path"]


class JournalError(errors.ImuzekitError):
    """The journal cannot be used (another run holds it, a changed line, a bad file)."""


def is_postgres_url(journal: str) -> bool:
    """Whether ``journal`` names a PostgreSQL journal (``postgresql://`` or ``postgres://``)."""
    return journal.startswith(("postgresql://", "postgres://"))


def real_path(path: pathlib.Path) -> pathlib.Path:
    """``path`` absolute, with every symlink resolved (the journal's one identity)."""
    return pathlib.Path(os.path.realpath(path))


def check_single_link(path: pathlib.Path) -> None:
    """`JournalError` when the journal file at ``path`` has more than one hard link.

    The lock (``<journal>.lock``) and SQLite's ``-wal`` and ``-shm`` files are named after the
    path: under a second name the same database would get a second lock and a second
    write-ahead log, so two runs could send the same lines and lose each other's commits.
    """
    try:
        links = os.stat(path).st_nlink
    except FileNotFoundError:
        return
    except OSError as exc:
        raise JournalError(f"cannot read {path}: {exc}") from exc
    if links > 1:
        raise JournalError(
            f"{path} has {links} hard links; a journal must have exactly one name (its lock "
            "and write-ahead log are named after it, so a second name would let two runs "
            "use it at once): copy it instead of linking it"
        )


class RunLock:
    """An exclusive lock on a journal for one ``batch run`` (released by the OS on any exit).

    Two runs on one journal would submit the same lines twice; ``flock`` on a side file makes
    the second one stop at once, and a SIGKILLed run never leaves a stale lock behind. The side
    file is named after the journal's real path; a journal with a second hard link is refused
    (`check_single_link`), as a second name would find a second lock.
    """

    def __init__(self, journal_path: pathlib.Path) -> None:
        # By the real path: a symlink or "a/../journal.sqlite" must find the same lock.
        journal_path = real_path(journal_path)
        self.journal = journal_path
        self.path = journal_path.with_name(journal_path.name + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> Self:
        # A hard link has another real path, so another lock: refused outright.
        check_single_link(self.journal)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks; run one at a time
            self._fd = fd
            return self
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(
                f"another `imuzekit batch` is using {self.path.with_suffix('')}; "
                "wait for it to finish"
            ) from None
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
