"""The coalescing poller against the emulator: few requests for many jobs, clean shutdown."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from imuzekit import Client, JobState, PollPolicy, errors
from imuzekit.emulator import Emulator
from imuzekit.emulator._clock import Clock
from tests._titles import numbered_title
from tests.e2e.conftest import FAST_RETRY


async def test_many_jobs_are_refreshed_by_list_requests() -> None:
    policy = PollPolicy(initial=0.05, max_interval=0.2, timeout=10)
    async with (
        Emulator(render_seconds=(0.2, 0.8), seed=3) as emu,
        emu.client(poll=policy, retry=FAST_RETRY) as kit,
    ):
        jobs = [
            await kit.imuze.songs.create(
                title=numbered_title(i), arrangement_id=1, tags=[], desired_length=2
            )
            for i in range(60)
        ]
        done = [job async for job in kit.as_completed(jobs, timeout=10)]
        assert all(job.state is JobState.READY for job in done)
        list_requests = emu.count("imuze", "GET", "/songs")
        single_requests = emu.count("imuze", "GET", "/songs/*")
        status_requests = list_requests + single_requests
        # Lists refresh everyone; only the last stragglers (fewer than the batch threshold of 3
        # still waiting) are asked about one by one, a few times each at most on a busy machine.
        assert single_requests <= 5 * (kit.imuze._poller.batch_threshold - 1), single_requests
        assert list_requests >= 1
        # A per-job loop would need several requests per job; lists need a fraction of one.
        assert status_requests / len(jobs) <= 0.5, status_requests


async def test_cancelling_a_wait_unregisters_the_job(emu: Emulator, kit: Client) -> None:
    job = await kit.imuze.songs.create(
        title="Cancelled Song", arrangement_id=1, tags=[], desired_length=2
    )
    task = asyncio.create_task(job.wait(timeout=5))
    await asyncio.sleep(0.01)
    poller = kit._pollers["imuze"]
    assert poller.waiting == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert poller.waiting == 0


async def test_closing_the_client_wakes_waiters_with_a_clear_error() -> None:
    async with Emulator(render_seconds=60, clock=Clock(frozen=True)) as emu:
        kit = emu.client(poll=PollPolicy(initial=0.05, max_interval=0.1), retry=FAST_RETRY)
        job = await kit.imuze.songs.create(
            title="Closing Song", arrangement_id=1, tags=[], desired_length=2
        )
        task = asyncio.create_task(job.wait(timeout=5))
        await asyncio.sleep(0.1)
        await kit.close()
        with pytest.raises(errors.ClientClosedError):
            await task


async def test_permanent_error_reaches_the_waiter(emu: Emulator, kit: Client) -> None:
    job = await kit.imuze.songs.create(
        title="Gone Song", arrangement_id=1, tags=[], desired_length=2
    )
    emu.faults.add("imuze", "GET /songs/*", status=404, times=None)
    with pytest.raises(errors.NotFoundError):
        await job.wait(timeout=5)


async def test_transient_errors_are_ridden_out(emu: Emulator, kit: Client) -> None:
    job = await kit.imuze.songs.create(
        title="Transient Song", arrangement_id=1, tags=[], desired_length=2
    )
    emu.faults.add("imuze", "GET /songs/*", status=503, times=5)
    song = await job.wait(timeout=5)
    assert song.status == "ready"


async def test_429_burst_pauses_the_whole_provider(emu: Emulator, kit: Client) -> None:
    jobs = [
        await kit.imuze.songs.create(
            title=numbered_title(i), arrangement_id=1, tags=[], desired_length=1
        )
        for i in range(2)
    ]
    emu.clear_requests()
    emu.faults.add("imuze", "GET /songs/*", status=429, retry_after=0.3)
    first = asyncio.create_task(kit.imuze.songs.get(int(jobs[0].id)))
    await asyncio.sleep(0.05)
    others = await asyncio.gather(*(kit.imuze.songs.get(int(j.id)) for j in jobs))
    await first
    assert len(others) == 2
    limited = next(r for r in emu.requests if r.status == 429)
    inside = [r for r in emu.requests if limited.wall < r.wall < limited.wall + 0.29]
    assert inside == []


def test_job_token_resumed_in_another_process(tmp_path: object) -> None:
    script = textwrap.dedent(
        """
        import asyncio, json, subprocess, sys
        from imuzekit import PollPolicy
        from imuzekit.emulator import Emulator

        CHILD = '''
        import asyncio, json, sys
        from imuzekit import Client, ImuzeConfig, PollPolicy
        async def main():
            url, email, password, token, out = sys.argv[1:6]
            config = ImuzeConfig(email=email, password=password, base_url=url)
            async with Client(imuze=config, poll=PollPolicy(initial=0.05, max_interval=0.1)) as kit:
                job = kit.resume(token)
                song = await job.wait(timeout=10)
                path = await kit.download(song, out)
                print(json.dumps({"id": song.id, "title": song.title, "path": str(path)}))
        asyncio.run(main())
        '''

        async def main():
            async with Emulator(render_seconds=0.3) as emu:
                async with emu.client() as kit:
                    job = await kit.imuze.songs.create(
                        title="Handoff", arrangement_id=1, tags=[], desired_length=3
                    )
                    token = job.token()
                creds = emu.credentials["imuze"]
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", CHILD, emu.urls["imuze"], creds.email,
                    creds.password, token, sys.argv[1], stdout=subprocess.PIPE,
                )
                out, _ = await proc.communicate()
                result = json.loads(out)
                assert proc.returncode == 0
                assert result["title"] == "Handoff"
                with open(result["path"], "rb") as handle:
                    import hashlib
                    digest = hashlib.sha256(handle.read()).hexdigest()
                assert digest == emu.imuze.audio_sha256(result["id"]), "sha mismatch"
                print("OK", result["id"])

        asyncio.run(main())
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("OK ")


