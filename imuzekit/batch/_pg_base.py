"""The PostgreSQL journal's foundation: the schema, its version, the URL's masking, the pool.

Schema (PostgreSQL journal version 1, in one PostgreSQL schema, ``imuzekit`` by default):

    meta(name PRIMARY KEY, value)     kind, batch_id (the markers' salt), schema_version
    lines(key PRIMARY KEY, line, provider, kind, request, digest, marker, state, token,
          remote_id, result, error, attempts, updated_at, settle_by,
          lease_owner, lease_until, takeovers)          one row per manifest line
    files(key, idx, remote_id, host, path, size, sha256)  each file written, and where
    targets(key, idx, host, path)                        the file names this batch claimed
    events(id, key, at, from_state, to_state, detail, worker)
    slots(id, provider, account, holder, key, lease_until)   generations in flight
    pauses(provider, account, until_at, reason)          a shared 429 pause
    workers(id, host, pid, started_at, last_seen, stopped_at)

Every time (``updated_at``, ``lease_until``, ``last_seen``, ...) is seconds since the epoch
by the *database's* clock, so workers on machines whose clocks disagree still agree on when
a lease lapses. ``settle_by`` is the exception: the sender's wall clock, as in the SQLite
journal (the runner compares it with ``time.time()``).

The URL's password never leaves this module: errors and ``repr`` show `mask_url()`'s
spelling, and connection failures are re-raised without their chain.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any, Self

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from imuzekit.batch._journal import STATES
from imuzekit.batch._lock import JournalError

__all__ = [
    "ACTIVE_STATES",
    "PG_SCHEMA_VERSION",
    "LeaseLostError",
    "PgBase",
    "mask_url",
]

PG_SCHEMA_VERSION = "1"
"""The PostgreSQL journal's schema version (its own numbering, apart from SQLite's)."""
ACTIVE_STATES = ("pending", "submitting", "submitted", "ready")
"""The states a worker claims a line in: every state that still has work to do."""
_KIND = "imuzekit-batch"
_SETUP_LOCK = 0x696D757A656B6974  # "imuzekit": serialises schema creation across workers
NOW = "extract(epoch FROM clock_timestamp())::double precision"
"""SQL: the database's clock now, in seconds since the epoch."""

# Deadlocks and serialisation failures pass through as they are: the caller may try again.
_RETRYABLE = (
    psycopg.errors.TransactionRollback,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)

_STATE_LIST = ", ".join(f"'{state}'" for state in STATES)
_ACTIVE_LIST = ", ".join(f"'{state}'" for state in ACTIVE_STATES)
SCHEMA = f"""
CREATE TABLE meta (name text PRIMARY KEY, value text NOT NULL);
CREATE TABLE lines (
    key text PRIMARY KEY,
    line integer NOT NULL,
    provider text NOT NULL,
    kind text NOT NULL,
    request text NOT NULL,
    digest text NOT NULL,
    marker text,
    state text NOT NULL CHECK (state IN ({_STATE_LIST})),
    token text,
    remote_id text,
    result text,
    error text,
    attempts integer NOT NULL DEFAULT 0,
    updated_at double precision NOT NULL,
    settle_by double precision,
    lease_owner text,
    lease_until double precision,
    takeovers integer NOT NULL DEFAULT 0
);
CREATE INDEX lines_state ON lines (state);
CREATE INDEX lines_claimable ON lines (line) WHERE state IN ({_ACTIVE_LIST});
CREATE INDEX lines_owner ON lines (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE TABLE files (
    key text NOT NULL REFERENCES lines (key),
    idx integer NOT NULL,
    remote_id text,
    host text,
    path text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    PRIMARY KEY (key, idx)
);
CREATE TABLE targets (
    key text NOT NULL REFERENCES lines (key),
    idx integer NOT NULL,
    host text,
    path text NOT NULL,
    PRIMARY KEY (key, idx)
);
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    key text NOT NULL,
    at double precision NOT NULL,
    from_state text,
    to_state text NOT NULL,
    detail text,
    worker text
);
CREATE INDEX events_key ON events (key);
CREATE TABLE slots (
    id bigserial PRIMARY KEY,
    provider text NOT NULL,
    account text NOT NULL,
    holder text NOT NULL,
    key text,
    lease_until double precision NOT NULL
);
CREATE INDEX slots_group ON slots (provider, account);
CREATE INDEX slots_holder ON slots (holder);
CREATE TABLE pauses (
    provider text NOT NULL,
    account text NOT NULL,
    until_at double precision NOT NULL,
    reason text,
    PRIMARY KEY (provider, account)
);
CREATE TABLE workers (
    id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at double precision NOT NULL,
    last_seen double precision NOT NULL,
    stopped_at double precision
)
"""


