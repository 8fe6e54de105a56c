"""The emulated Mureka through useapi.net: shapes from seeds 002/003, the useapi.net token and
accounts, paging, song details, the three creation routes, generation slots, jobs, account
errors, the CDN, faults and counters. Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from mutagen.mp3 import MP3

from imuzekit.emulator import Clock, Emulator
from imuzekit.emulator._mp3 import FRAME_DURATION
from imuzekit.emulator.mureka import (
    DEFAULT_ACCOUNTS,
    JOB_RETENTION_SECONDS,
    MODELS,
    MurekaError,
    MurekaState,
)

from .conftest import RENDER_SECONDS, TIMEOUT, call

FIRST, SECOND = DEFAULT_ACCOUNTS
SEED_SONG_KEYS = [
    "song_id", "title", "version", "duration_milliseconds", "generate_at", "genres", "moods",
    "mp3_url", "share_key", "machine_audit_state", "credit_type", "cover", "share_link",
]  # fmt: skip
RECORD_KEYS = ["jobid", "verb", "jobType", "status", "created", "updated", "request"]
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SONG_ID = re.compile(r"^user:777-mureka:(\d+)-song:\d+$")


def url(emu: Emulator, path: str) -> str:
    """Absolute URL of a useapi.net Mureka path (``/music/``)."""
    return emu.urls["mureka"] + path


def song_url(emu: Emulator, song_id: str) -> str:
    """``GET /music/{song_id}`` with the id URL-encoded, as a client must send it."""
    return url(emu, "/music/" + quote(song_id, safe=""))


@pytest.fixture
async def mhttp(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A session sending the useapi.net token as a bearer token."""
    token = emu.credentials["mureka"].token
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=TIMEOUT) as session:
        yield session


async def create(
    emu: Emulator,
    session: aiohttp.ClientSession,
    route: str = "create",
    *,
    status: int = 201,
    **body: Any,
) -> dict[str, Any]:
    """POST a creation (async, on the first account unless told) and return the body."""
    payload = {"account": FIRST, "async": True, **body}
    got, answer = await call(session, "POST", url(emu, f"/music/{route}"), json=payload)
    assert got == status, answer
    assert isinstance(answer, dict)
    return answer


async def job(emu: Emulator, session: aiohttp.ClientSession, jobid: str) -> tuple[int, Any]:
    """``GET /jobs/{jobid}`` (id URL-encoded)."""
    return await call(session, "GET", url(emu, "/jobs/" + quote(jobid, safe="")))


async def listing(
    emu: Emulator, session: aiohttp.ClientSession, account: str = FIRST, **params: str
) -> dict[str, Any]:
    """One ``GET /music/`` page."""
    status, body = await call(
        session, "GET", url(emu, "/music/"), params={"account": account, **params}
    )
    assert status == 200, body
    assert isinstance(body, dict)
    return body


# --- wiring ----------------------------------------------------------------------------------


async def test_mounted_with_a_token_and_two_accounts(emu: Emulator) -> None:
    assert emu.urls["mureka"] == f"http://127.0.0.1:{emu.port}/mureka/v1/mureka"
    creds = emu.credentials["mureka"]
    assert creds.token == emu.mureka.token
    assert creds.token is not None and creds.token.startswith("user:777-")
    assert creds.extra == {"accounts": f"{FIRST},{SECOND}"}
    assert list(emu.mureka.accounts) == [FIRST, SECOND]
    assert all(a.isdigit() for a in emu.mureka.accounts)
    banner = emu.describe()
    assert f"mureka     {emu.urls['mureka']}" in banner
    assert f"token={creds.token} accounts={FIRST},{SECOND}" in banner
    emu.mureka.add_account("55555555555555")
    assert emu.credentials["mureka"].extra["accounts"] == f"{FIRST},{SECOND},55555555555555"
    assert emu.mureka.max_running["55555555555555"] == 0
    for bad in ("abc", "", "1" * 19, FIRST):
        with pytest.raises(ValueError, match="account"):
            emu.mureka.add_account(bad)


async def test_client_is_configured_for_mureka(emu: Emulator) -> None:
    async with emu.client() as kit:
        assert "mureka" in repr(kit)
        config = kit._configs["mureka"]
        assert config.token == emu.mureka.token
        assert config.accounts == (FIRST, SECOND)
        assert config.base_url == emu.urls["mureka"]
    async with emu.client(mureka=None) as kit:
        assert "mureka" not in repr(kit)


# --- authentication and accounts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/music/"),
        ("GET", "/music/user:777-mureka:1-song:1"),
        ("POST", "/music/create"),
        ("POST", "/music/create-advanced"),
        ("POST", "/music/create-instrumental"),
        ("GET", "/jobs"),
        ("GET", "/jobs/j1m-u777-a1-bot:mureka"),
    ],
)
async def test_every_route_needs_the_token(
    emu: Emulator, anon: aiohttp.ClientSession, method: str, path: str
) -> None:
    token = emu.mureka.token
    for headers in (
        {},
        {"Authorization": token},  # no scheme
        {"Authorization": f"Token {token}"},
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer é"},
    ):
        status, body = await call(anon, method, url(emu, path), headers=headers, json={})
        assert (status, body) == (401, {"error": "Unauthorized", "code": 401}), headers
    assert emu.mureka.creations == 0


