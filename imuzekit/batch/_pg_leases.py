"""What many workers share through the PostgreSQL journal: line leases, slots, pauses, workers.

The model is a PostgreSQL work queue (procrastinate, graphile-worker, Oban):

- **Leases.** `PgLeases.claim_lines()` takes up to ``n`` lines that still have work
  (``pending``, ``submitting``, ``submitted``, ``ready``) and that nobody holds, with
  ``SELECT ... FOR UPDATE SKIP LOCKED``: two workers claiming at once never get the same line,
  and neither waits for the other. A lease lasts ``lease_seconds`` by the database's clock;
  `PgLeases.heartbeat()` renews every live lease of a worker. A worker that dies (kill -9,
  a lost machine) stops renewing: once its leases lapse, its lines are claimable again, and a
  line taken over in ``submitting`` comes back with ``reconcile`` set: its create may have been
  sent, so it is looked for before anything is sent again (the state machine allows nothing
  else: ``submitting`` never moves to ``submitting``).
- **Slots.** A provider's limit of simultaneous generations per account (Mureka's 10) holds
  across all workers: `PgLeases.acquire_slot()` takes one of ``limit`` slots of a
  (provider, account) under a transaction-level advisory lock, leased like a line, so a dead
  worker's slots come back when their leases lapse.
- **Pauses.** A 429 on a provider or an account pauses it for every worker:
  `PgLeases.pause()` records until when (never shortening a longer pause) and
  `PgLeases.paused_for()` tells any worker how long is left.
- **Workers.** Each worker registers (id, host, pid) and its heartbeat updates ``last_seen``:
  `PgLeases.workers()` is the progress view's list of who is alive and what they hold.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable

import attrs

from imuzekit.batch._journal import LineRecord
from imuzekit.batch._pg_base import ACTIVE_STATES, NOW, PgBase

__all__ = ["LINE_COLUMNS", "ClaimedLine", "PauseRecord", "PgLeases", "WorkerRecord"]

LINE_COLUMNS = ", ".join(field.name for field in attrs.fields(LineRecord))
"""SQL: the ``lines`` columns a `LineRecord` holds, in its order."""
_ACTIVE = list(ACTIVE_STATES)


@attrs.frozen
class ClaimedLine:
    """A line a worker now holds a lease on."""

    record: LineRecord
    lease_until: float
    """When the lease lapses unless renewed (seconds since the epoch, database clock)."""
    previous_owner: str | None
    """The worker whose lapsed lease this claim took over, or None (the line was free)."""

    @property
    def taken_over(self) -> bool:
        """Whether another worker held this line until its lease lapsed (it likely died)."""
        return self.previous_owner is not None

    @property
    def reconcile(self) -> bool:
        """Whether the line must be reconciled before anything is sent: it is in
        ``submitting``, so a create may have reached the provider."""
        return self.record.state == "submitting"


@attrs.frozen
class WorkerRecord:
    """A worker of the batch, as the progress view lists it."""

    id: str
    host: str
    pid: int
    started_at: float
    last_seen: float
    stopped_at: float | None
    leases: int
    """How many lines it holds a live lease on."""
    slots: int
    """How many generation slots it holds."""
    idle_seconds: float
    """Seconds since its last heartbeat (database clock)."""


@attrs.frozen
class PauseRecord:
    """A shared pause of a provider (``account`` empty) or of one of its accounts."""

    provider: str
    account: str
    until_at: float
    remaining: float
    reason: str | None


def _account(account: str | None) -> str:
    return account or ""


class PgLeases(PgBase):
    """Leases on lines, generation slots, shared pauses and the workers registry."""

    # -- workers ---------------------------------------------------------------------------

    async def register_worker(
        self, *, worker_id: str | None = None, host: str | None = None, pid: int | None = None
    ) -> str:
        """Record a worker (``host:pid:<random>`` unless ``worker_id`` is given); its id."""
        host = host or socket.gethostname()
        pid = os.getpid() if pid is None else pid
        worker = worker_id or f"{host}:{pid}:{secrets.token_hex(3)}"
        await self._all(
            f"INSERT INTO workers (id, host, pid, started_at, last_seen) VALUES"
            f" (%s, %s, %s, {NOW}, {NOW}) ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host,"
            " pid = EXCLUDED.pid, last_seen = EXCLUDED.last_seen, stopped_at = NULL"
            " RETURNING id",
            (worker, host, pid),
        )
        return worker

    async def unregister_worker(self, worker: str) -> None:
        """A worker stops: its line leases and slots are released, it is marked stopped."""
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE lines SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = %s",
                (worker,),
            )
            await conn.execute("DELETE FROM slots WHERE holder = %s", (worker,))
            await conn.execute(
                f"UPDATE workers SET stopped_at = {NOW}, last_seen = {NOW} WHERE id = %s",
                (worker,),
            )

    async def workers(self) -> list[WorkerRecord]:
        """Every registered worker (stopped ones too), with what it holds now."""
        rows = await self._all(
            f"SELECT w.id, w.host, w.pid, w.started_at, w.last_seen, w.stopped_at,"
            f" (SELECT count(*) FROM lines WHERE lease_owner = w.id AND lease_until > {NOW})"
            f" AS leases,"
            f" (SELECT count(*) FROM slots WHERE holder = w.id AND lease_until > {NOW}) AS slots,"
            f" {NOW} - w.last_seen AS idle_seconds FROM workers w ORDER BY w.started_at, w.id"
        )
        return [WorkerRecord(**row) for row in rows]

    # -- line leases -----------------------------------------------------------------------

    async def claim_lines(self, worker: str, n: int, lease_seconds: float) -> list[ClaimedLine]:
        """Lease up to ``n`` lines with work left that nobody holds (or whose lease lapsed),
        in manifest order; rows another claimer is taking are skipped, never waited for."""
        if n <= 0:
            return []
        rows = await self._all(
            f"WITH picked AS ("
            f" SELECT key, lease_owner AS previous_owner FROM lines"
            f" WHERE state = ANY(%(active)s) AND (lease_owner IS NULL OR lease_until <= {NOW})"
            f" ORDER BY line LIMIT %(n)s FOR UPDATE SKIP LOCKED)"
            f" UPDATE lines AS l SET lease_owner = %(worker)s,"
            f" lease_until = {NOW} + %(lease)s,"
            f" takeovers = l.takeovers + CASE WHEN picked.previous_owner IS NULL THEN 0 ELSE 1 END"
            f" FROM picked WHERE l.key = picked.key"
            f" RETURNING {', '.join('l.' + c for c in LINE_COLUMNS.split(', '))},"
            f" l.lease_until AS lease_until_, picked.previous_owner",
            {"active": _ACTIVE, "n": n, "worker": worker, "lease": float(lease_seconds)},
        )
        claimed = [
            ClaimedLine(
                record=LineRecord(**{k: v for k, v in row.items() if k in _LINE_FIELDS}),
                lease_until=float(row["lease_until_"]),
                previous_owner=row["previous_owner"],
            )
            for row in rows
        ]
        claimed.sort(key=lambda c: c.record.line)
        return claimed

    async def heartbeat(self, worker: str, lease_seconds: float) -> frozenset[str]:
        """Renew the worker's live leases (lines and slots) for ``lease_seconds`` and note it
        alive; the keys it still holds. A lease that already lapsed is not renewed: its line
        may be another worker's by now, so the caller stops working on any key not returned."""
        rows = await self._all(
            f"WITH seen AS (UPDATE workers SET last_seen = {NOW} WHERE id = %(worker)s),"
            f" held AS (UPDATE slots SET lease_until = {NOW} + %(lease)s"
            f" WHERE holder = %(worker)s AND lease_until > {NOW})"
            f" UPDATE lines SET lease_until = {NOW} + %(lease)s"
            f" WHERE lease_owner = %(worker)s AND lease_until > {NOW} RETURNING key",
            {"worker": worker, "lease": float(lease_seconds)},
        )
        return frozenset(str(row["key"]) for row in rows)

    async def release(self, worker: str, keys: Iterable[str] | None = None) -> int:
        """Give up the worker's leases (on ``keys``, or all); how many were released."""
        query = "UPDATE lines SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = %s"
        args: tuple[object, ...] = (worker,)
        if keys is not None:
            query += " AND key = ANY(%s)"
            args = (worker, list(keys))
        async with self._conn() as conn:
            cursor = await conn.execute(query, args)
            return cursor.rowcount

    async def held(self, worker: str) -> frozenset[str]:
        """The keys whose lease ``worker`` holds now (not lapsed)."""
        rows = await self._all(
            f"SELECT key FROM lines WHERE lease_owner = %s AND lease_until > {NOW}", (worker,)
        )
        return frozenset(str(row["key"]) for row in rows)

    # -- generation slots ------------------------------------------------------------------

    async def acquire_slot(
        self,
        worker: str,
        provider: str,
        account: str | None,
        *,
        limit: int,
        lease_seconds: float,
        key: str | None = None,
    ) -> int | None:
        """Take one of the ``limit`` generation slots of (provider, account) for
        ``lease_seconds`` (renewed by `heartbeat()`); its id, or None when all are taken.

        Serialised per (provider, account) by a transaction-level advisory lock: counting the
        live slots and taking one is a single step for every worker. Slots whose lease lapsed
        (their holder died) are dropped first.
        """
        # Only a lock's name: names that collide would merely wait for each other.
        group = f"slot\x1f{provider}\x1f{_account(account)}"
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (group,))
            await conn.execute(
                f"DELETE FROM slots WHERE provider = %s AND account = %s AND lease_until <= {NOW}",
                (provider, _account(account)),
            )
            cursor = await conn.execute(
                f"INSERT INTO slots (provider, account, holder, key, lease_until)"
                f" SELECT %(provider)s, %(account)s, %(worker)s, %(key)s, {NOW} + %(lease)s"
                f" WHERE (SELECT count(*) FROM slots WHERE provider = %(provider)s"
                f" AND account = %(account)s) < %(limit)s RETURNING id",
                {
                    "provider": provider,
                    "account": _account(account),
                    "worker": worker,
                    "key": key,
                    "lease": float(lease_seconds),
                    "limit": limit,
                },
            )
            row = await cursor.fetchone()
        return int(row["id"]) if row is not None else None

    async def release_slot(self, worker: str, slot: int) -> bool:
        """Give a slot back; False when ``worker`` no longer held it (its lease lapsed)."""
        async with self._conn() as conn:
            cursor = await conn.execute(
                "DELETE FROM slots WHERE id = %s AND holder = %s", (slot, worker)
            )
            return cursor.rowcount == 1

    async def slots_in_use(self, provider: str, account: str | None) -> int:
        """How many slots of (provider, account) are held now (by live leases)."""
        row = await self._one(
            f"SELECT count(*) AS n FROM slots WHERE provider = %s AND account = %s"
            f" AND lease_until > {NOW}",
            (provider, _account(account)),
        )
        return int(row["n"]) if row is not None else 0

    # -- shared pauses ---------------------------------------------------------------------

    async def pause(
        self, provider: str, account: str | None, seconds: float, *, reason: str | None = None
    ) -> float:
        """Pause ``provider`` (``account`` None: all its accounts) for ``seconds`` for every
        worker; a longer pause already set is kept. When the pause ends (epoch seconds)."""
        row = await self._one(
            f"INSERT INTO pauses AS p (provider, account, until_at, reason)"
            f" VALUES (%s, %s, {NOW} + %s, %s) ON CONFLICT (provider, account) DO UPDATE SET"
            " until_at = GREATEST(p.until_at, EXCLUDED.until_at),"
            " reason = CASE WHEN EXCLUDED.until_at > p.until_at THEN EXCLUDED.reason"
            " ELSE p.reason END RETURNING until_at",
            (provider, _account(account), float(seconds), reason),
        )
        assert row is not None  # INSERT ... RETURNING always answers a row
        return float(row["until_at"])

    async def paused_for(self, provider: str, account: str | None = None) -> float:
        """Seconds left of the pause on ``provider`` or on its ``account`` (the longer of
        the two); 0.0 when neither is paused."""
        row = await self._one(
            f"SELECT GREATEST(0, COALESCE(max(until_at), 0) - {NOW}) AS left FROM pauses"
            " WHERE provider = %s AND account IN ('', %s)",
            (provider, _account(account)),
        )
        return float(row["left"]) if row is not None else 0.0

    async def pauses(self) -> list[PauseRecord]:
        """The pauses still running."""
        rows = await self._all(
            f"SELECT provider, account, until_at, until_at - {NOW} AS remaining, reason"
            f" FROM pauses WHERE until_at > {NOW} ORDER BY provider, account"
        )
        return [PauseRecord(**row) for row in rows]


_LINE_FIELDS = frozenset(field.name for field in attrs.fields(LineRecord))
