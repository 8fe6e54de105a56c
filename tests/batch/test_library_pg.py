"""The Batch API on a PostgreSQL journal (a real server, as tests/batch_pg): a run from Python
code with the workers' runner, files with their host, and a journal of another schema version
refused before any line is touched."""

from __future__ import annotations

import pathlib
import socket

import pytest

from imuzekit import Client, PollPolicy, batch
from imuzekit.emulator import Emulator
from tests.batch.test_library import song
from tests.cli.conftest import music_line


async def test_a_library_batch_on_postgresql_runs_and_reports(
    pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    lines = [
        {
            "provider": "imuze",
            "key": f"s{n}",
            "title": "Morning Song",
            "arrangement_id": 1,
            "desired_length": 30,
        }
        for n in range(4)
    ] + [music_line("m", 3000), {"provider": "imuze", "key": "bad"}]
    async with (
        Emulator(render_seconds=(0.05, 0.15)) as emu,
        emu.client(poll=PollPolicy(initial=0.02, max_interval=0.1, timeout=30)) as kit,
        batch.open(pg_url, schema=pg_schema) as run,
    ):
        assert "***" in run.journal and "5ecret" not in run.journal
        added = await run.add(lines)
        assert [(r.key, r.reason) for r in added.rejected] == [("bad", "title: is required")]
        assert (await run.add(lines)).rejected == added.rejected  # idempotent
        events = [e async for e in run.run(client=kit, out=tmp_path, concurrency=4)]
        status = await run.status()
    downloaded = {
        e.key for e in events if isinstance(e, batch.LineChanged) and e.state == "downloaded"
    }
    assert downloaded == {"s0", "s1", "s2", "s3", "m"}
    assert status.counts["downloaded"] == 5 and status.counts["failed"] == 1
    assert {f.host for f in status.files} == {socket.gethostname()}
    assert {f.key: f.sha256 for f in status.files}["s0"] == emu.imuze.audio_sha256(
        int(next(f.remote_id for f in status.files if f.key == "s0") or 0)
    )
    assert emu.imuze.songs_created == 4


async def test_a_postgresql_journal_of_another_schema_version_is_refused(
    pg_url: str, pg_schema: str
) -> None:
    import psycopg

    async with batch.open(pg_url, schema=pg_schema) as run:
        await run.add([music_line("m", 3000)])
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute(
            f"UPDATE {pg_schema}.meta SET value = '99' WHERE name = 'schema_version'"
        )
    with pytest.raises(batch.JournalError, match="schema version 99") as caught:
        async with batch.open(pg_url, schema=pg_schema):
            pass
    assert "***" in str(caught.value) and "5ecret" not in str(caught.value)


async def _moves(
    journal: str | pathlib.Path, kit: Client, out: pathlib.Path, **schema: str
) -> dict[str, list[tuple[str | None, str]]]:
    """Each line's moves as `Batch.run` yielded them ((previous, state) in order), for three
    lines of which one was failed by hand and is retried (`retry_failed`: the reopening move
    is an event too)."""
    moves: dict[str, list[tuple[str | None, str]]] = {}
    async with batch.open(journal, **schema) as run:
        await run.add([song("a"), song("b"), song("c")])
        await run._do("transition", "c", "failed", error="failed by hand")
        async for event in run.run(out, client=kit, concurrency=3, retry_failed=True):
            if isinstance(event, batch.LineChanged):
                moves.setdefault(event.key, []).append((event.previous, event.state))
        assert (await run.status()).done
    return moves


async def test_every_move_on_postgresql_arrives_as_an_event_as_on_sqlite(
    pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    async with (
        Emulator(render_seconds=(0.05, 0.1)) as emu,
        emu.client(poll=PollPolicy(initial=0.02, max_interval=0.1, timeout=30)) as kit,
    ):
        on_sqlite = await _moves(tmp_path / "b.db", kit, tmp_path / "lite")
        on_pg = await _moves(pg_url, kit, tmp_path / "pg", schema=pg_schema)
    path = [
        ("pending", "submitting"),
        ("submitting", "submitted"),
        ("submitted", "ready"),
        ("ready", "downloaded"),
    ]
    expected = {"a": path, "b": path, "c": [("failed", "pending"), *path]}
    assert on_sqlite == expected
    assert on_pg == expected
