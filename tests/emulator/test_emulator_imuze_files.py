"""The emulated iMuze API v4's files: the mp3 (whole, HEAD, ranges, conditions) and the timeline."""

from __future__ import annotations

import hashlib
import io
import itertools
from typing import Any

import aiohttp
import pytest
from mutagen.mp3 import MP3

from imuzekit.emulator import Emulator
from imuzekit.emulator._mp3 import FRAME_DURATION

from .conftest import RENDER_SECONDS, api, call, create_song

# --- files ---------------------------------------------------------------------------------


@pytest.fixture
async def ready_song(emu: Emulator, http: aiohttp.ClientSession) -> dict[str, Any]:
    """A 7 s song whose render is complete."""
    created = await create_song(emu, http, desired_length=7)
    emu.clock.advance(RENDER_SECONDS)
    return created


async def test_mp3_is_404_until_ready(
    emu: Emulator, http: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    created = await create_song(emu, http)
    for url in (created["mp3"], created["timeline_url"]):
        status, body = await call(anon, "GET", url)
        assert (status, body) == (404, {"error": "Song is not ready", "code": 404})
    emu.clock.advance(RENDER_SECONDS)
    async with anon.get(created["mp3"]) as response:
        assert response.status == 200


async def test_mp3_download(
    emu: Emulator, anon: aiohttp.ClientSession, ready_song: dict[str, Any]
) -> None:
    async with anon.get(ready_song["mp3"]) as response:
        data = await response.read()
        assert response.status == 200
        assert response.content_type == "audio/mpeg"
        assert response.headers["Accept-Ranges"] == "bytes"
        assert response.headers["ETag"].startswith('"')
        assert int(response.headers["Content-Length"]) == len(data)
    assert data == emu.imuze.audio_bytes(ready_song["id"])
    assert hashlib.sha256(data).hexdigest() == emu.imuze.audio_sha256(ready_song["id"])
    assert abs(MP3(io.BytesIO(data)).info.length - 7) <= FRAME_DURATION


async def test_mp3_head(
    emu: Emulator, anon: aiohttp.ClientSession, ready_song: dict[str, Any]
) -> None:
    size = len(emu.imuze.audio_bytes(ready_song["id"]))
    async with anon.head(ready_song["mp3"]) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == size
        assert response.headers["Content-Type"] == "audio/mpeg"
        assert await response.read() == b""


@pytest.mark.parametrize(
    ("range_header", "span"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, None)),
        ("bytes=-50", (-50, None)),
        ("bytes=10-10", (10, 10)),
        ("bytes=1000-99999999", (1000, None)),
        ("bytes=-99999999", (0, None)),
    ],
)
async def test_mp3_ranges(
    emu: Emulator,
    anon: aiohttp.ClientSession,
    ready_song: dict[str, Any],
    range_header: str,
    span: tuple[int, int | None],
) -> None:
    data = emu.imuze.audio_bytes(ready_song["id"])
    size = len(data)
    first, last = span
    first = first % size
    last = size - 1 if last is None else last
    async with anon.get(ready_song["mp3"], headers={"Range": range_header}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert await response.read() == data[first : last + 1]


@pytest.mark.parametrize("range_header", ["bytes={size}-", "bytes={size}-{size}", "bytes=-0"])
async def test_mp3_unsatisfiable_range(
    emu: Emulator, anon: aiohttp.ClientSession, ready_song: dict[str, Any], range_header: str
) -> None:
    size = len(emu.imuze.audio_bytes(ready_song["id"]))
    headers = {"Range": range_header.format(size=size)}
    async with anon.get(ready_song["mp3"], headers=headers) as response:
        assert response.status == 416
        assert response.headers["Content-Range"] == f"bytes */{size}"
        assert (await response.json())["code"] == 416


@pytest.mark.parametrize(
    ("headers", "expected_status"),
    [
        ({"Range": "bytes=5-1"}, 200),
        ({"Range": "items=0-1"}, 200),
        ({"Range": "bytes=0-1,5-6"}, 200),
        ({"Range": "bytes=0-1", "If-Range": '"stale"'}, 200),
        ({"Range": "bytes=0-1", "If-Range": "{etag}"}, 206),
        ({"If-None-Match": "{etag}"}, 304),
    ],
)
async def test_mp3_conditional_and_ignored_ranges(
    emu: Emulator,
    anon: aiohttp.ClientSession,
    ready_song: dict[str, Any],
    headers: dict[str, str],
    expected_status: int,
) -> None:
    async with anon.head(ready_song["mp3"]) as response:
        etag = response.headers["ETag"]
    sent = {key: value.replace("{etag}", etag) for key, value in headers.items()}
    async with anon.get(ready_song["mp3"], headers=sent) as response:
        body = await response.read()
        assert response.status == expected_status
    if expected_status == 200:
        assert body == emu.imuze.audio_bytes(ready_song["id"])


async def test_mp3_wrong_key_or_id_is_404(
    emu: Emulator, anon: aiohttp.ClientSession, ready_song: dict[str, Any]
) -> None:
    song = emu.imuze.songs[ready_song["id"]]
    for path in (
        f"/files/songs/{song.id}/wrong-key.mp3",
        f"/files/songs/{song.id + 1}/{song.key}.mp3",
        f"/files/songs/abc/{song.key}.mp3",
        f"/files/songs/{song.id}/{song.key}.wav",
    ):
        status, body = await call(anon, "GET", api(emu, path))
        assert (status, body) == (404, {"error": "Not found", "code": 404})


async def test_timeline(
    emu: Emulator, anon: aiohttp.ClientSession, ready_song: dict[str, Any]
) -> None:
    status, body = await call(anon, "GET", ready_song["timeline_url"])
    assert status == 200
    assert body["song_id"] == ready_song["id"]
    sections = body["sections"]
    assert sections[0]["start"] == 0
    assert sections[-1]["end"] == 7
    for before, after in itertools.pairwise(sections):
        assert before["start"] < before["end"] == after["start"]


async def test_unknown_routes_are_json(emu: Emulator, http: aiohttp.ClientSession) -> None:
    for method, path in [("GET", "/nope"), ("GET", "/songs/1/extra"), ("GET", ""), ("PUT", "/x")]:
        status, body = await call(http, method, api(emu, path))
        assert (status, body) == (404, {"error": "Not found", "code": 404})
    status, body = await call(http, "DELETE", api(emu, "/songs"))
    assert (status, body["code"]) == (405, 405)
