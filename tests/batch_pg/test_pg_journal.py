"""The PostgreSQL journal against a real server: the same state machine as the SQLite
journal, idempotent manifest loads, files with their host, and clear errors before any line
is claimed (a URL that cannot be reached, a journal of another schema version)."""

from __future__ import annotations

import asyncio
import pathlib
import time
import urllib.parse
from typing import Any

import attrs
import psycopg
import pytest

from imuzekit.batch._journal import (
    STATES,
    TRANSITIONS,
    FileRecord,
    Journal,
    LineRecord,
    TransitionError,
)
from imuzekit.batch._lock import JournalError
from imuzekit.batch._pg import PgJournal, is_postgres_url, mask_url
from tests.batch_pg._lines import imuze_line, manifest, mureka_line
from tests.batch_pg.conftest import PASSWORD

pytestmark = pytest.mark.filterwarnings("error")

SETTLE = 1_900_000_000.0
# How a line reaches each state (moves and their fields), from pending.
PATHS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "pending": [],
    "submitting": [("submitting", {"settle_by": SETTLE})],
    "submitted": [
        ("submitting", {"settle_by": SETTLE}),
        ("submitted", {"token": "t", "remote_id": "r"}),
    ],
    "ready": [
        ("submitting", {"settle_by": SETTLE}),
        ("submitted", {"token": "t", "remote_id": "r"}),
        ("ready", {"result": "{}"}),
    ],
    "downloaded": [
        ("submitting", {"settle_by": SETTLE}),
        ("submitted", {"token": "t", "remote_id": "r"}),
        ("ready", {"result": "{}"}),
        ("downloaded", {}),
    ],
    "failed": [("failed", {"error": "refused"})],
    "uncertain": [("submitting", {"settle_by": SETTLE}), ("uncertain", {"error": "lost"})],
}


def _comparable(record: LineRecord) -> dict[str, Any]:
    """A line's fields but its time and its marker (salted by each journal's batch id)."""
    values = attrs.asdict(record)
    del values["updated_at"], values["marker"]
    return values


def _refused(exc: TransitionError) -> tuple[str, str, str]:
    return ("refused", exc.from_state, exc.to_state)


async def _open(url: str, schema: str, **kwargs: Any) -> PgJournal:
    return await PgJournal.open(url, schema=schema, **kwargs)


