"""joplin end to end: the real Client against the emulator's music engine."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import mutagen.mp3
import pytest

from imuzekit import Client, JobState, JoplinConfig, PollPolicy, errors
from imuzekit.emulator import Emulator
from imuzekit.providers.joplin import Energy, Movement, Structure
from tests.e2e.conftest import FAST_RETRY

FRAME_MS = 1152 / 44100 * 1000


async def test_login_genres_create_wait_download(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    await kit.joplin.login()
    genres = await kit.joplin.genres()
    assert len(genres) >= 5 and all(g.subgenres for g in genres)
    genre = genres[0]
    structure = Structure.parse("calm:0.2,medium:0.4,dynamic:0.2,calm:0.2")
    job = await kit.joplin.musics.create(
        genre.name, genre.subgenres[0], 12_000, structure, fadeout_ms=2000, validate_genre=True
    )
    assert job.provider == "joplin" and job.state is JobState.PROCESSING
    music = await job.wait(timeout=5)
    assert music.genre == genre.name and music.bpm and music.bpm > 0
    assert music.duration_ms is not None and music.duration_ms >= 12_000
    assert [m.energy for m in music.structure] == [
        Energy.CALM,
        Energy.MEDIUM,
        Energy.DYNAMIC,
        Energy.CALM,
    ]
    schema = await kit.joplin.musics.schema(music.id)
    assert schema.duration_ms == music.duration_ms

    path = await kit.download(music, tmp_path)
    length_ms = mutagen.mp3.MP3(path).info.length * 1000
    assert abs(length_ms - music.duration_ms) <= FRAME_MS
    assert hashlib.sha256(path.read_bytes()).hexdigest() == emu.joplin.audio_sha256(music.id)
    # Polls probed one byte each (202 while rendering, 206 once ready); only the download
    # itself, the last mp3 request, fetched the whole file with a 200.
    mp3_statuses = [r.status for r in emu.requests if r.path.endswith("/mp3")]
    assert mp3_statuses[-1] == 200
    assert set(mp3_statuses[:-1]) <= {202, 206} and 206 in mp3_statuses


async def test_crop_gives_exactly_the_requested_duration(
    emu: Emulator, kit: Client, tmp_path: Path
) -> None:
    job = await kit.joplin.musics.create(
        "electronic", "house", 10_000, "intro:0.1,verse:0.4,refrain:0.5", crop=True
    )
    music = await job.wait(timeout=5)
    assert music.duration_ms == 10_000
    assert [m.movement for m in music.structure] == ["intro", "verse", "refrain"]
    path = await kit.download(music, tmp_path / "cropped.mp3")
    assert abs(mutagen.mp3.MP3(path).info.length * 1000 - 10_000) <= FRAME_MS


async def test_mp3_stream_and_not_ready(emu: Emulator, kit: Client) -> None:
    job = await kit.joplin.musics.create("electronic", "house", 5_000, "dynamic:1")
    emu.joplin.retry_after_seconds = 3
    with pytest.raises(errors.NotReadyError) as info:
        _ = [chunk async for chunk in kit.joplin.musics.mp3(job.id)]
    assert info.value.retry_after == 3
    emu.joplin.retry_after_seconds = 0
    await job.wait(timeout=5)
    data = b"".join([chunk async for chunk in kit.joplin.musics.mp3(job.id)])
    assert data == emu.joplin.audio_bytes(job.id)
    with pytest.raises(errors.NotFoundError):
        _ = [chunk async for chunk in kit.joplin.musics.mp3("no-such-music")]


async def test_the_rendering_retry_after_spaces_the_polls(emu: Emulator, kit: Client) -> None:
    # The 202's Retry-After (1 s) outweighs the poll policy's 0.05-0.1 s: the music renders in
    # 0.5 s, yet the job is probed once, then again only after the hint.
    emu.joplin.retry_after_seconds = 1
    emu.joplin.render_seconds = 0.5
    job = await kit.joplin.musics.create("electronic", "house", 5_000, "dynamic:1")
    started = time.monotonic()
    await job.wait(timeout=5)
    assert time.monotonic() - started >= 0.95
    probes = [r.status for r in emu.requests if r.path.endswith("/mp3")]
    assert probes == [202, 206]


async def test_expired_jwt_is_renewed_without_the_caller_noticing(
    emu: Emulator, kit: Client
) -> None:
    await kit.joplin.musics.create("electronic", "house", 5_000, "calm:1")
    assert emu.count("joplin", "PUT", "/accounts/token") == 1
    emu.clock.advance(emu.joplin.token_ttl + 1)  # the server now refuses the JWT
    job = await kit.joplin.musics.create("electronic", "house", 5_000, "calm:1")
    assert job.id
    assert emu.count("joplin", "PUT", "/accounts/token") == 2
    assert emu.joplin.musics_created == 2  # the refused POST created nothing; no duplicate


async def test_short_lived_jwt_is_renewed_before_expiry(emu: Emulator, kit: Client) -> None:
    # A 2-second JWT: the SDK renews it in the last quarter of its life, before the server
    # would refuse it (and, unlike a fixed 30 s margin, not on every request).
    emu.joplin.token_ttl = 2
    await kit.joplin.musics.create("electronic", "house", 5_000, "calm:1")
    await kit.joplin.musics.create("electronic", "house", 5_000, "calm:1")
    assert emu.count("joplin", "PUT", "/accounts/token") == 1
    await asyncio.sleep(1.7)
    await kit.joplin.musics.create("electronic", "house", 5_000, "calm:1")
    statuses = [r.status for r in emu.requests if r.provider == "joplin"]
    assert 401 not in statuses  # renewed ahead of time, never refused
    assert emu.count("joplin", "PUT", "/accounts/token") >= 2


async def test_forged_jwt_is_refused(emu: Emulator) -> None:
    real = emu.credentials["joplin"].token
    assert real is not None
    head, payload, _ = real.split(".")
    forged = f"{head}.{payload}.{'A' * 43}"
    config = JoplinConfig(token=forged, base_url=emu.urls["joplin"])
    async with emu.client(joplin=config) as kit:
        with pytest.raises(errors.AuthenticationError):
            await kit.joplin.musics.schema("whatever")


async def test_validation_sends_nothing(emu: Emulator, kit: Client) -> None:
    with pytest.raises(errors.ValidationError, match=r"structure\[1\]\.energy"):
        await kit.joplin.musics.create(
            "electronic",
            "house",
            5_000,
            [Movement(0, 0.5, energy="calm"), Movement(0.5, 0.5, energy="calm", movement="intro")],
        )
    with pytest.raises(errors.ValidationError, match="fadeout_ms"):
        await kit.joplin.musics.create("electronic", "house", 5_000, "calm:1", fadeout_ms=9_000)
    assert [r for r in emu.requests if r.provider == "joplin"] == []
    with pytest.raises(errors.ValidationError, match="subgenre"):
        await kit.joplin.musics.create("electronic", "polka", 5_000, "calm:1", validate_genre=True)
    assert emu.count("joplin", "POST", "/musics") == 0


async def test_server_side_rejection_is_a_bad_request(emu: Emulator, kit: Client) -> None:
    with pytest.raises(errors.BadRequestError, match="genre"):
        await kit.joplin.musics.create("no-such-genre", "x", 5_000, "calm:1")


async def test_resume_music_job_from_token(emu: Emulator, kit: Client) -> None:
    job = await kit.joplin.musics.create("electronic", "house", 5_000, "calm:0.5,dynamic:0.5")
    resumed = kit.resume(job.token())
    music = await resumed.wait(timeout=5)
    assert music.id == job.id and music.bpm == job.result.bpm  # type: ignore[union-attr]
    assert "password" not in job.token()


async def test_500_concurrent_jobs_without_a_duplicate_creation(tmp_path: Path) -> None:
    async with Emulator(render_seconds=(0.1, 0.6), seed=5) as emu:
        # Faults that a careless retry would turn into duplicates.
        emu.faults.add("joplin", "POST /musics", status=500, after_handler=True, times=5)
        emu.faults.add("joplin", "POST /musics", status=429, retry_after=0.05, times=5)
        emu.faults.add("joplin", "GET /musics/*/mp3", status=503, times=20)
        async with emu.client(
            poll=PollPolicy(initial=0.1, max_interval=0.3, timeout=30),
            retry=FAST_RETRY,
            max_status_rps=5000,
        ) as kit:

            async def one(i: int) -> object:
                try:
                    return await kit.joplin.musics.create(
                        "electronic", "house", 2_000 + i, "calm:0.5,dynamic:0.5"
                    )
                except errors.ServerError as exc:
                    return exc

            created = await asyncio.gather(*(one(i) for i in range(500)))
            jobs = [j for j in created if not isinstance(j, errors.ServerError)]
            failures = [j for j in created if isinstance(j, errors.ServerError)]
            assert len(failures) == 5  # the 500s are raised, never retried
            done = [job async for job in kit.as_completed(jobs, timeout=30)]
            assert all(job.state is JobState.READY for job in done)
        # One creation per POST that reached the handler: 495 answered + 5 that got a 500.
        assert emu.joplin.musics_created == 500
        handled_posts = [r for r in emu.requests if r.path == "/musics" and r.status in (201, 500)]
        assert len(handled_posts) == 500
        assert len({job.id for job in jobs}) == 495


async def test_movements_without_energy_or_type_are_sent_and_read_back(
    emu: Emulator, kit: Client
) -> None:
    # Seed 000: the create example's movements 2 and 4 carry only "start" and "duration".
    structure = [
        Movement(0.0, 0.25, energy="dynamic"),
        Movement(0.25, 0.25),
        Movement(0.5, 0.25, movement="verse"),
        Movement(0.75, 0.25),
    ]
    job = await kit.joplin.musics.create("electronic", "house", 8_000, structure)
    assert emu.joplin.musics[job.id].request["structure"] == [
        {"start": 0.0, "duration": 0.25, "energy": "dynamic"},
        {"start": 0.25, "duration": 0.25},
        {"start": 0.5, "duration": 0.25, "movement": "verse"},
        {"start": 0.75, "duration": 0.25},
    ]
    music = await job.wait(timeout=5)
    assert [(m.energy, m.movement) for m in music.structure] == [
        (Energy.DYNAMIC, None),
        (None, None),
        (None, "verse"),
        (None, None),
    ]
    schema = await kit.joplin.musics.schema(job.id)
    assert schema.structure == music.structure


async def test_movement_with_both_energy_and_type_sends_nothing(emu: Emulator, kit: Client) -> None:
    with pytest.raises(errors.ValidationError) as info:
        await kit.joplin.musics.create(
            "electronic", "house", 5_000, [Movement(0, 1, energy="calm", movement="intro")]
        )
    assert info.value.field == "structure[0].energy"
    assert [r for r in emu.requests if r.provider == "joplin"] == []