async def test_budget_ticks_come_before_the_backoffs_first_poll() -> None:
    """With the latency budget, list requests start as soon as jobs are expected to finish
    (their hint: 2 s of audio); the backoff alone would wait ``PollPolicy.initial`` (2 s)."""
    policy = PollPolicy(budget=0.5, timeout=10)  # initial 2 s, the old first poll
    async with (
        Emulator(render_seconds=(0.2, 0.6), seed=5) as emu,
        emu.client(poll=policy, retry=FAST_RETRY) as kit,
    ):
        jobs = [
            await kit.imuze.songs.create(
                title=numbered_title(i), arrangement_id=1, tags=[], desired_length=2
            )
            for i in range(40)
        ]
        loop = asyncio.get_running_loop()
        start = loop.time()
        seen = 0
        async for job in kit.as_completed(jobs, timeout=10):
            assert job.state is JobState.READY
            seen += 1
            if seen == 30:
                break
        elapsed = loop.time() - start
        lists = emu.count("imuze", "GET", "/songs")
        singles = emu.count("imuze", "GET", "/songs/*")
    assert elapsed < policy.initial, elapsed  # 30 of 40 seen before the old first poll
    assert lists >= 2 and singles == 0, (lists, singles)
    assert lists / len(jobs) <= policy.budget, (lists, elapsed)


async def test_without_a_budget_the_first_list_waits_for_initial() -> None:
    policy = PollPolicy(budget=0, timeout=10)
    async with (
        Emulator(render_seconds=(0.2, 0.6), seed=5) as emu,
        emu.client(poll=policy, retry=FAST_RETRY) as kit,
    ):
        jobs = [
            await kit.imuze.songs.create(
                title=numbered_title(i), arrangement_id=1, tags=[], desired_length=2
            )
            for i in range(10)
        ]
        waiting = asyncio.gather(*(job.wait() for job in jobs))
        await asyncio.sleep(1.0)
        assert emu.count("imuze", "GET", "/songs") == 0  # all ready by now, none seen
        assert not any(job.done for job in jobs)
        await waiting
        assert emu.count("imuze", "GET", "/songs") >= 1
