"""The batch journal on PostgreSQL, shared by many workers on many machines.

The same states, `TRANSITIONS` (one table, imported) and
records (`LineRecord`, `FileRecord`) as the SQLite journal, and the same
operations, as coroutines: `PgJournal.sync()` (idempotent: three workers loading one
manifest at once make one row per line), `PgJournal.transition()`,
`PgJournal.note_error()`, `PgJournal.extend()`, `PgJournal.claim()` (a file name),
`PgJournal.file_written()` (with the host), `PgJournal.downloaded()`, and the
readers. What many workers need besides (leases, slots, pauses, the workers registry) is in
`imuzekit.batch._pg_leases`; the schema, its version check and the URL's masking in
`imuzekit.batch._pg_base`.

A move made with ``worker=`` is *fenced*: it happens only while that worker holds a live
lease on the line (`LeaseLostError` otherwise), so a worker that stalled past its lease
cannot act on a line another worker took over. Moves to a state with no work left
(``downloaded``, ``failed``, ``uncertain``) release the lease.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

import anyio
import attrs
import psycopg.errors

from imuzekit.batch._journal import (
    STATES,
    TRANSITIONS,
    FileRecord,
    LineRecord,
    TransitionError,
    marker_for,
    move_fields,
)
from imuzekit.batch._lock import JournalError, is_postgres_url
from imuzekit.batch._manifest import ManifestLine
from imuzekit.batch._pg_base import NOW, PG_SCHEMA_VERSION, LeaseLostError, mask_url
from imuzekit.batch._pg_leases import (
    LINE_COLUMNS,
    ClaimedLine,
    PauseRecord,
    PgLeases,
    WorkerRecord,
)

__all__ = [
    "PG_SCHEMA_VERSION",
    "ClaimedLine",
    "EventRecord",
    "LeaseLostError",
    "PauseRecord",
    "PgJournal",
    "WorkerRecord",
    "is_postgres_url",
    "mask_url",
]

_FILE_COLUMNS = ", ".join(field.name for field in attrs.fields(FileRecord))
_DONE = frozenset({"downloaded", "failed", "uncertain"})  # no work left: the lease goes
_TARGETS_LOCK = 0x696D757A74617267  # serialises file-name claims across workers
_SYNC_TRIES = 5


@attrs.frozen
class EventRecord:
    """One recorded change of a line (``from_state`` None: the line was added)."""

    id: int
    key: str
    at: float
    from_state: str | None
    to_state: str
    detail: str | None
    worker: str | None


def _first_free(wanted: pathlib.Path, taken: set[str]) -> pathlib.Path:
    candidate, number = wanted, 1
    while str(candidate).casefold() in taken or os.path.lexists(candidate):
        number += 1
        candidate = wanted.with_name(f"{wanted.stem}-{number}{wanted.suffix}")
    return candidate


class PgJournal(PgLeases):
    """The journal on a PostgreSQL server; open it with ``await PgJournal.open(url)``."""

    # -- reading ---------------------------------------------------------------------------

    async def lines(self, states: Iterable[str] | None = None) -> list[LineRecord]:
        """Every line (in manifest order), or those in ``states``."""
        query, args = f"SELECT {LINE_COLUMNS} FROM lines", None
        if states is not None:
            query, args = query + " WHERE state = ANY(%s)", (list(states),)
        return [LineRecord(**row) for row in await self._all(query + " ORDER BY line", args)]

    async def line(self, key: str) -> LineRecord | None:
        """One line by key."""
        row = await self._one(f"SELECT {LINE_COLUMNS} FROM lines WHERE key = %s", (key,))
        return LineRecord(**row) if row is not None else None

    async def files(self, key: str | None = None) -> list[FileRecord]:
        """The downloaded files (of one line, or all), with the host that wrote each."""
        query, args = f"SELECT {_FILE_COLUMNS} FROM files", None
        if key is not None:
            query, args = query + " WHERE key = %s", (key,)
        return [FileRecord(**row) for row in await self._all(query + " ORDER BY key, idx", args)]

    async def file(self, key: str, idx: int) -> FileRecord | None:
        """The recorded file ``idx`` (1-based) of a line, if this journal wrote it."""
        row = await self._one(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE key = %s AND idx = %s", (key, idx)
        )
        return FileRecord(**row) if row is not None else None

    async def target(self, key: str, idx: int) -> str | None:
        """The path claimed for a line's file ``idx`` (see `claim()`), if any."""
        row = await self._one("SELECT path FROM targets WHERE key = %s AND idx = %s", (key, idx))
        return str(row["path"]) if row is not None else None

    async def counts(self) -> dict[str, int]:
        """How many lines are in each state (every state listed)."""
        counts = dict.fromkeys(STATES, 0)
        for row in await self._all("SELECT state, count(*) AS n FROM lines GROUP BY state"):
            counts[row["state"]] = int(row["n"])
        return counts

    async def events(
        self, key: str | None = None, *, after: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        """Recorded changes in order (of one line, or all), those with an id above ``after``."""
        query = "SELECT * FROM events WHERE id > %s"
        args: list[object] = [after]
        if key is not None:
            query += " AND key = %s"
            args.append(key)
        rows = await self._all(query + " ORDER BY id LIMIT %s", (*args, limit))
        return [EventRecord(**row) for row in rows]

    # -- writing ---------------------------------------------------------------------------

    async def sync(
        self, manifest: Sequence[ManifestLine], *, worker: str | None = None
    ) -> list[str]:
        """Add the manifest's new lines as ``pending`` (one transaction); return conflicts.

        Idempotent and safe from many workers at once: a line is inserted once (the others'
        inserts of it do nothing) and only its inserter records the ``added`` event. A line
        whose request changed since it was submitted is a conflict, as is one changed while
        another worker holds it; a changed line never sent and not held is updated.
        """
        for attempt in range(_SYNC_TRIES):
            try:
                return await self._sync(manifest, worker)
            except psycopg.errors.DeadlockDetected:  # two loaders of different manifests
                if attempt == _SYNC_TRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _sync(self, manifest: Sequence[ManifestLine], worker: str | None) -> list[str]:
        # Manifest order: the "added" events read as the SQLite journal's, and loaders of one
        # manifest lock its rows in one order (loaders of different ones may deadlock: retried).
        items = list(manifest)
        markers = [marker_for(self.batch_id, item.key) if item.marked else None for item in items]
        conflicts: list[tuple[int, str]] = []
        async with self._tx() as conn:
            await conn.execute(
                f"WITH added AS (INSERT INTO lines (key, line, provider, kind, request, digest,"
                f" marker, state, updated_at)"
                f" SELECT k, n, p, kd, r, d, m, 'pending', {NOW} FROM unnest(%s::text[],"
                f" %s::integer[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
                f" WITH ORDINALITY AS u(k, n, p, kd, r, d, m, o) ORDER BY o"
                f" ON CONFLICT (key) DO NOTHING RETURNING key, updated_at)"
                f" INSERT INTO events (key, at, from_state, to_state, detail, worker)"
                f" SELECT key, updated_at, NULL, 'pending', 'added', %s FROM added",
                (
                    [item.key for item in items],
                    [item.number for item in items],
                    [item.provider for item in items],
                    [item.kind for item in items],
                    [item.request_json() for item in items],
                    [item.digest for item in items],
                    markers,
                    worker,
                ),
            )
            cursor = await conn.execute(
                f"SELECT l.key, l.state, (l.lease_owner IS NOT NULL AND l.lease_until > {NOW}"
                f" AND l.lease_owner IS DISTINCT FROM %s) AS held"
                f" FROM lines l JOIN unnest(%s::text[], %s::text[]) AS u(k, d) ON l.key = u.k"
                f" WHERE l.digest <> u.d ORDER BY l.key FOR UPDATE OF l",
                (worker, [item.key for item in items], [item.digest for item in items]),
            )
            changed = {str(row["key"]): row for row in await cursor.fetchall()}
            for item, marker in zip(items, markers, strict=True):
                row = changed.get(item.key)
                if row is None:
                    continue
                if row["state"] in ("pending", "failed") and not row["held"]:
                    await conn.execute(
                        f"UPDATE lines SET line = %(line)s, provider = %(provider)s,"
                        f" kind = %(kind)s, request = %(request)s, digest = %(digest)s,"
                        f" marker = %(marker)s, updated_at = {NOW} WHERE key = %(key)s",
                        {**attrs.asdict(item), "request": item.request_json(), "marker": marker}
                        | {"line": item.number},
                    )
                elif row["held"]:
                    conflicts.append(
                        (
                            item.number,
                            f"manifest line {item.number} (key {item.key!r}) differs from the "
                            f"journal's, and another worker is working on it"
                            f" (state {row['state']});"
                            " give every worker the same manifest",
                        )
                    )
                else:
                    conflicts.append(
                        (
                            item.number,
                            f"manifest line {item.number} (key {item.key!r}) changed since it "
                            f"was submitted (state {row['state']}); give it a new key or use "
                            "another journal",
                        )
                    )
            await conn.execute(
                # As the SQLite journal: a conflicting line keeps its old line number.
                "UPDATE lines SET line = u.n"
                " FROM unnest(%s::text[], %s::integer[], %s::text[]) AS u(k, n, d)"
                " WHERE lines.key = u.k AND lines.line <> u.n AND lines.digest = u.d",
                (
                    [item.key for item in items],
                    [item.number for item in items],
                    [item.digest for item in items],
                ),
            )
        return [text for _, text in sorted(conflicts)]

    async def transition(
        self,
        key: str,
        to_state: str,
        *,
        detail: str | None = None,
        count_attempt: bool = False,
        worker: str | None = None,
        **fields: Any,
    ) -> LineRecord:
        """Move a line to ``to_state`` (setting ``fields``) in one committed transaction.

        As the SQLite journal's: refuses a move `TRANSITIONS` does not allow
        (`TransitionError`, checked under the row's lock: of two senders of one line, only
        the first gets ``submitting``); ``error`` is cleared unless given; ``settle_by`` is
        kept in ``submitting`` and when moving from it to ``uncertain``, cleared otherwise.
        With ``worker``, the move needs that worker's live lease (`LeaseLostError`).
        """
        async with self._tx() as conn:
            from_state = await self._lock_line(conn, key, worker)
            if to_state not in TRANSITIONS[from_state]:
                raise TransitionError(key, from_state, to_state)
            fields = move_fields(from_state, to_state, fields)
            sets = "".join(f", {name} = %({name})s" for name in fields)
            attempts = ", attempts = attempts + 1" if count_attempt else ""
            lease = ", lease_owner = NULL, lease_until = NULL" if to_state in _DONE else ""
            cursor = await conn.execute(
                f"WITH moved AS (UPDATE lines SET state = %(to_state)s{sets},"
                f" updated_at = {NOW}{attempts}{lease} WHERE key = %(key)s"
                f" RETURNING {LINE_COLUMNS}),"
                f" noted AS (INSERT INTO events (key, at, from_state, to_state, detail, worker)"
                f" SELECT key, updated_at, %(from_state)s, state, %(detail)s, %(worker)s"
                f" FROM moved) SELECT * FROM moved",
                {
                    **fields,
                    "to_state": to_state,
                    "key": key,
                    "from_state": from_state,
                    "detail": detail or fields.get("error"),
                    "worker": worker,
                },
            )
            row = await cursor.fetchone()
        assert row is not None  # the row is locked: the UPDATE finds it
        return LineRecord(**row)

    @staticmethod
    async def _lock_line(conn: Any, key: str, worker: str | None) -> str:
        """Lock a line's row for this transaction; its state (fenced by ``worker``'s lease)."""
        cursor = await conn.execute(
            f"SELECT state, lease_owner = %s AND lease_until > {NOW} AS held"
            " FROM lines WHERE key = %s FOR UPDATE",
            (worker, key),
        )
        row = await cursor.fetchone()
        if row is None:
            raise JournalError(f"no line {key!r} in the journal")
        if worker is not None and not row["held"]:
            raise LeaseLostError(key, worker)
        return str(row["state"])

    async def note_error(self, key: str, error: str, *, settle_by: float | None = None) -> None:
        """Record an error on a line without changing its state (e.g. a download to retry);
        ``settle_by`` (a ``submitting`` line's create answer was lost) is set when given."""
        await self._all(
            f"UPDATE lines SET error = %s, updated_at = {NOW},"
            " settle_by = COALESCE(%s, settle_by) WHERE key = %s RETURNING key",
            (error, settle_by, key),
        )

    async def extend(self, key: str, settle_by: float) -> None:
        """Move a ``submitting`` line's settle_by later (its sender is alive and may send)."""
        await self._all(
            "UPDATE lines SET settle_by = GREATEST(COALESCE(settle_by, 0), %s)"
            " WHERE key = %s AND state = 'submitting' RETURNING key",
            (settle_by, key),
        )

    async def claim(self, key: str, idx: int, wanted: pathlib.Path) -> pathlib.Path:
        """Claim a fresh file name for a line's file ``idx``, as the SQLite journal does:
        ``wanted``, or ``<stem>-2<suffix>``, ... (the first that neither exists on this host's
        disk nor is claimed by another file of the batch on any host, compared
        case-insensitively). Claims are serialised across workers by an advisory lock."""
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_TARGETS_LOCK,))
            cursor = await conn.execute(
                "SELECT path FROM targets WHERE NOT (key = %s AND idx = %s)", (key, idx)
            )
            taken = {str(row["path"]).casefold() for row in await cursor.fetchall()}
            candidate = await anyio.to_thread.run_sync(_first_free, wanted, taken)
            await conn.execute(
                "INSERT INTO targets (key, idx, host, path) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (key, idx) DO UPDATE SET host = EXCLUDED.host, path = EXCLUDED.path",
                (key, idx, self.host, str(candidate)),
            )
        return candidate

    async def file_written(self, record: FileRecord) -> None:
        """Record one written file (host, path, size, SHA-256) at once, before the line is
        done; the host is this machine's unless the record names one."""
        host = record.host or self.host
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO files (key, idx, remote_id, host, path, size, sha256)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key, idx) DO UPDATE SET"
                " remote_id = EXCLUDED.remote_id, host = EXCLUDED.host, path = EXCLUDED.path,"
                " size = EXCLUDED.size, sha256 = EXCLUDED.sha256",
                (
                    record.key,
                    record.idx,
                    record.remote_id,
                    host,
                    record.path,
                    record.size,
                    record.sha256,
                ),
            )
            await conn.execute(
                "INSERT INTO targets (key, idx, host, path) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (key, idx) DO UPDATE SET host = EXCLUDED.host, path = EXCLUDED.path",
                (record.key, record.idx, host, record.path),
            )

    async def downloaded(
        self, key: str, files: Sequence[FileRecord], *, worker: str | None = None
    ) -> LineRecord:
        """Record the line's files and move it to ``downloaded``, in one transaction (fenced
        by ``worker``'s lease when given; the lease is released)."""
        async with self._tx() as conn:
            state = await self._lock_line(conn, key, worker)
            if state != "ready":
                raise TransitionError(key, state, "downloaded")
            await conn.execute("DELETE FROM files WHERE key = %s", (key,))
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO files (key, idx, remote_id, host, path, size, sha256)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        (f.key, f.idx, f.remote_id, f.host or self.host, f.path, f.size, f.sha256)
                        for f in files
                    ],
                )
            cursor = await conn.execute(
                f"WITH moved AS (UPDATE lines SET state = 'downloaded', error = NULL,"
                f" updated_at = {NOW}, lease_owner = NULL, lease_until = NULL WHERE key = %s"
                f" RETURNING {LINE_COLUMNS}),"
                f" noted AS (INSERT INTO events (key, at, from_state, to_state, detail, worker)"
                f" SELECT key, updated_at, 'ready', 'downloaded', %s, %s FROM moved)"
                f" SELECT * FROM moved",
                (key, ", ".join(f.path for f in files), worker),
            )
            row = await cursor.fetchone()
        assert row is not None
        return LineRecord(**row)