async def test_reissued_token_replaces_the_old_one(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    old = emu.mureka.token
    new = emu.mureka.reissue_token()
    assert new != old and emu.credentials["mureka"].token == new
    for token, expected in ((old, 401), (new, 200)):
        headers = {"Authorization": f"bearer {token}"}  # the scheme is case-insensitive
        status, _ = await call(anon, "GET", url(emu, "/jobs"), headers=headers)
        assert status == expected


async def test_account_is_required_with_several_accounts(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    error = "Parameter account is required when multiple accounts configured"
    expected = {"error": error, "code": 400}
    assert await call(mhttp, "GET", url(emu, "/music/")) == (400, expected)
    assert await call(mhttp, "GET", url(emu, "/music/?account=")) == (400, expected)
    status, body = await call(mhttp, "POST", url(emu, "/music/create"), json={"async": True})
    assert (status, body) == (400, expected)
    assert emu.mureka.creations == 0


async def test_unknown_account_is_named(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    status, body = await call(mhttp, "GET", url(emu, "/music/?account=424242"))
    assert (status, body) == (400, {"error": "Account 424242 is not configured", "code": 400})
    payload: dict[str, Any] = {"account": "31337", "async": True}
    status, body = await call(mhttp, "POST", url(emu, "/music/create"), json=payload)
    assert (status, body) == (400, {"error": "Account 31337 is not configured", "code": 400})
    payload["account"] = 31337
    status, body = await call(mhttp, "POST", url(emu, "/music/create"), json=payload)
    assert (status, body) == (400, {"error": "account: must be a string", "code": 400})


async def test_account_is_optional_with_a_single_account(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    emu.mureka.remove_account(SECOND)
    assert emu.credentials["mureka"].extra["accounts"] == FIRST
    status, body = await call(
        mhttp, "POST", url(emu, "/music/create"), json={"prompt": "x", "async": True}
    )
    assert status == 201
    assert body["request"] == {"prompt": "x", "async": True, "account": FIRST}
    assert f"-a{FIRST}-" in body["jobid"]
    page = await listing(emu, mhttp, account="")
    assert page["total"] == 1
    emu.mureka.remove_account(FIRST)
    status, body = await call(mhttp, "GET", url(emu, "/music/"))
    assert (status, body) == (400, {"error": "No Mureka accounts configured", "code": 400})


# --- music list ------------------------------------------------------------------------------


async def test_list_pages_newest_first_with_last_id(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    feeds = emu.mureka.add_feeds(FIRST, 65)
    emu.mureka.add_feeds(SECOND, 3)  # another account's feeds never show up
    ids = [feed.feed_id for feed in feeds][::-1]
    pages = [await listing(emu, mhttp)]
    while pages[-1]["more"]:
        pages.append(await listing(emu, mhttp, last_id=str(pages[-1]["last_id"])))
    assert [len(page["list"]) for page in pages] == [20, 20, 20, 5]
    assert [page["more"] for page in pages] == [True, True, True, False]
    assert {page["total"] for page in pages} == {65}
    seen = [feed["feed_id"] for page in pages for feed in page["list"]]
    assert seen == ids
    assert [page["last_id"] for page in pages] == [ids[19], ids[39], ids[59], ids[64]]
    assert list(pages[0]) == ["list", "last_id", "more", "total"]
    # The route also answers without the trailing slash, as the SDK may send it.
    status, body = await call(mhttp, "GET", url(emu, f"/music?account={FIRST}"))
    assert (status, body) == (200, pages[0])
    assert emu.count("mureka", "GET", "/music*") == 5


async def test_list_feed_and_song_shapes_follow_seed_002(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    emu.mureka.add_feeds(FIRST, 1, prompt="latin love song")
    (feed,) = (await listing(emu, mhttp))["list"]
    assert list(feed) == ["feed_id", "state", "songs", "is_accelerated"]
    assert (feed["state"], feed["is_accelerated"]) == (3, True)
    assert isinstance(feed["feed_id"], int)
    first, second = feed["songs"]
    assert (first["version"], second["version"]) == ("1", "2")
    for song in (first, second):
        assert list(song) == SEED_SONG_KEYS
        match = SONG_ID.match(song["song_id"])
        assert match is not None and match.group(1) == FIRST
        assert song["title"] == "Latin Love Song"
        assert 20_000 <= song["duration_milliseconds"] <= 40_000
        assert abs(song["generate_at"] - emu.clock.wall()) < 5
        assert song["genres"][0] == "latin" and len(song["genres"]) == 2
        assert len(song["moods"]) == 3
        assert song["mp3_url"].startswith(f"{emu.base_url}/mureka/cdn/")
        assert song["mp3_url"].endswith(".mp3")
        assert song["cover"].endswith(".png")
        assert song["share_link"] == f"{emu.base_url}/mureka/cdn/share/{song['share_key']}"
        assert (song["machine_audit_state"], song["credit_type"]) == (1, 1)
    assert first["song_id"] != second["song_id"]


async def test_expand_adds_lyrics(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    emu.mureka.add_feeds(FIRST, 2)
    plain = await listing(emu, mhttp, expand="false")
    assert all("lyrics" not in song for feed in plain["list"] for song in feed["songs"])
    expanded = await listing(emu, mhttp, expand="true")
    for feed in expanded["list"]:
        for song in feed["songs"]:
            assert list(song) == [*SEED_SONG_KEYS[:-1], "lyrics", "share_link"]
            rows = [row for section in song["lyrics"] for row in section["rows"]]
            assert len(rows) == 6 and all(row["text"] for row in rows)
            assert all(0 < r["start"] < r["end"] < song["duration_milliseconds"] for r in rows)
    status, body = await call(mhttp, "GET", url(emu, f"/music/?account={FIRST}&expand=maybe"))
    assert (status, body) == (400, {"error": "expand: must be true or false", "code": 400})


async def test_empty_list_and_bad_last_id(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    assert await listing(emu, mhttp) == {"list": [], "more": False, "total": 0}
    feeds = emu.mureka.add_feeds(FIRST, 2)
    # A cursor older than every feed gives an empty last page, without a cursor of its own.
    page = await listing(emu, mhttp, last_id=str(feeds[0].feed_id))
    assert page == {"list": [], "more": False, "total": 2}
    for bad in ("x", "-1", "1.5", "9" * 21):
        status, body = await call(
            mhttp, "GET", url(emu, "/music/"), params={"account": FIRST, "last_id": bad}
        )
        assert (status, body) == (400, {"error": "last_id: must be an integer", "code": 400})


# --- song details ----------------------------------------------------------------------------


async def test_song_details_follow_seed_003(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    (feed,) = emu.mureka.add_feeds(SECOND, 1, prompt="rock anthem for the night")
    song = feed.songs[1]
    status, body = await call(mhttp, "GET", song_url(emu, song.song_id))
    assert status == 200
    assert list(body) == ["song", "user", "feed_id"]
    assert body["feed_id"] == feed.feed_id
    detail = body["song"]
    assert list(detail) == [*SEED_SONG_KEYS[:-1], "lyrics", "video", "share_link"]
    assert (detail["song_id"], detail["version"], detail["video"]) == (song.song_id, "2", {})
    verse, chorus = detail["lyrics"]
    assert [row["text"] for row in verse["rows"]] == [
        "Rock anthem for the night",
        "Every step a story to be told",
        "Hold the moment, never let it go",
        "Sing it louder than the radio",
    ]
    # The chorus names the subject, not the prompt's dangling "for".
    assert [row["text"] for row in chorus["rows"]] == [
        "Oh, rock anthem",
        "We sing it all night long",
    ]
    starts = [row["start"] for section in detail["lyrics"] for row in section["rows"]]
    assert starts == sorted(starts)
    user = body["user"]
    assert list(user) == ["id", "user_id", "stage_name", "profile_image"]
    assert (user["id"], user["user_id"]) == (SECOND, int(SECOND))
    assert user["stage_name"] and user["profile_image"].endswith(".png")
    # The colons may also be sent raw: the server decodes the path either way.
    status, raw = await call(mhttp, "GET", url(emu, f"/music/{song.song_id}"))
    assert (status, raw) == (200, body)
    assert emu.count("mureka", "GET", "/music/{song_id}") == 2


async def test_deleted_and_unknown_songs_are_404(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    emu.mureka.add_feeds(FIRST, 1)
    (feed,) = emu.mureka.add_feeds(FIRST, 1)
    deleted = {"error": "The song has been deleted"}
    emu.mureka.delete_song(feed.songs[0].song_id)
    assert await call(mhttp, "GET", song_url(emu, feed.songs[0].song_id)) == (404, deleted)
    for unknown in ("user:777-mureka:1-song:1", "nope", feed.songs[0].song_id + "0"):
        assert await call(mhttp, "GET", song_url(emu, unknown)) == (404, deleted)
    # The feed stays listed with its other song until that one is deleted too.
    page = await listing(emu, mhttp)
    assert page["total"] == 2
    assert [s["song_id"] for s in page["list"][0]["songs"]] == [feed.songs[1].song_id]
    emu.mureka.delete_song(feed.songs[1].song_id)
    page = await listing(emu, mhttp)
    assert page["total"] == 1 and page["list"][0]["feed_id"] != feed.feed_id
    async with mhttp.get(emu.mureka.cdn_url(emu.base_url, feed.songs[1].key, "mp3")) as response:
        assert response.status == 404
    with pytest.raises(KeyError):
        emu.mureka.delete_song("user:777-mureka:1-song:1")


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
