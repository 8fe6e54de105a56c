"""The emulated Mureka (useapi.net): synchronous creation; the state API, faults and the
log. Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from imuzekit.emulator import Clock, Emulator
from imuzekit.emulator.mureka import (
    MurekaError,
    MurekaState,
)

from ._mureka_helpers import (
    FIRST,
    SECOND,
    SEED_SONG_KEYS,
    create,
    job,
    listing,
    song_url,
    url,
)
from .conftest import RENDER_SECONDS, TIMEOUT, call

# --- synchronous creation --------------------------------------------------------------------


async def _started(emu: Emulator, task: asyncio.Task[Any]) -> None:
    """Wait (real time, briefly) until the server accepted the request's generation."""
    before = emu.mureka.creations
    for _ in range(400):
        await asyncio.sleep(0.005)
        if emu.mureka.creations > before or task.done():
            return


async def test_sync_create_answers_once_generated(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    payload = {"account": FIRST, "lyrics": "one line"}
    task = asyncio.create_task(
        call(mhttp, "POST", url(emu, "/music/create-advanced"), json=payload)
    )
    await _started(emu, task)
    await asyncio.sleep(0.05)  # a few of the handler's polls: it keeps waiting
    assert not task.done()
    assert emu.mureka.running(FIRST) == 1
    emu.clock.advance(RENDER_SECONDS)
    status, body = await asyncio.wait_for(task, 2)
    assert status == 200
    assert list(body) == ["jobid", "feed_id", "state", "songs", "is_accelerated"]
    assert body["state"] == 3 and len(body["songs"]) == 2
    assert all(song["mp3_url"] for song in body["songs"])
    status, record = await job(emu, mhttp, body["jobid"])
    assert record["response"]["feed_id"] == body["feed_id"]
    assert record["request"] == {**payload, "account": FIRST}


async def test_sync_create_failure_and_timeout(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    emu.mureka.fail_next(error="Generation failed", details="model crashed", code=500)
    payload = {"account": FIRST, "prompt": "x", "async": False}
    task = asyncio.create_task(call(mhttp, "POST", url(emu, "/music/create"), json=payload))
    await _started(emu, task)
    emu.clock.advance(RENDER_SECONDS)
    status, body = await asyncio.wait_for(task, 2)
    assert status == 500
    assert body == {
        "jobid": body["jobid"],
        "error": "Generation failed",
        "errorDetails": "model crashed",
        "code": 500,
    }

    emu.mureka.sync_timeout = 0.05
    status, body = await call(mhttp, "POST", url(emu, "/music/create"), json=payload)
    assert status == 504 and body["code"] == 504
    assert body["jobid"] in emu.mureka.jobs and body["jobid"] in body["error"]


async def test_sync_create_with_a_running_clock() -> None:
    async with Emulator(render_seconds=0.05) as emu:
        headers = {"Authorization": f"Bearer {emu.mureka.token}"}
        async with aiohttp.ClientSession(headers=headers, timeout=TIMEOUT) as session:
            status, body = await call(
                session, "POST", url(emu, "/music/create"), json={"account": SECOND}
            )
        assert status == 200 and body["state"] == 3


# --- state API, faults and the log -----------------------------------------------------------


def test_state_api_without_http() -> None:
    state = MurekaState(clock=Clock(frozen=True), render_seconds=(1.0, 3.0), seed=4)
    job = state.create("create-instrumental", {"title": "Direct"}, account=SECOND)
    assert 1.0 <= job.render_seconds <= 3.0
    assert state.job_status(job) == "created" and state.running(SECOND) == 1
    assert [s.title for s in job.feed.songs] == ["Direct", "Direct"]
    with pytest.raises(MurekaError) as info:
        state.create("create", {"model": "x"}, account=FIRST)
    assert (info.value.status, info.value.message) == (400, info.value.args[0])
    with pytest.raises(ValueError, match="route"):
        state.create("remix", {}, account=FIRST)
    state.clock.advance(3)
    assert state.job_status(job.jobid) == "completed" and state.running(SECOND) == 0
    # Same seed, same draws.
    again = MurekaState(clock=Clock(frozen=True), render_seconds=(1.0, 3.0), seed=4)
    twin = again.create("create-instrumental", {"title": "Direct"}, account=SECOND)
    assert twin.render_seconds == job.render_seconds
    assert [s.duration_ms for s in twin.feed.songs] == [s.duration_ms for s in job.feed.songs]


async def test_faults_apply_to_mureka_routes(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    fault = emu.faults.add("mureka", "POST /music/create*", status=503, times=3)
    for route in ("create", "create-advanced", "create-instrumental"):
        status, body = await call(
            mhttp, "POST", url(emu, f"/music/{route}"), json={"account": FIRST, "lyrics": "x"}
        )
        assert (status, body) == (503, {"error": "injected fault", "code": 503})
    assert fault.hits == 3 and emu.mureka.creations == 0

    emu.faults.add("mureka", "POST /music/create", status=500, after_handler=True)
    assert (await create(emu, mhttp, status=500))["code"] == 500
    assert emu.mureka.creations == 1  # the generation started; only the answer was lost

    emu.faults.add("mureka", "GET /jobs", status=429, retry_after=1)
    async with mhttp.get(url(emu, "/jobs")) as response:
        assert (response.status, response.headers["Retry-After"]) == (429, "1")

    (feed,) = emu.mureka.add_feeds(FIRST, 1)
    emu.faults.add("mureka", "GET /cdn/*.mp3", truncate=100)
    mp3 = emu.mureka.cdn_url(emu.base_url, feed.songs[0].key, "mp3")
    with pytest.raises(aiohttp.ClientPayloadError):
        async with mhttp.get(mp3) as response:
            await response.read()
    emu.faults.add("mureka", "GET /music/*", status=502)
    status, _ = await call(mhttp, "GET", song_url(emu, feed.songs[0].song_id))
    assert status == 502

    logged = [(e.method, e.route, e.status) for e in emu.requests]
    assert logged[-4:] == [
        ("POST", "/music/create", 500),
        ("GET", "/jobs", 429),
        ("GET", "/cdn/{key}.mp3", 200),
        ("GET", "/music/{song_id}", 502),
    ]
    assert emu.requests[-1].path == f"/music/{feed.songs[0].song_id}"
    assert emu.count("mureka", "POST", "/music/create*") == 4
    assert emu.count("mureka") == 7


async def test_unknown_routes_are_json(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    assert await call(mhttp, "GET", url(emu, "/nothing")) == (
        404,
        {"error": "Not found", "code": 404},
    )
    status, body = await call(mhttp, "DELETE", url(emu, "/music/create"))
    assert (status, body["code"]) == (405, 405)


async def test_model_fields_add_what_only_the_seeds_model_lists(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    # Seeds 002/003's TypeScript model: wave_list, is_played?, is_liked?, video? {video_url,
    # video_cover_url, video_id}; lyrics[] {seg_type, user_input_tag, start?, end?, rows?}.
    (feed,) = emu.mureka.add_feeds(FIRST, 1, prompt="rock anthem for the night")
    emu.mureka.model_fields = True
    (listed,) = (await listing(emu, mhttp, expand="true"))["list"]
    for song, record in zip(listed["songs"], feed.songs, strict=True):
        extra = ["wave_list", "is_played", "is_liked", "lyrics", "video"]
        assert list(song) == [*SEED_SONG_KEYS[:-1], *extra, "share_link"]
        assert len(song["wave_list"]) == 48 and all(0 < v <= 1 for v in song["wave_list"])
        assert (song["is_played"], song["is_liked"]) == (False, False)
        assert list(song["video"]) == ["video_url", "video_cover_url", "video_id"]
        assert song["video"]["video_id"] == int(record.song_id.rsplit(":", 1)[-1])
        verse, chorus = song["lyrics"]
        for section, kind, tag in ((verse, 1, "[Verse]"), (chorus, 2, "[Chorus]")):
            assert list(section) == ["seg_type", "user_input_tag", "start", "end", "rows"]
            assert (section["seg_type"], section["user_input_tag"]) == (kind, tag)
            assert section["start"] == section["rows"][0]["start"]
            assert section["end"] == section["rows"][-1]["end"]
    status, detail = await call(mhttp, "GET", song_url(emu, feed.songs[0].song_id))
    assert status == 200 and detail["song"]["wave_list"] == listed["songs"][0]["wave_list"]
    assert detail["song"]["video"] == listed["songs"][0]["video"]
    emu.mureka.model_fields = False
    (plain,) = (await listing(emu, mhttp))["list"]
    assert all(list(song) == SEED_SONG_KEYS for song in plain["songs"])
