"""Fault injection: every kind of fault, matching, counting, and what a raw client sees."""

from __future__ import annotations

import random
import time
from typing import Any

import aiohttp
import pytest

from imuzekit.emulator import Emulator, Faults
from imuzekit.emulator._faults import garbage_bytes

from .conftest import RENDER_SECONDS, SONG, api, call, create_song


@pytest.fixture
async def mp3_url(emu: Emulator, http: aiohttp.ClientSession) -> str:
    """URL of a ready 5 s song."""
    created = await create_song(emu, http, desired_length=5)
    emu.clock.advance(RENDER_SECONDS)
    url = created["mp3"]
    assert isinstance(url, str)
    return url


def _audio(emu: Emulator) -> bytes:
    return emu.imuze.audio_bytes(next(iter(emu.imuze.songs)))


async def test_status_fault_counts_down(emu: Emulator, http: aiohttp.ClientSession) -> None:
    fault = emu.faults.add("imuze", "GET /arrangements", status=503, times=2)
    results = [await call(http, "GET", api(emu, "/arrangements")) for _ in range(3)]
    assert [status for status, _ in results] == [503, 503, 200]
    assert results[0][1] == {"error": "injected fault", "code": 503}
    assert fault.hits == 2
    assert fault.remaining == 0
    assert not fault.active
    assert [entry.status for entry in emu.requests] == [503, 503, 200]


