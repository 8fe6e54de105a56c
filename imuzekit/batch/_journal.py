"""The batch journal: one SQLite row per manifest line, one committed transaction per change.

Schema (version 2; a version 1 journal is upgraded in place when opened):

    meta(name PRIMARY KEY, value)          batch_id (random: the markers' salt), schema_version
    lines(key PRIMARY KEY, line, provider, kind, request, digest, marker, state, token,
          remote_id, result, error, attempts, updated_at, settle_by)
    files(key, idx, remote_id, path, size, sha256, PRIMARY KEY (key, idx))
    targets(key, idx, path, PRIMARY KEY (key, idx))        the file names this batch claimed
    events(id, key, at, from_state, to_state, detail)      every transition, for the record

A line moves ``pending -> submitting -> submitted -> ready -> downloaded``, or to ``failed``
or ``uncertain``; `TRANSITIONS` lists every allowed move. ``submitting`` is committed
*before* the create request is sent and ``submitted`` (with the job token) right after the
answer, so a crash between the two leaves ``submitting``: the next run reconciles that line
against the provider before anything is sent again. ``submitting`` also records ``settle_by``,
the wall-clock time (``time.time()``, comparable across processes) until which the create could
still land: reconciliation concludes "absent" only after it. A line that goes from
``submitting`` to ``uncertain`` keeps it: resubmitting it before then could send the create twice.

Files: each downloaded file gets its ``files`` row (absolute path, size, SHA-256) as soon as it
is written, and a name is claimed in ``targets`` (while free on disk) before the download
starts; a batch only ever adopts a file its own journal recorded with the same size and
SHA-256. A claimed name can still be taken by someone else before the file is written: the
download never replaces a file there (the SDK publishes beside it) and the path it returns is
the one recorded.

The journal is always opened, and locked (`RunLock`), by its real path: a symlink or
another relative spelling reaches the same lock. A journal with more than one hard link is
refused: a second name would get its own lock and its own ``-wal`` file (two runs, and two
write-ahead logs, on one database).

WAL mode with ``synchronous=FULL``: a committed transition survives a crash or power loss. The
connection is used from worker threads, one call at a time (`AsyncJournal` serialises
them), so sqlite3's same-thread check is off.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pathlib
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import attrs

from imuzekit.batch._lock import JournalError, RunLock, check_single_link, real_path
from imuzekit.batch._manifest import ManifestLine

__all__ = [
    "STATES",
    "TRANSITIONS",
    "AsyncJournal",
    "FileRecord",
    "Journal",
    "JournalError",
    "LineRecord",
    "RunLock",
    "TransitionError",
    "check_single_link",
    "marker_for",
    "move_fields",
    "real_path",
]

SCHEMA_VERSION = "2"
STATES = (
    "pending",
    "submitting",
    "submitted",
    "ready",
    "downloaded",
    "failed",
    "uncertain",
)
TRANSITIONS: dict[str, frozenset[str]] = {
    # A move to the same state is not a move: it is refused unless listed here (none is). Above
    # all, submitting -> submitting would let a second sender send a line's create again.
    "pending": frozenset({"submitting", "failed"}),
    # From submitting: the answer (submitted), a refusal (failed, or pending when the provider
    # surely created nothing, e.g. a 429), or reconciliation (submitted/ready when found,
    # pending when surely absent, uncertain when it cannot tell).
    "submitting": frozenset({"submitted", "ready", "pending", "failed", "uncertain"}),
    "submitted": frozenset({"ready", "failed"}),
    "ready": frozenset({"downloaded", "failed"}),
    "downloaded": frozenset(),
    "failed": frozenset({"pending"}),  # --retry-failed
    "uncertain": frozenset({"pending", "submitted", "failed"}),  # --resubmit-uncertain, resolve
}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lines (
    key TEXT PRIMARY KEY,
    line INTEGER NOT NULL,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    digest TEXT NOT NULL,
    marker TEXT,
    state TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
    token TEXT,
    remote_id TEXT,
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    settle_by REAL
);
CREATE INDEX IF NOT EXISTS lines_state ON lines (state);
CREATE TABLE IF NOT EXISTS files (
    key TEXT NOT NULL REFERENCES lines (key),
    idx INTEGER NOT NULL,
    remote_id TEXT,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (key, idx)
);
CREATE TABLE IF NOT EXISTS targets (
    key TEXT NOT NULL REFERENCES lines (key),
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (key, idx)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    at REAL NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    detail TEXT
);
"""

