"""Mureka end to end: the real Client against the emulator's useapi.net."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import mutagen.mp3
import pytest

from imuzekit import Client, JobState, MurekaConfig, PollPolicy, errors
from imuzekit._http import Request
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


# --- seeds 002/003 through the public API: expand, the model's fields, optional ids ----------


async def _raw(emu: Emulator, kit: Client, path: str, **params: str) -> Any:
    # Through the namespace's sender: the same Bearer token as the SDK's own calls.
    request = Request("GET", emu.urls["mureka"] + path, provider="mureka", params=params)
    return json.loads((await kit.mureka.send(request)).body)


async def test_list_with_expand_reads_every_songs_lyrics(emu: Emulator, kit: Client) -> None:
    # Seed 002: "expand ... Set it to true if you want to retrieve complete song details".
    account = _accounts(emu)[0]
    job = await kit.mureka.music.create_advanced(
        "[Verse]\nFirst line\nSecond line\n\n[Chorus]\nThird line", account=account
    )
    await job.wait(timeout=10)
    plain = [feed async for feed in kit.mureka.music.list(account=account)]
    expanded = [feed async for feed in kit.mureka.music.list(account=account, expand=True)]
    queries = [r.query for r in emu.requests if r.path == "/music/"]
    assert "expand" not in queries[0] and queries[1]["expand"] == "true"
    assert all(song.lyrics == () for song in plain[0].songs)
    for song in expanded[0].songs:
        assert [[row.text for row in section.rows] for section in song.lyrics] == [
            ["First line", "Second line"],
            ["Third line"],
        ]
        assert all(
            row.start is not None and row.end is not None and 0 < row.start < row.end
            for section in song.lyrics
            for row in section.rows
        )
        detail = await kit.mureka.music.get(song.song_id)
        assert detail.song.lyrics == song.lyrics


async def test_fields_only_the_model_lists_are_read(emu: Emulator, kit: Client) -> None:
    # Seeds 002/003's TypeScript model has fields their examples leave out: wave_list,
    # is_played?, is_liked?, video? {video_url, video_cover_url, video_id}, and per lyrics
    # section seg_type, user_input_tag, start?, end?.
    emu.mureka.model_fields = True
    account = _accounts(emu)[0]
    (seeded,) = emu.mureka.add_feeds(account, 1, prompt="night train to the sea")
    (feed,) = [f async for f in kit.mureka.music.list(account=account, expand=True)]
    raw = (await _raw(emu, kit, "/music/", account=account, expand="true"))["list"][0]
    assert feed.feed_id == seeded.feed_id
    for song, raw_song in zip(feed.songs, raw["songs"], strict=True):
        assert song.wave_list == tuple(raw_song["wave_list"]) and len(song.wave_list) == 48
        assert any(not float(v).is_integer() for v in song.wave_list)  # number[]: fractional
        assert (song.is_played, song.is_liked) == (False, False)
        assert song.video is not None
        assert (song.video.video_url, song.video.video_cover_url, song.video.video_id) == (
            raw_song["video"]["video_url"],
            raw_song["video"]["video_cover_url"],
            raw_song["video"]["video_id"],
        )
        assert song.video.video_id == int(str(song.song_id).rsplit(":", 1)[-1])
        sections = [
            (s.seg_type, s.user_input_tag, s.start, s.end, len(s.rows)) for s in song.lyrics
        ]
        assert sections == [
            (s["seg_type"], s["user_input_tag"], s["start"], s["end"], len(s["rows"]))
            for s in raw_song["lyrics"]
        ]
        assert [s[:2] for s in sections] == [(1, "[Verse]"), (2, "[Chorus]")]
        detail = await kit.mureka.music.get(song.song_id)
        assert detail.song.video == song.video and detail.song.wave_list == song.wave_list
        assert detail.song.lyrics == song.lyrics


async def test_feed_and_song_without_ids_and_fractional_numbers_keep_the_page(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    # Seeds 002/003: "all fields are optional" and numbers are `number`.
    account = _accounts(emu)[0]
    emu.mureka.add_feeds(account, 2)
    page = await _raw(emu, kit, "/music/", account=account)
    newest, older = page["list"]
    del newest["feed_id"]
    nameless = newest["songs"][1]
    original_id = nameless.pop("song_id")
    older["songs"][0]["duration_milliseconds"] = 30000.5
    emu.faults.add("mureka", "GET /music/", status=200, body=page)
    feeds = [feed async for feed in kit.mureka.music.list(account=account)]
    assert [f.feed_id for f in feeds] == [None, older["feed_id"]]
    assert [s.song_id for s in feeds[0].songs] == [newest["songs"][0]["song_id"], None]
    assert feeds[1].songs[0].duration_milliseconds == 30000.5
    song = feeds[0].songs[1]
    assert song.title == nameless["title"] and song.mp3_url == nameless["mp3_url"]
    # Fetching it needs the id it lacks: said before anything is sent.
    sent = len(emu.requests)
    with pytest.raises(errors.ValidationError) as info:
        await kit.mureka.music.get(song.song_id)
    assert info.value.field == "song_id" and "without a song_id" in str(info.value)
    assert len(emu.requests) == sent
    # Its file needs no id: it downloads, under a name of its own.
    path = await kit.download(song, tmp_path)
    assert path.read_bytes() == emu.mureka.audio_bytes(original_id)