async def test_every_transition_matches_the_sqlite_journal(
    pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    pairs = [(a, b) for a in STATES for b in STATES]
    lines = [mureka_line(n, f"{a}-{b}") for n, (a, b) in enumerate(pairs, 1)]
    outcomes: dict[str, dict[tuple[str, str], Any]] = {"sqlite": {}, "pg": {}}
    events: dict[str, list[tuple[str, str | None, str, str | None]]] = {}
    with Journal(tmp_path / "j.sqlite") as sqlite_journal:
        async with await _open(pg_url, pg_schema) as pg:
            assert sqlite_journal.sync(lines) == []
            assert await pg.sync(lines) == []
            for from_state, to_state in pairs:
                key = f"{from_state}-{to_state}"
                for state, fields in PATHS[from_state]:
                    sqlite_journal.transition(key, state, **fields)
                    await pg.transition(key, state, **fields)
                move: dict[str, Any] = {"count_attempt": True, "detail": "why"}
                if to_state in ("submitting", "uncertain"):
                    move["settle_by"] = SETTLE + 5
                if to_state == "failed":
                    move["error"] = "boom"
                try:
                    lite_record = sqlite_journal.transition(key, to_state, **move)
                    outcomes["sqlite"][(from_state, to_state)] = _comparable(lite_record)
                except TransitionError as exc:
                    outcomes["sqlite"][(from_state, to_state)] = _refused(exc)
                try:
                    pg_record = await pg.transition(key, to_state, **move)
                    outcomes["pg"][(from_state, to_state)] = _comparable(pg_record)
                except TransitionError as exc:
                    outcomes["pg"][(from_state, to_state)] = _refused(exc)
            rows = sqlite_journal._db.execute(
                "SELECT key, from_state, to_state, detail FROM events ORDER BY id"
            ).fetchall()
            events["sqlite"] = [tuple(row) for row in rows]
            events["pg"] = [
                (e.key, e.from_state, e.to_state, e.detail) for e in await pg.events(limit=10_000)
            ]
            assert await pg.counts() == sqlite_journal.counts()
            assert [_comparable(r) for r in await pg.lines()] == [
                _comparable(r) for r in sqlite_journal.lines()
            ]
    assert outcomes["pg"] == outcomes["sqlite"]
    assert events["pg"] == events["sqlite"]
    # Neither journal is trivially refusing or allowing: each outcome follows the table.
    for (from_state, to_state), outcome in outcomes["pg"].items():
        allowed = to_state in TRANSITIONS[from_state]
        assert (outcome != ("refused", from_state, to_state)) is allowed, (from_state, to_state)
        if allowed:
            assert outcome["state"] == to_state and outcome["attempts"] == 1
    kept = outcomes["pg"][("submitting", "uncertain")]
    assert kept["settle_by"] == SETTLE + 5 and kept["error"] is None
    assert outcomes["pg"][("pending", "uncertain")] == ("refused", "pending", "uncertain")
    assert outcomes["pg"][("submitted", "ready")]["settle_by"] is None
    assert outcomes["pg"][("pending", "failed")]["error"] == "boom"


async def test_note_error_extend_and_downloaded_match_the_sqlite_journal(
    pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    lines = [imuze_line(1, "a"), mureka_line(2, "b")]
    files = [
        FileRecord("b", 1, "r1", str(tmp_path / "b-1.mp3"), 10, "ab" * 32),
        FileRecord("b", 2, "r2", str(tmp_path / "b-2.mp3"), 11, "cd" * 32),
    ]
    with Journal(tmp_path / "j.sqlite") as lite:
        async with await _open(pg_url, pg_schema) as pg:
            lite.sync(lines)
            await pg.sync(lines)
            assert [r.marker for r in await pg.lines()] != [r.marker for r in lite.lines()]
            for journal_call in (lite.transition, pg.transition):
                result = journal_call("a", "submitting", settle_by=100.0)
                if asyncio.iscoroutine(result):
                    await result
            lite.extend("a", 50.0)
            await pg.extend("a", 50.0)  # never earlier
            lite.extend("a", 200.0)
            await pg.extend("a", 200.0)
            lite.note_error("a", "answer lost", settle_by=300.0)
            await pg.note_error("a", "answer lost", settle_by=300.0)
            lite.note_error("a", "again")
            await pg.note_error("a", "again")
            line_a = await pg.line("a")
            assert line_a is not None and lite.line("a") is not None
            assert (line_a.settle_by, line_a.error) == (300.0, "again")
            assert (line_a.settle_by, line_a.error) == (
                lite.line("a").settle_by,
                lite.line("a").error,
            )  # type: ignore[union-attr]
            for state in ("submitting", "submitted", "ready"):
                lite.transition("b", state)
                await pg.transition("b", state)
            with pytest.raises(TransitionError):
                await pg.downloaded("a", [])
            lite.downloaded("b", files)
            done = await pg.downloaded("b", files)
            assert done.state == "downloaded"
            assert [(f.path, f.size, f.sha256, f.host) for f in await pg.files("b")] == [
                (f.path, f.size, f.sha256, pg.host) for f in lite.files("b")
            ]
            assert await pg.file("b", 2) == FileRecord(
                "b", 2, "r2", str(tmp_path / "b-2.mp3"), 11, "cd" * 32, pg.host
            )
            assert await pg.line("missing") is None
            with pytest.raises(JournalError, match="no line 'missing'"):
                await pg.transition("missing", "failed")


async def test_sync_updates_unsent_lines_and_reports_the_same_conflicts_as_sqlite(
    pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    first = [mureka_line(1, "sent"), mureka_line(2, "unsent"), mureka_line(3, "same")]
    edited = [
        mureka_line(1, "same"),  # moved to line 1
        mureka_line(2, "sent", "violin"),
        mureka_line(3, "unsent", "violin"),
    ]
    with Journal(tmp_path / "j.sqlite") as lite:
        async with await _open(pg_url, pg_schema) as pg:
            lite.sync(first)
            await pg.sync(first)
            lite.transition("sent", "submitting")
            await pg.transition("sent", "submitting")
            expected = lite.sync(edited)
            assert expected and await pg.sync(edited) == expected
            assert "line 2 (key 'sent') changed since it was submitted" in expected[0]
            assert {r.key: (r.line, r.digest) for r in await pg.lines()} == {
                r.key: (r.line, r.digest) for r in lite.lines()
            }
            unsent = await pg.line("unsent")
            assert unsent is not None and unsent.params["prompt"] == "violin"
            assert [e.to_state for e in await pg.events("unsent")] == ["pending"]


async def test_three_workers_loading_one_manifest_at_once_make_one_row_per_line(
    pg_url: str, pg_schema: str
) -> None:
    lines = manifest(300)
    journals = [await _open(pg_url, pg_schema) for _ in range(3)]
    try:
        assert len({j.batch_id for j in journals}) == 1
        for _ in range(2):  # and again: nothing changes the second time
            results = await asyncio.gather(
                *(j.sync(lines, worker=f"w{i}") for i, j in enumerate(journals))
            )
            assert results == [[], [], []]
        rows = await journals[0].lines()
        assert [r.key for r in rows] == [line.key for line in lines]
        assert [r.line for r in rows] == list(range(1, 301))
        added = [e for e in await journals[1].events(limit=10_000) if e.detail == "added"]
        assert sorted(e.key for e in added) == sorted(line.key for line in lines)
        assert await journals[2].counts() == {**dict.fromkeys(STATES, 0), "pending": 300}
    finally:
        for journal in journals:
            await journal.aclose()


async def test_file_names_are_claimed_once_across_workers_and_files_record_their_host(
    pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    lines = [mureka_line(n, f"k{n}") for n in range(1, 9)]
    (tmp_path / "song.mp3").write_bytes(b"someone else's")
    first, second = await _open(pg_url, pg_schema), await _open(pg_url, pg_schema)
    try:
        second.host = "worker-b.example"
        await first.sync(lines)
        wanted = tmp_path / "song.mp3"
        claimed = await asyncio.gather(
            *((first if n % 2 else second).claim(f"k{n}", 1, wanted) for n in range(1, 9))
        )
        names = sorted(path.name for path in claimed)
        assert names == sorted(f"song-{n}.mp3" for n in range(2, 10))
        # A line's own claim does not take the name from it; another's claim (any case) does.
        assert await first.claim("k1", 1, wanted) == claimed[0]
        assert (await second.claim("k2", 2, tmp_path / "SONG-2.mp3")).name == "SONG-2-2.mp3"
        record = FileRecord("k2", 1, "r", str(claimed[1]), 5, "ef" * 32)
        await second.file_written(record)
        assert await first.file("k2", 1) == FileRecord(
            "k2", 1, "r", str(claimed[1]), 5, "ef" * 32, "worker-b.example"
        )
        assert await first.target("k2", 1) == str(claimed[1])
    finally:
        await first.aclose()
        await second.aclose()


def test_urls_are_recognised_and_masked() -> None:
    assert is_postgres_url("postgresql://u@h/db") and is_postgres_url("postgres://h/db")
    assert not is_postgres_url("batch.db") and not is_postgres_url("/tmp/postgresql://x")
    assert mask_url("postgresql://me:hunter22@db:5432/b?sslmode=require&password=other") == (
        "postgresql://me:***@db:5432/b?sslmode=require&password=***"
    )
    assert mask_url("postgresql://db/b") == "postgresql://db/b"
    assert mask_url("host=db password='a b c' user=me") == "host=db password=*** user=me"


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    with socket_closed() as port:
        url = f"postgresql://batch:Hunter2Secret@127.0.0.1:{port}/jobs"
        started = time.monotonic()
        with pytest.raises(JournalError) as caught:
            await PgJournal.open(url, connect_timeout=5)
    message = str(caught.value)
    assert f"postgresql://batch:***@127.0.0.1:{port}/jobs" in message
    assert "Hunter2Secret" not in message and "Hunter2Secret" not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert time.monotonic() - started < 5


async def test_a_refused_login_names_the_server_not_the_password(pg_url: str) -> None:
    parts = urllib.parse.urlsplit(pg_url)
    if parts.password is None:
        pytest.skip("the server's URL has no password to get wrong")
    host = parts.netloc.rpartition("@")[2]
    wrong = parts._replace(netloc=f"{parts.username}:WrongPassw0rd@{host}").geturl()
    with pytest.raises(JournalError, match="password authentication failed") as caught:
        await PgJournal.open(wrong)
    message = str(caught.value)
    assert "WrongPassw0rd" not in message and parts.password not in message
    assert f"{parts.username}:***@{host}" in message
    assert caught.value.__context__ is None


async def test_a_journal_of_another_schema_version_is_refused_before_any_claim(
    pg_url: str, pg_schema: str
) -> None:
    async with await _open(pg_url, pg_schema) as journal:
        await journal.sync(manifest(2))
        assert PASSWORD not in repr(journal) and pg_schema in repr(journal)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute(
            f"UPDATE {pg_schema}.meta SET value = '99' WHERE name = 'schema_version'"
        )
    with pytest.raises(
        JournalError, match="schema version 99, this imuzekit reads version 1"
    ) as caught:
        await _open(pg_url, pg_schema)
    assert PASSWORD not in str(caught.value) and pg_schema in str(caught.value)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        cursor = await conn.execute(
            f"SELECT count(*) FROM {pg_schema}.lines WHERE lease_owner IS NOT NULL"
        )
        assert await cursor.fetchone() == (0,)


async def test_a_missing_journal_or_a_foreign_schema_is_refused(
    pg_url: str, pg_schema: str
) -> None:
    with pytest.raises(JournalError, match=f"no imuzekit journal in schema '{pg_schema}'"):
        await _open(pg_url, pg_schema, create=False)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {pg_schema}")
        await conn.execute(f"CREATE TABLE {pg_schema}.meta (name text, value text)")
    with pytest.raises(JournalError, match="holds no imuzekit journal"):
        await _open(pg_url, pg_schema)
    with pytest.raises(JournalError, match="not a usable PostgreSQL schema name"):
        await _open(pg_url, "Robert'); DROP TABLE x")


class socket_closed:
    """A loopback port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        return port

    def __exit__(self, *exc_info: object) -> None:
        return None


async def test_a_schema_the_login_may_not_create_is_a_clear_error(
    pg_url: str, pg_schema: str
) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        role = "r_" + pg_schema
        await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'Limited-Pw-1'")
    parts = urllib.parse.urlsplit(pg_url)
    host = parts.netloc.rpartition("@")[2]
    limited = parts._replace(netloc=f"{role}:Limited-Pw-1@{host}").geturl()
    try:
        with pytest.raises(JournalError, match="cannot set up the journal") as caught:
            await _open(limited, pg_schema)
        assert "permission denied" in str(caught.value)
        assert "Limited-Pw-1" not in str(caught.value) and caught.value.__context__ is None
    finally:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute(f"DROP ROLE {role}")


def test_missing_postgresql_skips_but_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.batch_pg.conftest import _unavailable

    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="no binaries"):
        _unavailable("no binaries")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no binaries; with CI=true"):
        _unavailable("no binaries")