class LeaseLostError(JournalError):
    """A worker tried to move a line it no longer holds: its lease lapsed (another worker may
    have taken the line over) or was never taken. The move was not made."""

    def __init__(self, key: str, worker: str) -> None:
        super().__init__(f"worker {worker!r} no longer holds the lease on line {key!r}")
        self.key = key
        self.worker = worker


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (URL or ``key=value`` spelling)."""
    if "://" not in url:
        return _KEYWORD_PASSWORD.sub(r"\1***", url)
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if colon else f"{user}@{hosts}"
    query = "&".join(
        f"{name}=***" if name.lower() == "password" else (f"{name}={value}" if value else name)
        for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _scrub(text: str, password: str | None) -> str:
    """``text`` without ``password`` (a driver's message could quote it)."""
    if password and len(password) >= 3:
        text = text.replace(password, "***")
    return _KEYWORD_PASSWORD.sub(r"\1***", text)


class PgBase:
    """The connection pool, the schema check and the helpers every operation uses."""

    def __init__(
        self,
        pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]],
        *,
        where: str,
        schema: str,
        batch_id: str,
        password: str | None,
    ) -> None:
        self._pool = pool
        self.where = where
        """The journal's URL with its password masked (for messages)."""
        self.schema = schema
        """The PostgreSQL schema holding the journal's tables."""
        self.batch_id = batch_id
        """The batch's random id (the markers' salt)."""
        self._password = password
        self.host = socket.gethostname()
        """The host recorded with each file this process claims or writes."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where} schema={self.schema}>"

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        schema: str = "imuzekit",
        create: bool = True,
        max_connections: int = 8,
        connect_timeout: float = 10.0,
    ) -> Self:
        """Connect to the journal at ``url`` (creating its tables unless ``create`` is false).

        `JournalError` naming the URL (password masked) when the server cannot be reached,
        refuses the login, or holds a journal of another schema version: before any line is
        claimed.
        """
        where = mask_url(url)
        if not _IDENTIFIER.fullmatch(schema):
            raise JournalError(f"{schema!r} is not a usable PostgreSQL schema name ([a-z_0-9])")
        # Every failure below is raised outside its `except`: the driver's exception (which
        # could quote the URL) is never chained to the JournalError, not even as __context__.
        failure: str | None = None
        try:
            password = psycopg.conninfo.conninfo_to_dict(url).get("password")
        except psycopg.Error:
            failure, password = f"{where} is not a PostgreSQL connection URL", None
        if failure is not None:
            raise JournalError(failure)
        secret = str(password) if password is not None else None
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "options": f"-c search_path={schema}",
            "connect_timeout": max(1, round(connect_timeout)),
            "application_name": "imuzekit-batch",
        }
        conn: psycopg.AsyncConnection[DictRow] | None = None
        try:
            conn = await psycopg.AsyncConnection.connect(url, **kwargs)
        except psycopg.Error as exc:
            failure = f"cannot reach the PostgreSQL journal {where}: {_scrub(str(exc), secret)}"
        if conn is None:
            raise JournalError(failure)
        batch_id: str | None = None
        try:
            batch_id = await _setup(conn, where, schema, create=create)
        except psycopg.Error as exc:  # e.g. no right to create the schema
            failure = f"cannot set up the journal in schema {schema!r} of {where}: " + _scrub(
                str(exc), secret
            )
        finally:
            await conn.close()
        if batch_id is None:
            raise JournalError(failure)
        pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] = AsyncConnectionPool(
            url,
            connection_class=psycopg.AsyncConnection[DictRow],
            kwargs=kwargs,
            min_size=1,
            max_size=max(1, max_connections),
            open=False,
            name="imuzekit-journal",
            timeout=connect_timeout,
        )
        try:
            await pool.open(wait=True, timeout=connect_timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            failure = f"cannot reach the PostgreSQL journal {where}: {_scrub(str(exc), secret)}"
        if failure is not None:
            await pool.close()
            raise JournalError(failure)
        return cls(pool, where=where, schema=schema, batch_id=batch_id, password=secret)

    async def aclose(self) -> None:
        """Close every connection of the pool."""
        await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[psycopg.AsyncConnection[DictRow]]:
        """A pooled connection (autocommit: one statement, one transaction)."""
        failure: str | None = None
        try:
            async with self._pool.connection() as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            if isinstance(exc, _RETRYABLE):
                raise  # a deadlock or serialisation failure: the caller may try again
            failure = (
                f"lost the PostgreSQL journal {self.where}: {_scrub(str(exc), self._password)}"
            )
        if failure is not None:
            raise JournalError(failure)

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[psycopg.AsyncConnection[DictRow]]:
        """A pooled connection inside one transaction, committed when the block ends."""
        async with self._conn() as conn, conn.transaction():
            yield conn

    async def _all(self, query: str, args: Any = None) -> list[DictRow]:
        async with self._conn() as conn:
            cursor = await conn.execute(query, args)
            return await cursor.fetchall()

    async def _one(self, query: str, args: Any = None) -> DictRow | None:
        async with self._conn() as conn:
            cursor = await conn.execute(query, args)
            return await cursor.fetchone()


async def _setup(
    conn: psycopg.AsyncConnection[DictRow], where: str, schema: str, *, create: bool
) -> str:
    """Create the tables if absent (one worker at a time), check the version; the batch id."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
        cursor = await conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL AS present", (schema + ".meta",)
        )
        row = await cursor.fetchone()
        present = bool(row and row["present"])
        if not present:
            if not create:
                raise JournalError(f"no imuzekit journal in schema {schema!r} of {where}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            for statement in filter(None, (s.strip() for s in SCHEMA.split(";"))):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO meta (name, value) VALUES ('kind', %s), ('schema_version', %s),"
                " ('batch_id', %s)",
                (_KIND, PG_SCHEMA_VERSION, secrets.token_hex(8)),
            )
        cursor = await conn.execute("SELECT name, value FROM meta")
        meta = {str(r["name"]): str(r["value"]) for r in await cursor.fetchall()}
    if meta.get("kind") != _KIND:
        raise JournalError(f"schema {schema!r} of {where} holds no imuzekit journal")
    version = meta.get("schema_version")
    if version != PG_SCHEMA_VERSION:
        raise JournalError(
            f"the journal in schema {schema!r} of {where} has PostgreSQL journal schema "
            f"version {version}, this imuzekit reads version {PG_SCHEMA_VERSION}"
        )
    return meta["batch_id"]