# What a manifest line sets in its row (added, or changed while still pending or failed);
# both statements take these values, then the key.
_MANIFEST_COLUMNS = ("line", "provider", "kind", "request", "digest", "marker", "updated_at")
_INSERT_LINE = (
    f"INSERT INTO lines (state, {', '.join(_MANIFEST_COLUMNS)}, key)"
    f" VALUES ('pending', {', '.join('?' for _ in _MANIFEST_COLUMNS)}, ?)"
)
_UPDATE_LINE = (
    f"UPDATE lines SET {', '.join(f'{name} = ?' for name in _MANIFEST_COLUMNS)} WHERE key = ?"
)

T = TypeVar("T")


class TransitionError(JournalError):
    """A line cannot make this move (`TRANSITIONS`), e.g. a second sender of a line
    already in ``submitting``."""

    def __init__(self, key: str, from_state: str, to_state: str) -> None:
        super().__init__(f"line {key!r} cannot go from {from_state} to {to_state}")
        self.key = key
        self.from_state = from_state
        self.to_state = to_state


def marker_for(batch_id: str, key: str) -> str:
    """The line's reconciliation marker, ``ik:<12 hex>``: unique per batch and key.

    Salted with the journal's random batch id so that a new batch reusing keys never adopts an
    older batch's songs.
    """
    import hashlib

    return "ik:" + hashlib.sha256(f"{batch_id}\0{key}".encode()).hexdigest()[:12]


