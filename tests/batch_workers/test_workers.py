"""Several workers in one event loop on one PostgreSQL batch, against the in-process emulator:
the batch is shared (exactly one creation per line), Mureka's per-account limit holds across
the workers through the journal's slots, a 429 pauses every worker, and a line taken over in
``submitting`` is reconciled before anything is sent again."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import pytest

from imuzekit import Client, PollPolicy, RetryPolicy
from imuzekit.batch._manifest import ManifestLine, parse_line
from imuzekit.batch._pg import PgJournal
from imuzekit.batch._rules import marked_params
from imuzekit.batch._runner import BatchOptions
from imuzekit.batch._workers import WorkerOptions, WorkerRunner
from imuzekit.emulator import Emulator
from imuzekit.providers import registry
from tests.batch_workers._lines import line

FAST_POLL = PollPolicy(initial=0.05, max_interval=0.1, timeout=20)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
LEASE = WorkerOptions(lease_seconds=2.0, idle_poll=0.1, slot_poll=0.05)


def _manifest(n: int, prefix: str = "line") -> list[ManifestLine]:
    return [parse_line(i, json.dumps(line(i, prefix))) for i in range(1, n + 1)]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(render_seconds=(0.1, 0.3)) as emulator:
        yield emulator


def _client(emu: Emulator, **mureka: Any) -> Client:
    config = registry().get("mureka").emulator_config
    assert config is not None
    return emu.client(
        poll=FAST_POLL,
        retry=FAST_RETRY,
        mureka=attrs.evolve(config(emu), **mureka),
    )


async def _worker(
    emu: Emulator,
    url: str,
    schema: str,
    manifest: list[ManifestLine],
    out: pathlib.Path,
    options: WorkerOptions = LEASE,
    concurrency: int = 8,
    **mureka: Any,
) -> WorkerRunner:
    async with _client(emu, **mureka) as kit, await PgJournal.open(url, schema=schema) as pg:
        runner = WorkerRunner(
            kit, pg, manifest, BatchOptions(out=out, concurrency=concurrency), options
        )
        await runner.run()
        return runner


async def test_three_workers_share_one_batch(
    emu: Emulator, pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    manifest = _manifest(30)
    runners: list[WorkerRunner] = []

    async def one(i: int) -> None:
        runners.append(await _worker(emu, pg_url, pg_schema, manifest, tmp_path / f"host{i}"))

    async with anyio.create_task_group() as group:
        for i in range(3):
            group.start_soon(one, i)

    async with await PgJournal.open(pg_url, schema=pg_schema) as pg:
        assert await pg.counts() == {**dict.fromkeys(await pg.counts(), 0), "downloaded": 30}
        files = await pg.files()
        workers = await pg.workers()
        events = await pg.events(limit=10_000)
    assert (emu.imuze.songs_created, emu.mureka.creations) == (20, 10)  # one per line
    assert len(files) == 20 + 2 * 10
    for record in files:
        assert pathlib.Path(record.path).is_file()
    assert len(workers) == 3 and all(w.stopped_at is not None for w in workers)
    assert all(w.leases == 0 and w.slots == 0 for w in workers)
    # Every worker did some of the work (the claims spread over them).
    movers = {e.worker for e in events if e.to_state == "submitting"}
    assert len(movers) >= 2
    assert sum(r.stats["claims"] for r in runners) >= 30


async def test_mureka_limit_holds_across_workers(
    emu: Emulator, pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    # Two generations per account (one account), three workers that each allow two: without
    # shared slots they would start six at once and meet 429s.
    emu.mureka.max_parallel = 2
    manifest = [
        parse_line(i, json.dumps(line(3 * i, "mu"))) for i in range(1, 13)
    ]  # 12 Mureka lines
    async with anyio.create_task_group() as group:
        for i in range(3):
            group.start_soon(
                lambda i=i: _worker(
                    emu,
                    pg_url,
                    pg_schema,
                    manifest,
                    tmp_path / f"h{i}",
                    max_parallel_per_account=2,
                )
            )
    creates = emu.count("mureka", "POST", "/music/create-advanced")
    assert emu.mureka.creations == 12
    assert creates == 12  # not one 429: the slots live in the journal
    assert max(emu.mureka.max_running.values()) <= 2


async def test_a_429_pauses_every_worker(
    emu: Emulator, pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    async with await PgJournal.open(pg_url, schema=pg_schema) as pg:
        await pg.pause("imuze", None, 1.0, reason="a 429 seen by another worker")
    started = time.monotonic()
    await _worker(emu, pg_url, pg_schema, _manifest(2), tmp_path / "out")
    first_create = emu.count("imuze", "POST", "/songs")
    assert first_create == 2
    assert time.monotonic() - started >= 0.95  # nothing was sent before the pause ended


async def test_a_line_taken_over_in_submitting_is_reconciled_not_resent(
    emu: Emulator, pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    manifest = _manifest(2)
    async with await PgJournal.open(pg_url, schema=pg_schema) as pg:
        await pg.sync(manifest)
        dead = await pg.register_worker(worker_id="dead:1:aaaaaa")
        [claimed] = await pg.claim_lines(dead, 1, 0.5)
        row = await pg.transition(claimed.record.key, "submitting", worker=dead)
        # The dead worker's create reached iMuze (with the line's marker) but no answer was
        # recorded: the song exists.
        async with _client(emu) as kit:
            call = registry().get(row.provider).create(row.kind)
            await call.call(kit.namespace(row.provider), **marked_params(row))
    assert emu.imuze.songs_created == 1
    await anyio.sleep(0.6)  # its lease lapses
    runner = await _worker(emu, pg_url, pg_schema, manifest, tmp_path / "out")
    assert emu.imuze.songs_created == 2  # the other line only: the first was found
    assert runner.stats["takeovers"] == 1 and runner.stats["reconciled"] == 1
    async with await PgJournal.open(pg_url, schema=pg_schema) as pg:
        assert (await pg.counts())["downloaded"] == 2
        events = await pg.events(claimed.record.key)
    assert any((e.detail or "").startswith("reconciled") for e in events)


async def test_a_dead_service_is_probed_not_hammered(
    emu: Emulator, pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    import socket

    from imuzekit.batch._workers_outage import OutagePolicy

    with socket.socket() as closed:  # a port nobody listens on: Mureka is down
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    sent: list[str] = []

    class Counting(WorkerRunner):
        async def _create(self, row: Any, params: dict[str, Any]) -> Any:
            sent.append(row.key)
            return await super()._create(row, params)

    manifest = [parse_line(i, json.dumps(line(3 * i, "down"))) for i in range(1, 41)]
    options = attrs.evolve(
        LEASE, outage=OutagePolicy(threshold=3, first_probe=0.2, max_probe=0.4, give_up_after=1.5)
    )
    async with (
        _client(emu, base_url=dead) as kit,
        await PgJournal.open(pg_url, schema=pg_schema) as pg,
    ):
        runner = Counting(kit, pg, manifest, BatchOptions(out=tmp_path, concurrency=4), options)
        records = await runner.run()
    # 40 lines, each tried 3 times without the circuit: 120 creates. With it, the first wave
    # (4 in flight) and a probe every 0.2-0.4 s until the run gives up after 1.5 s.
    assert len(sent) <= 4 + 8, len(sent)
    assert runner.outages["mureka"].probes >= 1
    assert {r.state for r in records} == {"pending"}  # never sent: nothing failed, none lost
    assert any("not been reachable" in (r.error or "") for r in records)


async def test_a_journal_failure_around_a_create_stops_the_line_it_is_never_sent_again(
    emu: Emulator,
    pg_url: str,
    pg_schema: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # iMuze answers the create 429 and the shared pause cannot be written: the journal is
    # failing. The line is not "create answer lost" (reconciled and sent again in this run,
    # the pause unshared): it stays submitting for whoever takes it next, sent once here.
    from imuzekit import errors
    from imuzekit.batch._lock import JournalError
    from imuzekit.batch._runner import BatchRunner

    sent: list[str] = []

    async def refused(self: BatchRunner, row: Any, params: dict[str, Any]) -> Any:
        sent.append(row.key)
        raise errors.RateLimitError("slow down", status=429, provider="imuze")

    async def unwritable(*args: Any, **kwargs: Any) -> None:
        raise JournalError("the journal at postgresql://***@db/x cannot be written")

    monkeypatch.setattr(BatchRunner, "_create", refused)
    manifest = _manifest(1)
    async with _client(emu) as kit, await PgJournal.open(pg_url, schema=pg_schema) as pg:
        # A short landing window: the old code reconciled and sent again within a second.
        kit.transport.timeouts = attrs.evolve(kit.transport.timeouts, connect=0.3, total=0.3)
        monkeypatch.setattr(pg, "pause", unwritable)
        runner = WorkerRunner(kit, pg, manifest, BatchOptions(out=tmp_path), LEASE)
        events: list[Any] = []
        runner.emit = events.append
        [record] = await runner.run()
    assert sent == [manifest[0].key]
    assert record.state == "submitting"
    assert record.error is not None and "cannot be written" in record.error
    assert "create answer lost" not in record.error
    assert [e.message for e in events if type(e).__name__ == "LineError"] == [record.error]
