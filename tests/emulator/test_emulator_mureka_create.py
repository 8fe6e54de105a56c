"""The emulated Mureka (useapi.net): creation, generation slots, jobs and feeds over time.
Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from mutagen.mp3 import MP3

from imuzekit.emulator import Emulator
from imuzekit.emulator._mp3 import FRAME_DURATION
from imuzekit.emulator.mureka import (
    JOB_RETENTION_SECONDS,
    MODELS,
)

from ._mureka_helpers import (
    FIRST,
    ISO_MS,
    RECORD_KEYS,
    SECOND,
    create,
    job,
    listing,
    song_url,
    url,
)
from .conftest import RENDER_SECONDS, TIMEOUT, call

# --- creation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body", "title", "rows"),
    [
        (
            "create",
            {"prompt": "upbeat jazz about trains", "model": "O2"},
            "Upbeat Jazz About Trains",
            6,
        ),
        (
            "create-advanced",
            {
                "lyrics": "[Verse]\nFirst line\nSecond line\n\n[Chorus]\nThird line",
                "title": "Trains",
                "desc": "slow folk",
                "vocal_id": "123",
                "ref_id": "456",
                "motif_id": 789,
                "model": "V7.5",
            },
            "Trains",
            3,
        ),
        ("create-instrumental", {"prompt": "calm piano", "ref_id": "9"}, "Calm Piano", 0),
        ("create-instrumental", {"title": "Quiet"}, "Quiet", 0),
        ("create", {}, "Untitled", 6),
    ],
)
async def test_create_routes_answer_201_with_the_job_record(
    emu: Emulator,
    mhttp: aiohttp.ClientSession,
    route: str,
    body: dict[str, Any],
    title: str,
    rows: int,
) -> None:
    record = await create(emu, mhttp, route, account=SECOND, **body)
    assert list(record) == RECORD_KEYS
    assert re.fullmatch(rf"j\d{{14,}}m-u777-a{SECOND}-bot:mureka", record["jobid"])
    assert record["verb"] == f"music/{route}"
    assert (record["jobType"], record["status"]) == ("music", "created")
    assert ISO_MS.match(record["created"]) and record["updated"] == record["created"]
    created = datetime.fromisoformat(record["created"])
    assert abs(created.timestamp() - emu.clock.wall()) < 5
    assert record["request"] == {"account": SECOND, "async": True, **body}
    assert emu.mureka.creations == 1 and emu.mureka.running(SECOND) == 1

    emu.clock.advance(RENDER_SECONDS)
    status, done = await job(emu, mhttp, record["jobid"])
    assert status == 200 and done["status"] == "completed"
    songs = done["response"]["songs"]
    assert {song["title"] for song in songs} == {title}
    for song in songs:
        status, detail = await call(mhttp, "GET", song_url(emu, song["song_id"]))
        lyric_rows = [r["text"] for s in detail["song"]["lyrics"] for r in s["rows"]]
        assert len(lyric_rows) == rows
    if route == "create-advanced":
        assert lyric_rows == ["First line", "Second line", "Third line"]
        assert len(detail["song"]["lyrics"]) == 2  # one section per [tag]


@pytest.mark.parametrize("model", MODELS)
async def test_every_model_is_accepted(
    emu: Emulator, mhttp: aiohttp.ClientSession, model: str
) -> None:
    record = await create(emu, mhttp, "create", model=model)
    assert record["request"]["model"] == model


@pytest.mark.parametrize(
    ("route", "body", "error"),
    [
        ("create", {"prompt": "x" * 3001}, "prompt: must be at most 3000 characters, got 3001"),
        ("create", {"prompt": 5}, "prompt: must be a string"),
        ("create", {"model": "V10"}, f"model: must be one of {', '.join(MODELS)}"),
        ("create", {"async": "yes"}, "async: must be a boolean"),
        ("create-advanced", {}, "lyrics: is required"),
        ("create-advanced", {"lyrics": "  \n"}, "lyrics: is required"),
        ("create-advanced", {"lyrics": "x" * 5001}, "lyrics: must be at most 5000 characters"),
        ("create-advanced", {"lyrics": "x", "title": "t" * 51}, "title: must be at most 50"),
        ("create-advanced", {"lyrics": "x", "desc": "d" * 1001}, "desc: must be at most 1000"),
        ("create-advanced", {"lyrics": "x", "vocal_id": ["1"]}, "vocal_id: must be a string"),
        ("create-advanced", {"lyrics": "x", "motif_id": True}, "motif_id: must be a string"),
        ("create-instrumental", {"prompt": "p" * 1001}, "prompt: must be at most 1000"),
        ("create-instrumental", {"title": "t" * 51}, "title: must be at most 50"),
        ("create-instrumental", {"title": None, "ref_id": "r" * 129}, "ref_id: must be at most"),
    ],
)
async def test_create_validation_names_the_field(
    emu: Emulator, mhttp: aiohttp.ClientSession, route: str, body: dict[str, Any], error: str
) -> None:
    answer = await create(emu, mhttp, route, status=400, **body)
    assert answer["code"] == 400
    assert answer["error"].startswith(error), answer
    assert emu.mureka.creations == 0


async def test_limits_are_inclusive_and_problems_are_joined(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    await create(emu, mhttp, "create", prompt="x" * 3000)
    await create(emu, mhttp, "create-advanced", lyrics="l" * 5000, title="t" * 50, desc="d" * 1000)
    await create(emu, mhttp, "create-instrumental", prompt="p" * 1000, title="t" * 50)
    answer = await create(emu, mhttp, "create-advanced", status=400, title=7, model="x")
    assert answer["error"] == (
        "lyrics: is required; title: must be a string; model: must be one of "
        "V9, V8, O2, V7.6, V7.5, V7, O1, V6"
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "Request body is empty; expected a JSON object"),
        (b"{nope", "Request body is not valid JSON"),
        (b'["prompt"]', "Request body must be a JSON object"),
    ],
)
async def test_malformed_bodies_are_400(
    emu: Emulator, mhttp: aiohttp.ClientSession, data: bytes, error: str
) -> None:
    status, body = await call(mhttp, "POST", url(emu, "/music/create"), data=data)
    assert (status, body) == (400, {"error": error, "code": 400})


# --- generation slots ------------------------------------------------------------------------


async def test_ten_slots_per_account_then_429(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    for n in range(10):
        await create(emu, mhttp, prompt=f"song {n}")
    assert emu.mureka.running(FIRST) == 10
    busy = {"error": "All 10 generation slots are busy, retry later", "code": 429}
    async with mhttp.post(
        url(emu, "/music/create"), json={"account": FIRST, "async": True}
    ) as response:
        assert (response.status, await response.json()) == (429, busy)
        assert "Retry-After" not in response.headers
    emu.mureka.retry_after_on_429 = 2.5
    async with mhttp.post(
        url(emu, "/music/create-instrumental"), json={"account": FIRST, "async": True}
    ) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
    # Slots are per account.
    await create(emu, mhttp, account=SECOND)
    assert (emu.mureka.running(SECOND), emu.mureka.creations) == (1, 11)

    emu.clock.advance(RENDER_SECONDS - 0.001)
    await create(emu, mhttp, status=429)
    emu.clock.advance(0.001)
    assert emu.mureka.running(FIRST) == 0
    for _ in range(10):
        await create(emu, mhttp)
    await create(emu, mhttp, status=429)
    assert emu.mureka.max_running == {FIRST: 10, SECOND: 1}
    assert emu.mureka.creations == 21


async def test_max_parallel_is_configurable(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    emu.mureka.max_parallel = 2
    await create(emu, mhttp)
    await create(emu, mhttp)
    body = await create(emu, mhttp, status=429)
    assert body["error"] == "All 2 generation slots are busy, retry later"
    with pytest.raises(ValueError, match="max_parallel"):
        emu.mureka.max_parallel = 0


# --- jobs and feeds over time ----------------------------------------------------------------


async def test_job_lifecycle_feed_states_and_mp3s(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    record = await create(emu, mhttp, "create", prompt="a ballad")
    jobid = record["jobid"]
    status, running = await job(emu, mhttp, jobid)
    assert (status, running) == (200, record)

    (feed,) = (await listing(emu, mhttp))["list"]
    assert feed["state"] == 1  # queued
    assert all("mp3_url" not in song for song in feed["songs"])
    song_id = feed["songs"][0]["song_id"]
    status, detail = await call(mhttp, "GET", song_url(emu, song_id))
    assert status == 200 and "mp3_url" not in detail["song"]
    key = emu.mureka.songs[song_id].key
    async with mhttp.get(emu.mureka.cdn_url(emu.base_url, key, "mp3")) as response:
        assert response.status == 404  # not generated yet

    emu.clock.advance(RENDER_SECONDS / 2)
    assert (await listing(emu, mhttp))["list"][0]["state"] == 2  # generating
    assert (await job(emu, mhttp, jobid))[1]["status"] == "created"

    emu.clock.advance(RENDER_SECONDS / 2)
    status, done = await job(emu, mhttp, jobid)
    assert list(done) == [*RECORD_KEYS, "response"]
    assert done["status"] == "completed"
    updated = datetime.fromisoformat(done["updated"]) - datetime.fromisoformat(done["created"])
    assert updated.total_seconds() == pytest.approx(RENDER_SECONDS, abs=0.002)
    response = done["response"]
    assert list(response) == ["feed_id", "state", "songs", "is_accelerated"]
    assert (response["feed_id"], response["state"]) == (feed["feed_id"], 3)
    assert [song["version"] for song in response["songs"]] == ["1", "2"]
    assert (await listing(emu, mhttp))["list"][0] == response

    for song in response["songs"]:
        async with mhttp.get(song["mp3_url"]) as got:
            assert got.status == 200
            assert got.headers["Content-Type"] == "audio/mpeg"
            assert got.headers["Accept-Ranges"] == "bytes"
            data = await got.read()
        assert int(got.headers["Content-Length"]) == len(data)
        assert data == emu.mureka.audio_bytes(song["song_id"])
        length = MP3(io.BytesIO(data)).info.length
        assert abs(length - song["duration_milliseconds"] / 1000) <= FRAME_DURATION
        async with mhttp.head(song["mp3_url"]) as head:
            assert head.status == 200 and int(head.headers["Content-Length"]) == len(data)
        async with mhttp.get(song["mp3_url"], headers={"Range": "bytes=0-9"}) as part:
            assert part.status == 206
            assert part.headers["Content-Range"] == f"bytes 0-9/{len(data)}"
            assert await part.read() == data[:10]
    # A declared duration that is not a whole number of seconds is rendered exactly (to the
    # frame), not floored to the second.
    seeded = emu.mureka.songs[response["songs"][0]["song_id"]]
    seeded.duration_ms += 900
    length = MP3(io.BytesIO(emu.mureka.audio_bytes(seeded.song_id))).info.length
    assert abs(length - seeded.duration_ms / 1000) <= FRAME_DURATION


async def test_cdn_is_public_and_serves_covers_and_share_pages(
    emu: Emulator, mhttp: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    (feed,) = emu.mureka.add_feeds(FIRST, 1, prompt="x <b>y</b>")
    song_id = feed.songs[0].song_id
    _, detail = await call(mhttp, "GET", song_url(emu, song_id))
    async with anon.get(detail["song"]["mp3_url"]) as response:
        assert response.status == 200  # no Authorization: a signed-URL CDN
    for image in (detail["song"]["cover"], detail["user"]["profile_image"]):
        async with anon.get(image) as response:
            assert response.status == 200 and response.content_type == "image/png"
            assert (await response.read()).startswith(b"\x89PNG")
    async with anon.get(detail["song"]["share_link"]) as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
    assert "X &lt;B&gt;Y&lt;/B&gt;" in page and detail["song"]["mp3_url"] in page
    for missing in ("/nope.mp3", "/nope.png", "/share/nope"):
        status, body = await call(anon, "GET", f"{emu.base_url}/mureka/cdn{missing}")
        assert (status, body) == (404, {"error": "Not found", "code": 404})
    assert emu.count("mureka", "GET", "/cdn/*") == 7
    assert emu.count("mureka", "GET", "/cdn/{key}.png") == 3


async def test_failed_generations(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    emu.mureka.fail_next(2, error="Moderation failed", details="lyrics refused", code=412)
    failing = [await create(emu, mhttp, prompt=f"bad {n}") for n in range(2)]
    ok = await create(emu, mhttp, prompt="fine")
    page = await listing(emu, mhttp)
    assert page["total"] == 3 and [f["state"] for f in page["list"]] == [1, 1, 1]
    doomed = page["list"][2]["songs"][0]["song_id"]

    emu.clock.advance(RENDER_SECONDS)
    for record in failing:
        status, body = await job(emu, mhttp, record["jobid"])
        assert status == 200
        assert list(body) == [*RECORD_KEYS, "error", "errorDetails", "code"]
        assert body["status"] == "failed"
        assert (body["error"], body["errorDetails"], body["code"]) == (
            "Moderation failed",
            "lyrics refused",
            412,
        )
    assert (await job(emu, mhttp, ok["jobid"]))[1]["status"] == "completed"
    # A failed generation leaves no songs behind: its feed leaves the list.
    page = await listing(emu, mhttp)
    assert page["total"] == 1 and page["list"][0]["state"] == 3
    status, body = await call(mhttp, "GET", song_url(emu, doomed))
    assert (status, body) == (404, {"error": "The song has been deleted"})
    assert emu.mureka.job_status(failing[0]["jobid"]) == "failed"
    with pytest.raises(ValueError, match="positive"):
        emu.mureka.fail_next(0)


async def test_get_jobs_lists_only_running_jobs(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    emu.mureka.add_account("55555555555555")
    idle = {
        "total": 0,
        "music": 0,
        "tts": 0,
        "accounts": {},
        "availableAccounts": [FIRST, SECOND, "55555555555555"],
    }
    assert await call(mhttp, "GET", url(emu, "/jobs")) == (200, idle)
    early = await create(emu, mhttp)
    emu.clock.advance(RENDER_SECONDS - 1)
    late = [await create(emu, mhttp, account=SECOND) for _ in range(2)]
    emu.clock.advance(0.5)
    status, body = await call(mhttp, "GET", url(emu, "/jobs"))
    assert status == 200
    assert body == {
        "total": 3,
        "music": 3,
        "tts": 0,
        "accounts": {
            FIRST: {
                "total": 1,
                "music": 1,
                "tts": 0,
                "jobs": [{"jobid": early["jobid"], "verb": "music/create", "elapsed": "00:04"}],
            },
            SECOND: {
                "total": 2,
                "music": 2,
                "tts": 0,
                "jobs": [
                    {"jobid": record["jobid"], "verb": "music/create", "elapsed": "00:00"}
                    for record in late
                ],
            },
        },
        "availableAccounts": [FIRST, SECOND, "55555555555555"],
    }
    emu.clock.advance(0.5)  # the first job is done
    _, body = await call(mhttp, "GET", url(emu, "/jobs/"))
    assert (body["total"], list(body["accounts"])) == (2, [SECOND])
    emu.clock.advance(RENDER_SECONDS)
    assert await call(mhttp, "GET", url(emu, "/jobs")) == (200, idle)


async def test_elapsed_counts_minutes(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    emu.mureka.render_seconds = 45 * 60.0
    await create(emu, mhttp)
    emu.clock.advance(12 * 60 + 34.9)
    _, body = await call(mhttp, "GET", url(emu, "/jobs"))
    assert body["accounts"][FIRST]["jobs"][0]["elapsed"] == "12:34"


async def test_jobs_are_kept_seven_days(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    record = await create(emu, mhttp)
    gone = {"error": "Job not found", "code": 404}
    assert await job(emu, mhttp, "j1m-u777-a1-bot:mureka") == (404, gone)
    emu.clock.advance(JOB_RETENTION_SECONDS - 1)
    assert (await job(emu, mhttp, record["jobid"]))[1]["status"] == "completed"
    emu.clock.advance(2)
    assert await job(emu, mhttp, record["jobid"]) == (404, gone)
    # The record is forgotten, the music is not.
    await create(emu, mhttp)
    assert record["jobid"] not in emu.mureka.jobs
    assert (await listing(emu, mhttp))["total"] == 2


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (402, "Insufficient credits / subscription required"),
        (412, "Insufficient credits / subscription required"),
        (
            596,
            "Mureka account session expired, please refresh it at "
            "https://useapi.net/docs/start-here/setup-mureka",
        ),
    ],
)
async def test_account_errors(
    emu: Emulator, mhttp: aiohttp.ClientSession, status: int, message: str
) -> None:
    record = await create(emu, mhttp)
    (feed,) = emu.mureka.add_feeds(FIRST, 1)
    emu.mureka.set_account_error(FIRST, status)
    expected = (status, {"error": message, "code": status})
    for route in ("create", "create-advanced", "create-instrumental"):
        payload = {"account": FIRST, "lyrics": "x", "async": True}
        assert await call(mhttp, "POST", url(emu, f"/music/{route}"), json=payload) == expected
    assert await call(mhttp, "GET", url(emu, f"/music/?account={FIRST}")) == expected
    assert await call(mhttp, "GET", song_url(emu, feed.songs[0].song_id)) == expected
    assert await job(emu, mhttp, record["jobid"]) == expected
    # Validation still comes first; other accounts and the jobs overview are unaffected.
    assert (await create(emu, mhttp, model="nope", status=400))["code"] == 400
    await create(emu, mhttp, account=SECOND)
    assert (await call(mhttp, "GET", url(emu, "/jobs")))[0] == 200
    assert emu.mureka.creations == 2

    emu.mureka.set_account_error(FIRST, None)
    await create(emu, mhttp)
    with pytest.raises(ValueError, match="status"):
        emu.mureka.set_account_error(FIRST, 500)


async def test_accounts_lists_every_account_with_its_error(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    # useapi.net's script calls GET /accounts first and skips the accounts in error.
    status, body = await call(mhttp, "GET", url(emu, "/accounts"))
    assert status == 200
    assert list(body) == [FIRST, SECOND]
    assert body[FIRST] == {"account": FIRST, "email": emu.mureka.accounts[FIRST].email}
    emu.mureka.set_account_error(SECOND, 596)
    status, body = await call(mhttp, "GET", url(emu, "/accounts/"))
    assert "error" not in body[FIRST]
    assert body[SECOND]["error"].startswith("Mureka account session expired")
    async with aiohttp.ClientSession(timeout=TIMEOUT) as anon:
        assert (await call(anon, "GET", url(emu, "/accounts")))[0] == 401