def move_fields(from_state: str, to_state: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The columns a move sets besides its state (every journal's one rule): ``fields``
    (ValueError for an unknown one), ``error`` cleared unless given, and ``settle_by`` kept only
    into ``submitting`` and from ``submitting`` into ``uncertain`` (cleared otherwise)."""
    unknown = set(fields) - {"token", "remote_id", "result", "error", "settle_by"}
    if unknown:
        raise ValueError(f"unknown journal fields {sorted(unknown)}")
    values = {"error": None, **fields}
    if to_state != "submitting" and (to_state != "uncertain" or from_state != "submitting"):
        values["settle_by"] = None
    return values


@attrs.frozen
class LineRecord:
    """A line's row in the journal."""

    key: str
    line: int
    provider: str
    kind: str
    request: str
    digest: str
    marker: str | None
    state: str
    token: str | None
    remote_id: str | None
    result: str | None
    error: str | None
    attempts: int
    updated_at: float
    settle_by: float | None = None
    """While ``submitting``: the wall-clock time until which the create could still land."""

    @property
    def params(self) -> dict[str, Any]:
        """The create call's keyword arguments (from the manifest)."""
        params: dict[str, Any] = json.loads(self.request)["params"]
        return params


@attrs.frozen
class FileRecord:
    """One downloaded file of a line (a Mureka generation has two)."""

    key: str
    idx: int
    remote_id: str | None
    path: str
    size: int
    sha256: str
    host: str | None = None
    """The machine that wrote it (a PostgreSQL journal records it; SQLite's is this one)."""


class Journal:
    """Synchronous access to the journal file; use `AsyncJournal` from async code."""

    def __init__(self, path: pathlib.Path, *, create: bool = True) -> None:
        if not create and not path.is_file():
            raise JournalError(f"no journal at {path}")
        check_single_link(path)
        # The real path: SQLite names its -wal and -shm files after the path it is given, so a
        # symlink must not make a second set of them (nor a second lock).
        path = real_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            with self._transaction() as db:
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    db.execute(statement)
                db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('batch_id', ?)", (secrets.token_hex(8),)
                )
                db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
                if self._meta("schema_version") == "1":
                    # Version 2 added settle_by (NULL: reconciliation assumes the window
                    # started at updated_at) and the targets table (created above).
                    db.execute("ALTER TABLE lines ADD COLUMN settle_by REAL")
                    db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", ("2",))
            version = self._meta("schema_version")
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{path} is not a usable journal: {exc}") from exc
        if version != SCHEMA_VERSION:
            raise JournalError(f"{path} has journal schema {version}, expected {SCHEMA_VERSION}")
        self.batch_id = self._meta("batch_id")

    def close(self) -> None:
        """Close the database (checkpointing the WAL)."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock at once: a reader never upgrades mid-way.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self, name: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise JournalError(f"{self.path} has no {name}")
        return str(row["value"])

    # -- reading ---------------------------------------------------------------------------

    def lines(self, states: Iterable[str] | None = None) -> list[LineRecord]:
        """Every line (in manifest order), or those in ``states``."""
        query = "SELECT * FROM lines"
        args: tuple[Any, ...] = ()
        if states is not None:
            wanted = tuple(states)
            query += f" WHERE state IN ({', '.join('?' * len(wanted))})"
            args = wanted
        rows = self._db.execute(query + " ORDER BY line", args).fetchall()
        return [LineRecord(**dict(row)) for row in rows]

    def line(self, key: str) -> LineRecord | None:
        """One line by key."""
        row = self._db.execute("SELECT * FROM lines WHERE key = ?", (key,)).fetchone()
        return LineRecord(**dict(row)) if row is not None else None

    def files(self, key: str | None = None) -> list[FileRecord]:
        """The downloaded files (of one line, or all)."""
        query = "SELECT * FROM files"
        args: tuple[str, ...] = ()
        if key is not None:
            query, args = query + " WHERE key = ?", (key,)
        rows = self._db.execute(query + " ORDER BY key, idx", args).fetchall()
        return [FileRecord(**dict(row)) for row in rows]

    def file(self, key: str, idx: int) -> FileRecord | None:
        """The recorded file ``idx`` (1-based) of a line, if this journal wrote it."""
        row = self._db.execute(
            "SELECT * FROM files WHERE key = ? AND idx = ?", (key, idx)
        ).fetchone()
        return FileRecord(**dict(row)) if row is not None else None

    def target(self, key: str, idx: int) -> str | None:
        """The path claimed for a line's file ``idx`` (see `claim()`), if any."""
        row = self._db.execute(
            "SELECT path FROM targets WHERE key = ? AND idx = ?", (key, idx)
        ).fetchone()
        return str(row["path"]) if row is not None else None

    def counts(self) -> dict[str, int]:
        """How many lines are in each state (every state listed)."""
        counts = dict.fromkeys(STATES, 0)
        for row in self._db.execute("SELECT state, COUNT(*) AS n FROM lines GROUP BY state"):
            counts[row["state"]] = row["n"]
        return counts

    # -- writing ---------------------------------------------------------------------------

    def sync(self, manifest: Sequence[ManifestLine]) -> list[str]:
        """Add the manifest's new lines as ``pending`` (one transaction); return conflicts.

        A line whose request changed since it was submitted is a conflict (a message naming
        it): its old generation exists and the journal cannot hold both. A changed line that
        was never sent is simply updated.
        """
        conflicts: list[str] = []
        now = time.time()
        with self._transaction() as db:
            for item in manifest:
                row = db.execute(
                    "SELECT state, digest FROM lines WHERE key = ?", (item.key,)
                ).fetchone()
                if row is not None and row["digest"] == item.digest:
                    db.execute("UPDATE lines SET line = ? WHERE key = ?", (item.number, item.key))
                    continue
                if row is not None and row["state"] not in ("pending", "failed"):
                    conflicts.append(
                        f"manifest line {item.number} (key {item.key!r}) changed since it "
                        f"was submitted (state {row['state']}); give it a new key or use "
                        "another journal"
                    )
                    continue
                # A new line, or one changed while nothing of it was sent: the manifest's side.
                marker = marker_for(self.batch_id, item.key) if item.marked else None
                values = (
                    item.number,
                    item.provider,
                    item.kind,
                    item.request_json(),
                    item.digest,
                    marker,
                    now,
                    item.key,
                )
                db.execute(_INSERT_LINE if row is None else _UPDATE_LINE, values)
                if row is None:
                    db.execute(
                        "INSERT INTO events (key, at, from_state, to_state, detail)"
                        " VALUES (?, ?, NULL, 'pending', 'added')",
                        (item.key, now),
                    )
        return conflicts

    def transition(
        self,
        key: str,
        to_state: str,
        *,
        detail: str | None = None,
        count_attempt: bool = False,
        **fields: Any,
    ) -> LineRecord:
        """Move a line to ``to_state`` (setting ``fields``) in one committed transaction.

        Refuses a move that `TRANSITIONS` does not allow (`TransitionError`), checked
        inside the transaction: of two senders of one line, only the first gets ``submitting``.
        ``error`` is cleared unless given; ``settle_by`` is kept in ``submitting`` and when
        moving from it to ``uncertain`` (the create could land until then), cleared otherwise.
        """
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT state FROM lines WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise JournalError(f"no line {key!r} in the journal")
            from_state = row["state"]
            if to_state not in TRANSITIONS[from_state]:
                raise TransitionError(key, from_state, to_state)
            fields = move_fields(from_state, to_state, fields)
            sets = ", ".join(f"{name} = ?" for name in fields)
            attempts = ", attempts = attempts + 1" if count_attempt else ""
            db.execute(
                f"UPDATE lines SET state = ?, {sets}, updated_at = ?{attempts} WHERE key = ?",
                (to_state, *fields.values(), now, key),
            )
            db.execute(
                "INSERT INTO events (key, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)",
                (key, now, from_state, to_state, detail or fields.get("error")),
            )
            record = db.execute("SELECT * FROM lines WHERE key = ?", (key,)).fetchone()
        return LineRecord(**dict(record))

    def note_error(self, key: str, error: str, *, settle_by: float | None = None) -> None:
        """Record an error on a line without changing its state (e.g. a download to retry);
        ``settle_by`` (a ``submitting`` line's create answer was lost) is set when given."""
        with self._transaction() as db:
            db.execute(
                "UPDATE lines SET error = ?, updated_at = ?,"
                " settle_by = CASE WHEN ? IS NULL THEN settle_by ELSE ? END WHERE key = ?",
                (error, time.time(), settle_by, settle_by, key),
            )

    def extend(self, key: str, settle_by: float) -> None:
        """Move a ``submitting`` line's settle_by later (its sender is alive and may send)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE lines SET settle_by = MAX(COALESCE(settle_by, 0), ?)"
                " WHERE key = ? AND state = 'submitting'",
                (settle_by, key),
            )

    def claim(self, key: str, idx: int, wanted: pathlib.Path) -> pathlib.Path:
        """Claim a fresh file name for a line's file ``idx``: ``wanted``, or else
        ``<stem>-2<suffix>``, ``<stem>-3<suffix>``, ... (the SDK's own numbering; the first
        that neither exists on disk nor is claimed by another file of this journal, compared
        case-insensitively). ``wanted`` should be absolute: the claim outlives the working
        directory.

        Committed before the download starts. It keeps this batch's lines apart; it does not
        make a file later found under the name this batch's (another batch or the user may
        put one there first), so such a file is never adopted nor removed.
        """
        with self._transaction() as db:
            taken = {
                str(row["path"]).casefold()
                for row in db.execute(
                    "SELECT path FROM targets WHERE NOT (key = ? AND idx = ?)", (key, idx)
                )
            }
            candidate, number = wanted, 1
            while str(candidate).casefold() in taken or os.path.lexists(candidate):
                number += 1
                candidate = wanted.with_name(f"{wanted.stem}-{number}{wanted.suffix}")
            db.execute(
                "INSERT OR REPLACE INTO targets (key, idx, path) VALUES (?, ?, ?)",
                (key, idx, str(candidate)),
            )
        return candidate

    def file_written(self, record: FileRecord) -> None:
        """Record one written file (path, size, SHA-256) at once, before the line is done."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO files (key, idx, remote_id, path, size, sha256)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.key,
                    record.idx,
                    record.remote_id,
                    record.path,
                    record.size,
                    record.sha256,
                ),
            )
            db.execute(
                "INSERT OR REPLACE INTO targets (key, idx, path) VALUES (?, ?, ?)",
                (record.key, record.idx, record.path),
            )

    def downloaded(self, key: str, files: Sequence[FileRecord]) -> LineRecord:
        """Record the line's files and move it to ``downloaded``, in one transaction."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT state FROM lines WHERE key = ?", (key,)).fetchone()
            if row is None or row["state"] != "ready":
                state = row["state"] if row is not None else "missing"
                raise TransitionError(key, state, "downloaded")
            db.execute("DELETE FROM files WHERE key = ?", (key,))
            db.executemany(
                "INSERT INTO files (key, idx, remote_id, path, size, sha256)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(f.key, f.idx, f.remote_id, f.path, f.size, f.sha256) for f in files],
            )
            db.execute(
                "UPDATE lines SET state = 'downloaded', error = NULL, updated_at = ? WHERE key = ?",
                (now, key),
            )
            db.execute(
                "INSERT INTO events (key, at, from_state, to_state, detail)"
                " VALUES (?, ?, 'ready', 'downloaded', ?)",
                (key, now, ", ".join(f.path for f in files)),
            )
            record = db.execute("SELECT * FROM lines WHERE key = ?", (key,)).fetchone()
        return LineRecord(**dict(record))


class AsyncJournal:
    """The journal for async code: every call runs in a worker thread, one at a time.

    A call that started always finishes (anyio does not abandon a thread on cancellation), so
    Ctrl-C never interrupts a transaction half way.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._limiter = anyio.CapacityLimiter(1)

    @classmethod
    async def open(cls, path: pathlib.Path) -> AsyncJournal:
        """Open (creating if needed) the journal at ``path``."""
        return cls(await anyio.to_thread.run_sync(Journal, path))

    async def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``func(*args, **kwargs)`` (a Journal method) in the worker thread."""
        return await anyio.to_thread.run_sync(
            functools.partial(func, *args, **kwargs), limiter=self._limiter
        )

    @property
    def batch_id(self) -> str:
        """The batch's random id (the markers' salt)."""
        return self.journal.batch_id

    async def aclose(self) -> None:
        """Close the database."""
        await self.call(self.journal.close)