async def test_status_fault_skips_the_handler(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add("imuze", "POST /songs", status=500)
    status, _ = await call(http, "POST", api(emu, "/songs"), json=SONG)
    assert status == 500
    assert emu.imuze.songs_created == 0


async def test_after_handler_status_keeps_the_side_effect(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    fault = emu.faults.add("imuze", "POST /songs", status=500, after_handler=True)
    status, body = await call(http, "POST", api(emu, "/songs"), json=SONG)
    assert (status, body) == (500, {"error": "injected fault", "code": 500})
    assert emu.imuze.songs_created == 1
    assert fault.hits == 1
    assert [entry.status for entry in emu.requests] == [500]


async def test_after_handler_reset_keeps_the_side_effect(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.add("imuze", "POST /songs", reset=True, after_handler=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, "POST", api(emu, "/songs"), json=SONG)
    assert emu.imuze.songs_created == 1


async def test_retry_after_headers(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add("imuze", "GET /songs", status=429, retry_after=1.25)
    async with http.get(api(emu, "/songs")) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"
        assert response.headers["retry-after-ms"] == "1250"
        assert await response.json() == {"error": "injected fault", "code": 429}


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ({"message": "slow down"}, "application/json", b'{"message":"slow down"}'),
        ("<html>Bad gateway</html>", "text/plain", b"<html>Bad gateway</html>"),
        (b"\x00\x01", "application/octet-stream", b"\x00\x01"),
    ],
)
async def test_custom_body_and_headers(
    emu: Emulator, http: aiohttp.ClientSession, body: Any, content_type: str, expected: bytes
) -> None:
    emu.faults.add("imuze", "GET /songs", status=502, body=body, headers={"X-Request-Id": "r-1"})
    async with http.get(api(emu, "/songs")) as response:
        assert response.status == 502
        assert response.content_type == content_type
        assert response.headers["X-Request-Id"] == "r-1"
        assert await response.read() == expected


async def test_html_body_with_explicit_content_type(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.add(
        "imuze",
        "GET /songs",
        status=502,
        body="<h1>502</h1>",
        headers={"Content-Type": "text/html"},
    )
    async with http.get(api(emu, "/songs")) as response:
        assert response.content_type == "text/html"


async def test_times_none_is_forever_and_clear(emu: Emulator, http: aiohttp.ClientSession) -> None:
    fault = emu.faults.add("imuze", "* /arrangements*", status=500, times=None)
    for path in ["/arrangements", "/arrangements/1"] * 3:
        status, _ = await call(http, "GET", api(emu, path))
        assert status == 500
    assert fault.hits == 6
    assert fault.remaining is None
    assert list(emu.faults) == [fault]
    emu.faults.clear()
    assert len(emu.faults) == 0
    status, _ = await call(http, "GET", api(emu, "/arrangements"))
    assert status == 200


async def test_first_active_match_applies(emu: Emulator, http: aiohttp.ClientSession) -> None:
    first = emu.faults.add("imuze", "GET /songs*", status=500, times=1)
    second = emu.faults.add("imuze", "* /songs", status=503, times=1)
    statuses = [(await call(http, "GET", api(emu, "/songs")))[0] for _ in range(3)]
    assert statuses == [500, 503, 200]
    assert (first.hits, second.hits) == (1, 1)


@pytest.mark.parametrize(
    ("provider", "pattern", "method", "path", "hit"),
    [
        ("imuze", "GET /songs/*", "GET", "/songs/1001", True),
        ("imuze", "GET /songs/*", "GET", "/songs", False),
        ("imuze", "GET /songs/*", "POST", "/songs", False),
        ("imuze", "get /songs", "GET", "/songs", True),
        ("imuze", "* /songs", "POST", "/songs", True),
        ("imuze", "/songs", "DELETE", "/songs", True),
        ("*", "GET /files/*", "GET", "/files/songs/1/k.mp3", True),
        ("mureka", "GET /songs", "GET", "/songs", False),
        ("imuze", "GET /Songs", "GET", "/songs", False),
    ],
)
def test_matching(provider: str, pattern: str, method: str, path: str, hit: bool) -> None:
    faults = Faults()
    fault = faults.add(provider, pattern, status=500)
    assert (faults.take("imuze", method, path) is fault) is hit
    assert fault.hits == int(hit)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": ""}, "pattern"),
        ({"pattern": "GET songs"}, "glob"),
        ({"status": 99}, "status"),
        ({"status": 600}, "status"),
        ({"times": 0}, "times"),
        ({"body": "x"}, "status"),
        ({"delay": -1}, "delay"),
        ({"truncate": -5}, "truncate"),
        ({"after_handler": True}, "after_handler"),
    ],
)
def test_add_rejects_nonsense(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"provider": "imuze", "pattern": "GET /songs", **kwargs}
    with pytest.raises(ValueError, match=message):
        Faults().add(**arguments)


class _StuckRandom(random.Random):
    """Random bytes that happen to look like audio."""

    def __init__(self, prefix: bytes) -> None:
        super().__init__(0)
        self.prefix = prefix

    def randbytes(self, n: int) -> bytes:
        return (self.prefix + bytes(n))[:n]


@pytest.mark.parametrize("prefix", [b"\xff\xfb\x90", b"ID3\x03"])
def test_garbage_never_looks_like_audio(prefix: bytes) -> None:
    data = garbage_bytes(64, _StuckRandom(prefix))
    assert len(data) == 64
    assert data[0] != 0xFF
    assert not data.startswith(b"ID3")
    assert garbage_bytes(0, _StuckRandom(prefix)) == b""


def test_unknown_provider_is_rejected() -> None:
    emu = Emulator()
    with pytest.raises(ValueError, match="unknown provider 'imuz'"):
        emu.faults.add("imuz", "GET /songs", status=500)
    assert emu.faults.add("*", "GET /songs", status=500).provider == "*"


async def test_reset_on_post_surfaces_as_disconnection(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    fault = emu.faults.add("imuze", "POST /songs", reset=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, "POST", api(emu, "/songs"), json=SONG)
    assert fault.hits == 1
    assert emu.imuze.songs_created == 0
    assert [(entry.path, entry.status) for entry in emu.requests] == [("/songs", 0)]
    await create_song(emu, http)  # the next request goes through on a fresh connection


async def test_reset_once_on_get_is_absorbed_by_aiohttp(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # aiohttp retries an idempotent request once after a disconnection, so a single reset on
    # a GET never reaches the caller: it takes two to see one.
    once = emu.faults.add("imuze", "GET /arrangements", reset=True)
    status, _ = await call(http, "GET", api(emu, "/arrangements"))
    assert status == 200
    assert once.hits == 1
    assert [entry.status for entry in emu.requests] == [0, 200]
    twice = emu.faults.add("imuze", "GET /arrangements", reset=True, times=2)
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, "GET", api(emu, "/arrangements"))
    assert twice.hits == 2


async def test_delay_then_normal_response(emu: Emulator, http: aiohttp.ClientSession) -> None:
    fault = emu.faults.add("imuze", "GET /songs", delay=0.15)
    started = time.monotonic()
    status, body = await call(http, "GET", api(emu, "/songs"))
    elapsed = time.monotonic() - started
    assert (status, body) == (200, {"count": 0, "response": []})
    assert elapsed >= 0.15
    assert fault.hits == 1
    started = time.monotonic()
    await call(http, "GET", api(emu, "/songs"))
    assert time.monotonic() - started < 0.15


async def test_delay_combines_with_status(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add("imuze", "GET /songs", delay=0.05, status=504)
    started = time.monotonic()
    status, _ = await call(http, "GET", api(emu, "/songs"))
    assert status == 504
    assert time.monotonic() - started >= 0.05


async def test_delay_trips_a_client_timeout(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add("imuze", "GET /songs", delay=0.3)
    with pytest.raises(TimeoutError):
        await call(http, "GET", api(emu, "/songs"), timeout=aiohttp.ClientTimeout(total=0.05))


async def test_truncate_is_a_payload_error(
    emu: Emulator, anon: aiohttp.ClientSession, mp3_url: str
) -> None:
    size = len(_audio(emu))
    fault = emu.faults.add("imuze", "GET /files/*", truncate=1000)
    async with anon.get(mp3_url) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == size
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert fault.hits == 1
    async with anon.get(mp3_url) as response:
        assert await response.read() == _audio(emu)


async def test_truncate_delivers_the_prefix(
    emu: Emulator, anon: aiohttp.ClientSession, mp3_url: str
) -> None:
    emu.faults.add("imuze", "GET /files/*", truncate=1000)
    received = bytearray()

    async def drain(response: aiohttp.ClientResponse) -> None:
        async for chunk in response.content.iter_any():
            received.extend(chunk)

    async with anon.get(mp3_url) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await drain(response)
    assert bytes(received) == _audio(emu)[:1000]


async def test_content_length_larger_than_body(
    emu: Emulator, anon: aiohttp.ClientSession, mp3_url: str
) -> None:
    size = len(_audio(emu))
    emu.faults.add("imuze", "GET /files/*", content_length=size + 500)
    async with anon.get(mp3_url) as response:
        assert int(response.headers["Content-Length"]) == size + 500
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_content_length_smaller_than_body(
    emu: Emulator, anon: aiohttp.ClientSession, mp3_url: str
) -> None:
    emu.faults.add("imuze", "GET /files/*", content_length=100)
    async with anon.get(mp3_url) as response:
        assert response.headers["Content-Length"] == "100"
        assert await response.read() == _audio(emu)[:100]
    async with anon.get(mp3_url) as response:  # the connection was closed, not poisoned
        assert await response.read() == _audio(emu)


async def test_garbage_body(emu: Emulator, anon: aiohttp.ClientSession, mp3_url: str) -> None:
    real = _audio(emu)
    emu.faults.add("imuze", "GET /files/*", garbage=True, times=3)
    for _ in range(3):
        async with anon.get(mp3_url) as response:
            data = await response.read()
            assert response.status == 200
            assert response.content_type == "audio/mpeg"
        assert len(data) == len(real)
        assert data != real
        assert data[0] != 0xFF
        assert not data.startswith(b"ID3")


async def test_ignore_range(emu: Emulator, anon: aiohttp.ClientSession, mp3_url: str) -> None:
    fault = emu.faults.add("imuze", "GET /files/*", ignore_range=True)
    async with anon.get(mp3_url, headers={"Range": "bytes=100-"}) as response:
        assert response.status == 200
        assert "Content-Range" not in response.headers
        assert await response.read() == _audio(emu)
    assert fault.hits == 1
    async with anon.get(mp3_url, headers={"Range": "bytes=100-"}) as response:
        assert response.status == 206


async def test_headers_on_a_real_response(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add("imuze", "GET /songs", headers={"X-RateLimit-Remaining": "0"})
    async with http.get(api(emu, "/songs")) as response:
        assert response.status == 200
        assert response.headers["X-RateLimit-Remaining"] == "0"


async def test_faults_are_per_provider_path(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add("imuze", "GET /songs/*", status=500, times=None)
    created = await create_song(emu, http)
    status, _ = await call(http, "GET", api(emu, "/songs"))
    assert status == 200
    status, _ = await call(http, "GET", api(emu, f"/songs/{created['id']}"))
    assert status == 500
