"""The emulated iMuze music engine (joplin): rendering and the MP3; faults, log, counters.
Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

import aiohttp
import pytest
from mutagen.mp3 import MP3

from imuzekit.emulator import Clock, Emulator
from imuzekit.emulator._mp3 import FRAME_DURATION
from imuzekit.emulator.joplin import DEMO_EMAIL, DEMO_PASSWORD

from ._joplin_helpers import (
    MUSIC,
    create,
    url,
)
from .conftest import RENDER_SECONDS, call

# --- rendering and the MP3 -----------------------------------------------------------------


async def _mp3_rendering(
    session: aiohttp.ClientSession, emu: Emulator, music_id: str, **kwargs: Any
) -> None:
    async with session.get(url(emu, f"/musics/{music_id}/mp3"), **kwargs) as response:
        assert response.status == 202
        assert response.headers["Retry-After"] == "1"
        assert response.content_type == "application/json"
        assert await response.json() == {"id": music_id}


async def test_the_rendering_hint_is_settable_and_never_negative(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    music_id = (await create(emu, jhttp))["id"]
    emu.joplin.retry_after_seconds = 0
    async with jhttp.get(url(emu, f"/musics/{music_id}/mp3")) as response:
        assert (response.status, response.headers["Retry-After"]) == (202, "0")
    with pytest.raises(ValueError, match="retry_after_seconds"):
        emu.joplin.retry_after_seconds = -1
    assert emu.joplin.retry_after_seconds == 0


async def test_mp3_is_202_while_rendering_then_the_audio(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    created = await create(emu, jhttp, duration_ms=12_345, crop=True, fadeout_ms=2500)
    music_id = created["id"]
    mp3_url = url(emu, f"/musics/{music_id}/mp3")
    await _mp3_rendering(jhttp, emu, music_id)
    await _mp3_rendering(jhttp, emu, music_id, headers={"Range": "bytes=0-0"})
    async with jhttp.head(mp3_url) as response:
        assert response.status == 202
        assert response.headers["Retry-After"] == "1"
    emu.clock.advance(RENDER_SECONDS - 0.01)
    await _mp3_rendering(jhttp, emu, music_id)
    emu.clock.advance(0.01)
    async with jhttp.get(mp3_url) as response:
        data = await response.read()
        assert response.status == 200
        assert response.content_type == "audio/mpeg"
        assert int(response.headers["Content-Length"]) == len(data)
        assert response.headers["Accept-Ranges"] == "bytes"
        etag = response.headers["ETag"]
        assert etag.startswith('"')
    assert data == emu.joplin.audio_bytes(music_id)
    assert hashlib.sha256(data).hexdigest() == emu.joplin.audio_sha256(music_id)
    mp3 = MP3(io.BytesIO(data))
    assert abs(mp3.info.length - 12.345) <= FRAME_DURATION
    assert mp3.tags["TXXX:fadeout_ms"].text == ["2500"]
    assert mp3.tags["TBPM"].text == [str(created["bpm"])]
    async with jhttp.get(mp3_url, headers={"If-None-Match": etag}) as response:
        assert response.status == 304


async def test_mp3_lasts_the_rounded_up_duration(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    created = await create(emu, jhttp, genre="classical", subgenre="waltz", duration_ms=7_001)
    assert created["duration_ms"] > 7_001
    emu.clock.advance(RENDER_SECONDS)
    async with jhttp.get(url(emu, f"/musics/{created['id']}/mp3")) as response:
        data = await response.read()
    mp3 = MP3(io.BytesIO(data))
    assert abs(mp3.info.length - created["duration_ms"] / 1000) <= FRAME_DURATION
    assert mp3.tags["TXXX:fadeout_ms"].text == ["0"]


async def test_range_probe_head_and_ranges_on_a_ready_music(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    created = await create(emu, jhttp)
    emu.clock.advance(RENDER_SECONDS)
    mp3_url = url(emu, f"/musics/{created['id']}/mp3")
    data = emu.joplin.audio_bytes(created["id"])
    size = len(data)
    async with jhttp.get(mp3_url, headers={"Range": "bytes=0-0"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 0-0/{size}"
        assert await response.read() == b"I"  # the ID3 tag's first byte
    async with jhttp.get(mp3_url, headers={"Range": "bytes=100-"}) as response:
        assert response.status == 206
        assert await response.read() == data[100:]
    async with jhttp.get(mp3_url, headers={"Range": f"bytes={size}-"}) as response:
        assert response.status == 416
        assert response.headers["Content-Range"] == f"bytes */{size}"
    async with jhttp.head(mp3_url) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == size
        assert response.headers["Content-Type"] == "audio/mpeg"
        assert await response.read() == b""


async def test_set_ready_overrides_the_clock(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    created = await create(emu, jhttp)
    music_id = created["id"]
    mp3_url = url(emu, f"/musics/{music_id}/mp3")
    emu.joplin.set_ready(music_id, True)
    async with jhttp.get(mp3_url) as response:
        assert response.status == 200
    emu.joplin.set_ready(music_id, False)
    emu.clock.advance(RENDER_SECONDS * 10)
    await _mp3_rendering(jhttp, emu, music_id)
    assert not emu.joplin.is_ready(music_id)
    emu.joplin.set_ready(music_id, None)
    assert emu.joplin.is_ready(music_id)
    async with jhttp.get(mp3_url) as response:
        assert response.status == 200
    with pytest.raises(KeyError):
        emu.joplin.set_ready("nope", True)


async def test_render_seconds_range_is_seeded() -> None:
    def draws(seed: int) -> list[tuple[str, float]]:
        state = Emulator(render_seconds=(1.0, 3.0), seed=seed).joplin
        musics = [state.create_music(MUSIC) for _ in range(20)]
        return [(music.id, music.render_seconds) for music in musics]

    first = draws(7)
    assert all(1.0 <= seconds <= 3.0 for _, seconds in first)
    assert len({seconds for _, seconds in first}) == 20
    assert len({music_id for music_id, _ in first}) == 20
    assert draws(7) == first
    assert draws(8) != first


# --- faults, log, counters -----------------------------------------------------------------


async def test_faults_apply_to_joplin_routes(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    fault = emu.faults.add("joplin", "POST /musics", status=503, retry_after=1.5)
    async with jhttp.post(url(emu, "/musics"), json=MUSIC) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "2"
        assert await response.json() == {"error": "injected fault", "code": 503}
    assert (fault.hits, emu.joplin.musics_created) == (1, 0)

    emu.faults.add("joplin", "POST /musics", status=500, after_handler=True)
    status, _ = await call(jhttp, "POST", url(emu, "/musics"), json=MUSIC)
    assert (status, emu.joplin.musics_created) == (500, 1)  # the work is done, the answer lost

    music_id = next(iter(emu.joplin.musics))
    emu.clock.advance(RENDER_SECONDS)
    emu.faults.add("joplin", "GET /musics/*/mp3", truncate=100)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with jhttp.get(url(emu, f"/musics/{music_id}/mp3")) as response:
            await response.read()

    emu.faults.add("joplin", "PUT /accounts/token", reset=True, times=2)
    creds = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(jhttp, "PUT", url(emu, "/accounts/token"), json=creds)
    # Faults are per provider: the same path on iMuze is untouched.
    emu.faults.add("imuze", "GET /genres/", status=500, times=None)
    status, _ = await call(jhttp, "GET", url(emu, "/genres/"))
    assert status == 200


async def test_log_and_counters(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    created = await create(emu, jhttp)
    music_id = created["id"]
    for _ in range(3):
        await call(jhttp, "GET", url(emu, f"/musics/{music_id}/mp3"))
    await call(jhttp, "GET", url(emu, f"/musics/{music_id}/schema"))
    await call(jhttp, "GET", url(emu, "/genres/"))
    await call(jhttp, "GET", url(emu, "/genres"))
    creds = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    await call(jhttp, "PUT", url(emu, "/accounts/token"), json=creds)
    async with jhttp.head(url(emu, f"/musics/{music_id}/mp3")):
        pass
    assert [(e.provider, e.method, e.path, e.status) for e in emu.requests][:2] == [
        ("joplin", "POST", "/musics", 201),
        ("joplin", "GET", f"/musics/{music_id}/mp3", 202),
    ]
    assert emu.requests[1].route == "/musics/{id}/mp3"
    assert emu.count("joplin") == 9
    assert emu.count("joplin", "POST", "/musics") == 1
    assert emu.count("joplin", "GET", "/musics/*/mp3") == 3
    assert emu.count("joplin", "HEAD", "/musics/{id}/mp3") == 1
    assert emu.count("joplin", "GET", "/musics/*/schema") == 1
    assert emu.count("joplin", path_glob="/genres*") == 2
    assert emu.count("joplin", "PUT", "/accounts/token") == 1
    assert emu.count("imuze") == 0
    assert emu.joplin.musics_created == 1


async def test_unknown_routes_are_json(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    for path in ("/nope", "/musics/x", "", "/musics/x/wav", "/accounts"):
        status, body = await call(jhttp, "GET", url(emu, path))
        assert (status, body) == (404, {"error": "Not found", "code": 404})
    for method, path in [("GET", "/musics"), ("DELETE", "/musics"), ("POST", "/genres/")]:
        status, body = await call(jhttp, method, url(emu, path))
        assert (status, body["code"]) == (405, 405)


async def test_many_concurrent_jobs(anon: aiohttp.ClientSession) -> None:
    async with Emulator(render_seconds=(0.0, 5.0), clock=Clock(frozen=True)) as emu:
        headers = {"Authorization": emu.credentials["joplin"].token or ""}

        async def one(n: int) -> dict[str, Any]:
            music = {**MUSIC, "duration_ms": 1000 + 10 * n}
            status, body = await call(
                anon, "POST", url(emu, "/musics"), json=music, headers=headers
            )
            assert status == 201
            return dict(body)

        created = await asyncio.gather(*(one(n) for n in range(200)))
        assert len({body["id"] for body in created}) == 200
        emu.clock.advance(5)

        async def probe(music_id: str) -> int:
            async with anon.get(
                url(emu, f"/musics/{music_id}/mp3"),
                headers={**headers, "Range": "bytes=0-0"},
            ) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(probe(body["id"]) for body in created))
        assert set(statuses) == {206}
        assert emu.joplin.musics_created == 200
        assert emu.count("joplin") == 400


async def test_movement_with_neither_energy_nor_type_is_accepted(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    # Seed 000's create example: movements 2 and 4 have only "start" and "duration".
    structure = [
        {"start": 0.0, "duration": 0.5, "energy": "dynamic"},
        {"start": 0.5, "duration": 0.5},
    ]
    body = await create(emu, jhttp, structure=structure)
    assert body["structure"] == structure
    status, schema = await call(jhttp, "GET", url(emu, f"/musics/{body['id']}/schema"))
    assert (status, schema["structure"]) == (200, structure)


async def test_movement_with_neither_plays_at_the_neutral_tempo(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    # A movement without energy or type weighs like "medium" on the tempo.
    plain = await create(emu, jhttp, structure=[{"start": 0, "duration": 1}])
    medium = await create(emu, jhttp, structure=[{"start": 0, "duration": 1, "energy": "medium"}])
    assert plain["bpm"] == medium["bpm"]
