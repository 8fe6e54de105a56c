"""iMuze v4 end to end: the real Client against the real emulator, real bytes on disk."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import mutagen.mp3
import pytest

from imuzekit import Client, ImuzeConfig, JobState, PollPolicy, errors
from imuzekit.emulator import Emulator
from imuzekit.emulator._clock import Clock
from tests._titles import numbered_title
from tests.e2e.conftest import FAST_POLL, FAST_RETRY

FRAME = 1152 / 44100


async def test_login_arrangements_create_wait_download(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    await kit.imuze.login()
    arrangements = [a async for a in kit.imuze.arrangements.list()]
    assert len(arrangements) >= 3
    assert all(a.name for a in arrangements)
    detail = await kit.imuze.arrangements.get(arrangements[0].id)
    assert detail.id == arrangements[0].id and detail.genre_list

    job = await kit.imuze.songs.create(
        title="Morning Light", arrangement_id=detail.id, tags=["calm", "piano"], desired_length=7
    )
    assert job.state is JobState.QUEUED
    assert job.provider == "imuze"
    song = await job.wait(timeout=5)
    assert job.state is JobState.READY and job.raw_status == "ready"
    assert song.title == "Morning Light" and song.mp3_url

    path = await kit.download(song, tmp_path)
    assert path.parent == tmp_path and path.suffix == ".mp3"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == emu.imuze.audio_sha256(song.id)
    assert abs(mutagen.mp3.MP3(path).info.length - 7) <= FRAME
    assert not list(tmp_path.glob("*.part"))
    # The token login happened once (explicit login), then the token was reused.
    assert emu.count("imuze", "POST", "/tokens") == 1


async def test_songs_list_and_get(emu: Emulator, kit: Client) -> None:
    job = await kit.imuze.songs.create(
        title="Listed Song", arrangement_id=1, tags=[], desired_length=3
    )
    songs = [s async for s in kit.imuze.songs.list()]
    assert [s.id for s in songs] == [int(job.id)]
    got = await kit.imuze.songs.get(int(job.id))
    assert got.title == "Listed Song"
    with pytest.raises(errors.NotFoundError):
        await kit.imuze.songs.get(999_999)


async def test_401_triggers_exactly_one_relogin(emu: Emulator, kit: Client) -> None:
    _ = [a async for a in kit.imuze.arrangements.list()]
    assert emu.count("imuze", "POST", "/tokens") == 1
    emu.imuze.revoke_tokens()
    _ = [a async for a in kit.imuze.arrangements.list()]
    assert emu.count("imuze", "POST", "/tokens") == 2
    assert emu.count("imuze", "GET", "/arrangements") == 3  # ok, 401, ok


async def test_wrong_password_is_authentication_error(emu: Emulator) -> None:
    config = ImuzeConfig(email="demo@imuzekit.test", password="wrong", base_url=emu.urls["imuze"])
    async with emu.client(imuze=config) as kit:
        with pytest.raises(errors.AuthenticationError):
            await kit.imuze.songs.get(1)
    assert emu.count("imuze", "POST", "/tokens") == 1


async def test_given_token_without_login_fails_once_on_401(emu: Emulator) -> None:
    config = ImuzeConfig(token="not-a-token", base_url=emu.urls["imuze"])
    async with emu.client(imuze=config) as kit:
        with pytest.raises(errors.AuthenticationError):
            await kit.imuze.songs.get(1)
    assert emu.count("imuze", "GET") == 1


async def test_two_503s_then_success_observing_retry_after(emu: Emulator, kit: Client) -> None:
    job = await kit.imuze.songs.create(
        title="Retried Song", arrangement_id=1, tags=[], desired_length=2
    )
    emu.clear_requests()
    emu.faults.add("imuze", "GET /songs/*", status=503, times=2, retry_after=0.2)
    song = await kit.imuze.songs.get(int(job.id))
    assert song.id == int(job.id)
    gets = [r for r in emu.requests if r.method == "GET" and r.path.startswith("/songs/")]
    assert [r.status for r in gets] == [503, 503, 200]
    assert gets[1].wall - gets[0].wall >= 0.19
    assert gets[2].wall - gets[1].wall >= 0.19


async def test_500_on_create_is_not_retried_and_one_song_exists(emu: Emulator, kit: Client) -> None:
    # The server creates the song, then fails to answer: a retry would create a second one.
    emu.faults.add("imuze", "POST /songs", status=500, after_handler=True)
    with pytest.raises(errors.ServerError):
        await kit.imuze.songs.create(title="Once", arrangement_id=1, tags=[], desired_length=2)
    assert emu.count("imuze", "POST", "/songs") == 1
    assert emu.imuze.songs_created == 1


async def test_429_on_create_is_retried_after_retry_after(emu: Emulator, kit: Client) -> None:
    emu.faults.add("imuze", "POST /songs", status=429, retry_after=0.2)
    job = await kit.imuze.songs.create(
        title="Quick Song", arrangement_id=1, tags=[], desired_length=2
    )
    posts = [r for r in emu.requests if r.method == "POST" and r.path == "/songs"]
    assert [r.status for r in posts] == [429, 201]
    assert posts[1].wall - posts[0].wall >= 0.19
    assert emu.imuze.songs_created == 1
    assert job.id


async def test_wait_deadline_raises_job_timeout_in_time() -> None:
    async with (
        Emulator(render_seconds=60, clock=Clock(frozen=True)) as emu,
        emu.client(poll=FAST_POLL, retry=FAST_RETRY) as kit,
    ):
        job = await kit.imuze.songs.create(
            title="Slow", arrangement_id=1, tags=[], desired_length=2
        )
        started = time.monotonic()
        with pytest.raises(errors.JobTimeout) as info:
            await job.wait(timeout=0.3)
        elapsed = time.monotonic() - started
        assert 0.29 <= elapsed < 0.6
        assert info.value.job is job
        assert job.state is JobState.PROCESSING
        # The clock moves: the same job can still finish.
        emu.clock.advance(61)
        song = await job.wait(timeout=2)
        assert song.id == int(job.id)


async def test_stalled_job_raises_job_timeout() -> None:
    async with Emulator(render_seconds=60, clock=Clock(frozen=True)) as emu:
        policy = PollPolicy(initial=0.02, max_interval=0.05, stall_after=0.2)
        async with emu.client(poll=policy, retry=FAST_RETRY) as kit:
            job = await kit.imuze.songs.create(
                title="Stalled Song", arrangement_id=1, tags=[], desired_length=2
            )
            started = time.monotonic()
            with pytest.raises(errors.JobTimeout, match="stalled"):
                await job.wait(timeout=5)
            assert time.monotonic() - started < 1.0


async def test_validation_errors_send_nothing(emu: Emulator, kit: Client) -> None:
    bad_calls = [
        ({"title": "", "arrangement_id": 1, "tags": [], "desired_length": 5}, "title"),
        (
            {"title": "Morning Song", "arrangement_id": 1, "tags": [], "desired_length": 0},
            "desired_length",
        ),
        (
            {"title": "Morning Song", "arrangement_id": 1, "tags": "rock", "desired_length": 5},
            "tags",
        ),
        (
            {"title": "Morning Song", "arrangement_id": 1, "tags": [1], "desired_length": 5},
            "tags[0]",
        ),
        ({"title": "Song 42", "arrangement_id": 1, "tags": [], "desired_length": 5}, "title"),
    ]
    for call, field in bad_calls:
        with pytest.raises(errors.ValidationError) as info:
            await kit.imuze.songs.create(**call)  # type: ignore[arg-type]
        assert info.value.field == field
    assert len(emu.requests) == 0


async def test_unknown_status_keeps_polling_and_failed_like_value_is_raw(
    emu: Emulator, kit: Client
) -> None:
    job = await kit.imuze.songs.create(
        title="Unknown Song", arrangement_id=1, tags=[], desired_length=2
    )
    emu.imuze.set_status(int(job.id), "remastering")
    state = await job.refresh()
    assert state is JobState.UNKNOWN and job.raw_status == "remastering"
    emu.imuze.set_status(int(job.id), None)
    song = await job.wait(timeout=5)
    assert song.status == "ready"


async def test_watch_yields_each_state_change(emu: Emulator, kit: Client) -> None:
    job = await kit.imuze.songs.create(
        title="Watched Song", arrangement_id=1, tags=[], desired_length=2
    )
    states = [snapshot.state async for snapshot in job.watch(timeout=5)]
    assert states[0] is JobState.QUEUED
    assert states[-1] is JobState.READY
    assert len(states) == len(set(states))


async def test_as_completed_and_download_many(emu: Emulator, kit: Client, tmp_path: Path) -> None:
    jobs = [
        await kit.imuze.songs.create(title="Same", arrangement_id=1, tags=[], desired_length=1 + i)
        for i in range(5)
    ]
    done = [job async for job in kit.as_completed(jobs, timeout=5)]
    assert sorted(j.id for j in done) == sorted(j.id for j in jobs)
    songs = [job.result for job in done]
    results = [r async for r in kit.download_many(songs, tmp_path, concurrency=2, checksum=True)]
    assert all(r.ok for r in results)
    paths = {r.path for r in results}
    assert len(paths) == 5
    for result in results:
        assert result.path is not None
        assert result.sha256 == emu.imuze.audio_sha256(result.source.id)
        assert hashlib.sha256(result.path.read_bytes()).hexdigest() == result.sha256
    # Without checksum=True nothing is hashed, on a fresh transfer or on a skipped file.
    again = [r async for r in kit.download_many(songs, tmp_path, concurrency=2)]
    assert {r.path for r in again} == paths and all(r.sha256 is None for r in again)
    assert sorted(r.size for r in again) == sorted(r.size for r in results)
    rehashed = [r async for r in kit.download_many(songs, tmp_path, checksum=True)]
    assert {(r.path, r.sha256) for r in rehashed} == {(r.path, r.sha256) for r in results}
    fresh = [r async for r in kit.download_many(songs[:1], tmp_path / "fresh")]
    assert fresh[0].ok and fresh[0].sha256 is None
    assert fresh[0].size == len(emu.imuze.audio_bytes(songs[0].id))


async def test_resume_from_token_in_same_process(emu: Emulator, kit: Client) -> None:
    job = await kit.imuze.songs.create(
        title="Token Song", arrangement_id=2, tags=["a"], desired_length=2
    )
    token = job.token()
    assert "password" not in token and emu.credentials["imuze"].password not in token
    resumed = kit.resume(token)
    assert resumed.id == job.id and resumed.result is not None
    song = await resumed.wait(timeout=5)
    assert song.title == "Token Song"
    with pytest.raises(errors.ValidationError):
        kit.resume('{"nope": 1}')


async def test_closed_client_raises_clear_error(emu: Emulator) -> None:
    kit = emu.client()
    async with kit:
        _ = [a async for a in kit.imuze.arrangements.list()]
    await kit.close()
    with pytest.raises(errors.ClientClosedError):
        _ = kit.imuze
    with pytest.raises(errors.ClientClosedError):
        async with kit:
            pass


async def test_unconfigured_provider_says_what_to_set(emu: Emulator) -> None:
    config = ImuzeConfig(token=emu.credentials["imuze"].token, base_url=emu.urls["imuze"])
    async with Client(imuze=config) as kit:
        for name, hint in (
            ("joplin", "IMUZEKIT_JOPLIN_TOKEN"),
            ("mureka", "IMUZEKIT_MUREKA_TOKEN"),
            ("musescore", "IMUZEKIT_MUSESCORE_CONSUMER_KEY"),
        ):
            with pytest.raises(errors.ConfigurationError, match=hint):
                getattr(kit, name)


async def test_cancelled_wait_leaves_no_pending_tasks(emu: Emulator, kit: Client) -> None:
    job = await kit.imuze.songs.create(
        title="Cancelled Song", arrangement_id=1, tags=[], desired_length=2
    )
    task = asyncio.create_task(job.wait(timeout=5))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not [t for t in others if "wait" in repr(t.get_coro())]


def test_emulator_module_serves_and_prints_urls() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "imuzekit.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            while not any("Ctrl-C" in line for line in lines) and len(lines) < 40:
                lines.append(proc.stdout.readline())
            assert any("http://127.0.0.1:" in line for line in lines), lines
            assert any("demo@imuzekit.test" in line for line in lines), lines
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# --- seed 001: songs "by ids ... or by tags", list counts as numeric strings -----------------


async def test_song_created_from_tags_alone(emu: Emulator, kit: Client, tmp_path: Path) -> None:
    job = await kit.imuze.songs.create(
        title="By Tags", arrangement_id=None, tags=["jazz", "swing"], desired_length=2
    )
    sent = [r for r in emu.requests if r.method == "POST" and r.path == "/songs"]
    assert [r.status for r in sent] == [201]
    assert job.result is not None and job.result.arrangement_id == 7  # Jazz Piano Trio
    song = await job.wait(timeout=10)
    assert (song.arrangement_id, song.arrangement_name) == (7, "Jazz Piano Trio")
    assert song.tags == ("jazz", "swing") and song.title == "By Tags"
    path = await kit.download(song, tmp_path)
    assert path.read_bytes() == emu.imuze.audio_bytes(int(song.id))


async def test_song_from_tags_that_match_no_arrangement_is_a_bad_request(
    emu: Emulator, kit: Client
) -> None:
    with pytest.raises(errors.BadRequestError) as info:
        await kit.imuze.songs.create(
            title="Nothing", arrangement_id=None, tags=["polka"], desired_length=2
        )
    assert info.value.status == 400 and "polka" in str(info.value)
    assert emu.imuze.songs_created == 0


async def test_song_without_arrangement_or_tags_sends_nothing(emu: Emulator, kit: Client) -> None:
    with pytest.raises(errors.ValidationError) as info:
        await kit.imuze.songs.create(
            title="Morning Song", arrangement_id=None, tags=[], desired_length=2
        )
    assert info.value.field == "tags"
    assert [r for r in emu.requests if r.provider == "imuze"] == []


async def test_list_count_as_a_numeric_string_keeps_paging(emu: Emulator, kit: Client) -> None:
    emu.imuze.count_as_string = True
    jobs = [
        await kit.imuze.songs.create(
            title=numbered_title(n, "Old"), arrangement_id=1, tags=["x"], desired_length=1
        )
        for n in range(3)
    ]
    # 1000 newer songs (the SDK's page size) push ours onto the list's second page.
    for n in range(1000):
        emu.imuze.create_song(title=f"Newer {n}", arrangement_id=1, desired_length=1)
    emu.clock.advance(60)
    songs = await asyncio.gather(*(job.wait(timeout=10) for job in jobs))
    assert all(song.is_ready for song in songs)
    pages = {r.query.get("page") for r in emu.requests if r.path == "/songs"}
    assert "2" in pages, pages
    arrangements = [a async for a in kit.imuze.arrangements.list()]
    assert len(arrangements) == len(emu.imuze.arrangements)
