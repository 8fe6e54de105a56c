"""What many workers share through the PostgreSQL journal, against a real server: line
leases claimed with SKIP LOCKED, heartbeats, takeover of a dead worker's lines (flagged for
reconciliation), per-account slots, shared pauses and the workers registry.

Leases here last a fraction of a second: the tests wait for them to lapse with short sleeps.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from imuzekit.batch._journal import TransitionError
from imuzekit.batch._pg import LeaseLostError, PgJournal
from tests.batch_pg._lines import manifest

SHORT = 0.4  # a lease that lapses within a test
LONG = 60.0  # a lease that does not


async def test_concurrent_claimers_never_get_the_same_line(pg_url: str, pg_schema: str) -> None:
    lines = manifest(240)
    journals = [await PgJournal.open(pg_url, schema=pg_schema, max_connections=4) for _ in range(2)]
    try:
        await journals[0].sync(lines)
        for round_number in range(4):
            got: dict[str, list[str]] = {}

            async def claimer(
                journal: PgJournal, worker: str, got: dict[str, list[str]] = got
            ) -> None:
                mine = got.setdefault(worker, [])
                while claimed := await journal.claim_lines(worker, 1 + len(mine) % 4, LONG):
                    mine += [c.record.key for c in claimed]

            await asyncio.gather(
                *(claimer(journals[i % 2], f"r{round_number}-w{i}") for i in range(8))
            )
            everything = Counter(key for keys in got.values() for key in keys)
            assert sorted(everything) == sorted(line.key for line in lines)
            assert set(everything.values()) == {1}, everything.most_common(3)
            assert sum(1 for keys in got.values() if keys) >= 2  # they really competed
            for worker in got:
                await journals[1].release(worker)
        assert await journals[0].claim_lines("late", 5, LONG) != []  # released: claimable
    finally:
        for journal in journals:
            await journal.aclose()


async def test_a_lapsed_lease_goes_to_another_worker_flagged_for_reconciliation(
    pg_url: str, pg_schema: str
) -> None:
    async with await PgJournal.open(pg_url, schema=pg_schema) as journal:
        await journal.sync(manifest(3))
        dead = await journal.register_worker(worker_id="dead")
        alive = await journal.register_worker(worker_id="alive")
        first = await journal.claim_lines(dead, 3, SHORT)
        assert [(c.record.key, c.taken_over, c.reconcile) for c in first] == [
            ("line-0001", False, False),
            ("line-0002", False, False),
            ("line-0003", False, False),
        ]
        await journal.transition("line-0001", "submitting", worker=dead, settle_by=1.0)
        await journal.transition("line-0002", "submitting", worker=dead)
        await journal.transition("line-0002", "submitted", worker=dead, token="tok")
        assert await journal.claim_lines(alive, 3, LONG) == []  # held: skipped
        await asyncio.sleep(SHORT + 0.2)  # the dead worker never renews
        taken = await journal.claim_lines(alive, 3, LONG)
        assert [(c.record.key, c.record.state, c.previous_owner, c.reconcile) for c in taken] == [
            ("line-0001", "submitting", "dead", True),
            ("line-0002", "submitted", "dead", False),
            ("line-0003", "pending", "dead", False),
        ]
        assert taken[0].record.settle_by == 1.0
        # The dead worker, were it only stalled, can do nothing more with them.
        assert await journal.heartbeat(dead, LONG) == frozenset()
        with pytest.raises(LeaseLostError, match="'dead' no longer holds"):
            await journal.transition("line-0003", "submitting", worker=dead)
        with pytest.raises(LeaseLostError):
            await journal.transition("line-0001", "submitted", worker=dead, token="late")
        # Nothing can send line 1 again before it is reconciled: submitting never repeats.
        with pytest.raises(TransitionError, match="from submitting to submitting"):
            await journal.transition("line-0001", "submitting", worker=alive)
        after = await journal.line("line-0001")
        assert after is not None and (after.state, after.token) == ("submitting", None)
        assert await journal.held(alive) == {"line-0001", "line-0002", "line-0003"}
        moved = await journal.transition("line-0001", "pending", worker=alive)
        assert moved.state == "pending" and moved.settle_by is None
        # A move to a state with no work left releases the lease.
        await journal.transition("line-0003", "failed", worker=alive, error="refused")
        assert await journal.held(alive) == {"line-0001", "line-0002"}


async def test_a_heartbeat_keeps_a_live_workers_leases(pg_url: str, pg_schema: str) -> None:
    async with await PgJournal.open(pg_url, schema=pg_schema) as journal:
        await journal.sync(manifest(2))
        worker = await journal.register_worker()
        held = await journal.claim_lines(worker, 2, SHORT)
        assert len(held) == 2
        for _ in range(4):  # 0.8 s: twice the lease
            await asyncio.sleep(SHORT / 2)
            assert await journal.heartbeat(worker, SHORT) == {"line-0001", "line-0002"}
            assert await journal.claim_lines("other", 2, LONG) == []
        [me] = [w for w in await journal.workers() if w.id == worker]
        assert (me.leases, me.stopped_at, me.pid > 0) == (2, None, True)
        assert me.idle_seconds < SHORT
        await journal.unregister_worker(worker)
        [me] = [w for w in await journal.workers() if w.id == worker]
        assert me.leases == 0 and me.stopped_at is not None
        assert [c.previous_owner for c in await journal.claim_lines("other", 2, LONG)] == [
            None,
            None,
        ]


async def test_slots_never_exceed_the_limit_and_a_dead_holders_come_back(
    pg_url: str, pg_schema: str
) -> None:
    limit = 3
    journals = [await PgJournal.open(pg_url, schema=pg_schema, max_connections=4) for _ in range(2)]
    try:
        in_use = 0
        peak = 0
        taken = 0

        async def claimer(journal: PgJournal, worker: str) -> None:
            nonlocal in_use, peak, taken
            for _ in range(6):
                while (
                    slot := await journal.acquire_slot(
                        worker, "mureka", "acct", limit=limit, lease_seconds=LONG
                    )
                ) is None:
                    await asyncio.sleep(0.005)
                in_use += 1
                taken += 1
                peak = max(peak, in_use)
                assert await journal.slots_in_use("mureka", "acct") <= limit
                await asyncio.sleep(0.01)
                in_use -= 1
                assert await journal.release_slot(worker, slot)

        await asyncio.gather(*(claimer(journals[i % 2], f"w{i}") for i in range(8)))
        assert (taken, peak) == (48, limit)
        assert await journals[0].slots_in_use("mureka", "acct") == 0
        # Another account has its own slots.
        dead = [
            await journals[0].acquire_slot(
                "dead", "mureka", "acct", limit=limit, lease_seconds=SHORT
            )
            for _ in range(limit)
        ]
        assert None not in dead
        assert (
            await journals[1].acquire_slot("w", "mureka", "acct", limit=limit, lease_seconds=LONG)
            is None
        )
        other = await journals[1].acquire_slot(
            "w", "mureka", "acct2", limit=limit, lease_seconds=LONG
        )
        assert other is not None
        await asyncio.sleep(SHORT + 0.2)  # the dead holder never renews
        back = await journals[1].acquire_slot(
            "w", "mureka", "acct", limit=limit, lease_seconds=LONG
        )
        assert back is not None
        assert not await journals[0].release_slot("dead", dead[0])  # long gone
        assert await journals[0].slots_in_use("mureka", "acct") == 1
    finally:
        for journal in journals:
            await journal.aclose()


async def test_a_pause_set_by_one_worker_is_seen_by_another(pg_url: str, pg_schema: str) -> None:
    first = await PgJournal.open(pg_url, schema=pg_schema)
    second = await PgJournal.open(pg_url, schema=pg_schema)
    try:
        assert await second.paused_for("mureka", "acct") == 0.0
        await first.pause("mureka", "acct", 30, reason="429 Too Many Requests")
        assert 29 < await second.paused_for("mureka", "acct") <= 30
        assert await second.paused_for("mureka", "other") == 0.0
        assert await second.paused_for("imuze") == 0.0
        await second.pause("mureka", "acct", 5)  # a shorter pause never shortens it
        assert await first.paused_for("mureka", "acct") > 29
        await first.pause("mureka", None, 60)  # the whole provider
        assert 59 < await second.paused_for("mureka", "other") <= 60
        assert [(p.provider, p.account, p.reason) for p in await second.pauses()] == [
            ("mureka", "", None),
            ("mureka", "acct", "429 Too Many Requests"),
        ]
        await first.pause("imuze", None, 0.2)
        assert await second.paused_for("imuze") > 0
        await asyncio.sleep(0.3)
        assert await second.paused_for("imuze") == 0.0
    finally:
        await first.aclose()
        await second.aclose()
