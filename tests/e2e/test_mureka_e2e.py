"""Mureka end to end: the real Client against the emulator's useapi.net."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import mutagen.mp3
import pytest

from imuzekit import Client, JobState, MurekaConfig, PollPolicy, errors
from imuzekit.emulator import Emulator
from imuzekit.providers.mureka import Feed
from tests.e2e.conftest import FAST_POLL, FAST_RETRY


def _accounts(emu: Emulator) -> tuple[str, ...]:
    return tuple(emu.credentials["mureka"].extra["accounts"].split(","))


async def test_music_list_pages_65_feeds_in_4_requests(emu: Emulator, kit: Client) -> None:
    account = _accounts(emu)[0]
    emu.mureka.add_feeds(account, 65)
    emu.clear_requests()
    feeds = kit.mureka.music.list(account=account)
    seen = [feed.feed_id async for feed in feeds]
    assert len(seen) == 65 and len(set(seen)) == 65
    assert seen == sorted(seen, reverse=True)  # newest first, in the service's order
    assert feeds.total == 65 and feeds.pages == 4
    assert emu.count("mureka", "GET", "/music*") == 4


async def test_create_wait_details_and_download(emu: Emulator, kit: Client, tmp_path: Path) -> None:
    job = await kit.mureka.music.create_advanced(
        "First line of the song\nSecond line", title="Trains", account=_accounts(emu)[1]
    )
    assert job.provider == "mureka" and job.state in (JobState.QUEUED, JobState.PROCESSING)
    feed = await job.wait(timeout=10)
    assert isinstance(feed, Feed) and feed.complete and len(feed.songs) == 2
    assert {song.version for song in feed.songs} == {"1", "2"}
    detail = await kit.mureka.music.get(feed.songs[0].song_id)
    assert detail.feed_id == feed.feed_id
    assert any(row.text for section in detail.song.lyrics for row in section.rows)
    results = [r async for r in kit.download_many(feed.songs, tmp_path, checksum=True)]
    assert all(r.ok for r in results) and len({r.path for r in results}) == 2
    for result in results:
        assert result.path is not None
        assert mutagen.mp3.MP3(result.path).info.length > 1
        assert "Trains v" in result.path.name
    single = await kit.download(feed.songs[0], tmp_path / "one.mp3")
    assert hashlib.sha256(single.read_bytes()).hexdigest() == results[0].sha256 or (
        hashlib.sha256(single.read_bytes()).hexdigest() == results[1].sha256
    )


async def test_failed_job_raises_job_failed_with_the_service_text(
    emu: Emulator, kit: Client
) -> None:
    emu.mureka.fail_next(1, error="Moderation failed", details="lyrics were refused")
    job = await kit.mureka.music.create("something", account=_accounts(emu)[0])
    with pytest.raises(errors.JobFailed) as info:
        await job.wait(timeout=10)
    assert not isinstance(info.value, errors.JobTimeout)
    assert info.value.reason is not None and "Moderation failed" in info.value.reason
    assert job.state is JobState.FAILED


async def test_session_expired_596_and_payment_402_map(emu: Emulator, kit: Client) -> None:
    first, second = _accounts(emu)[:2]
    emu.mureka.set_account_error(first, 596)
    with pytest.raises(errors.ServerError) as expired:
        await kit.mureka.music.create("x", account=first)
    assert expired.value.status == 596
    assert "session expired" in str(expired.value) and "useapi.net" in str(expired.value)
    emu.mureka.set_account_error(second, 402)
    with pytest.raises(errors.PaymentRequiredError):
        await kit.mureka.music.create("x", account=second)
    emu.mureka.set_account_error(second, 412)
    with pytest.raises(errors.PaymentRequiredError):
        await kit.mureka.music.create("x", account=second)
    assert emu.mureka.creations == 0


async def test_deleted_song_is_not_found_with_the_service_text(emu: Emulator, kit: Client) -> None:
    feed = await (await kit.mureka.music.create("x", account=_accounts(emu)[0])).wait(timeout=10)
    emu.mureka.delete_song(feed.songs[0].song_id)
    with pytest.raises(errors.NotFoundError, match="The song has been deleted"):
        await kit.mureka.music.get(feed.songs[0].song_id)


async def test_validation_sends_nothing(emu: Emulator, kit: Client) -> None:
    with pytest.raises(errors.ValidationError):
        await kit.mureka.music.create("x" * 3001)
    with pytest.raises(errors.ValidationError):
        await kit.mureka.music.create_instrumental("x", title="t" * 51)
    with pytest.raises(errors.ValidationError):
        await kit.mureka.music.create("x", account="not-configured")
    assert [r for r in emu.requests if r.provider == "mureka"] == []


async def test_200_creations_across_3_accounts(tmp_path: Path) -> None:
    async with Emulator(render_seconds=(0.2, 0.5), seed=11) as emu:
        emu.mureka.add_account("55555555555555")
        accounts = _accounts(emu)
        assert len(accounts) == 3
        config = MurekaConfig(
            token=emu.credentials["mureka"].token,
            accounts=accounts,
            base_url=emu.urls["mureka"],
        )
        policy = PollPolicy(initial=0.1, max_interval=0.2, timeout=60)
        async with emu.client(mureka=config, poll=policy, retry=FAST_RETRY) as kit:

            async def one(n: int) -> Feed:
                job = await kit.mureka.music.create(f"song number {n}")
                return await job.wait(timeout=60)

            feeds = await asyncio.gather(*(one(n) for n in range(200)))
            assert len(feeds) == 200 and all(feed.complete for feed in feeds)
            status_requests = emu.count("mureka", "GET", "/jobs") + emu.count(
                "mureka", "GET", "/jobs/*"
            )
            # Every account stayed within Mureka's limit, and the caller never saw a 429.
            assert all(emu.mureka.max_running[a] <= 10 for a in accounts)
            assert all(emu.mureka.max_running[a] >= 5 for a in accounts)  # all were used
            assert emu.mureka.creations == 200
            assert status_requests / 200 < 2.5, status_requests
            songs = [song for feed in feeds for song in feed.songs]
            results = [r async for r in kit.download_many(songs, tmp_path, concurrency=16)]
            assert len(results) == 400 and all(r.ok for r in results)
            for result in results[::40]:
                assert result.path is not None
                assert mutagen.mp3.MP3(result.path).info.length > 1


async def test_mureka_poll_hint_applies_without_a_client_policy(emu: Emulator) -> None:
    async with emu.client() as kit:
        assert kit.mureka.poll_policy.initial == 30.0
    async with emu.client(poll=FAST_POLL) as kit:
        assert kit.mureka.poll_policy == FAST_POLL


async def test_busy_account_backs_off_and_creation_moves_to_another(
    emu: Emulator, kit: Client
) -> None:
    first, second = _accounts(emu)[:2]
    # Someone else (another process) filled every slot of the first account.
    for n in range(10):
        emu.mureka.create("create", {"prompt": f"elsewhere {n}"}, account=first)
    job = await kit.mureka.music.create("mine")
    record = await kit.mureka.jobs.get(job.id)
    assert record.account == second
    posts = [r for r in emu.requests if r.path == "/music/create"]
    assert [r.status for r in posts] == [429, 201]
    assert kit.mureka.slots.load(first) == 0  # the refused reservation was given back
