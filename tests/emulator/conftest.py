"""Fixtures for the emulator's own tests: a frozen-clock emulator and raw aiohttp sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from imuzekit.emulator import Clock, Emulator
from imuzekit.emulator.musescore import MuseScoreState

RENDER_SECONDS = 5.0
# A broken emulator must fail a test quickly, not hang it on a response that never ends.
TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator whose clock only moves through `emu.clock.advance`."""
    async with Emulator(render_seconds=RENDER_SECONDS, clock=Clock(frozen=True)) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A session sending the demo user's pre-issued token."""
    token = emu.credentials["imuze"].token
    assert token
    async with aiohttp.ClientSession(headers={"Authorization": token}, timeout=TIMEOUT) as session:
        yield session


@pytest.fixture
async def anon() -> AsyncIterator[aiohttp.ClientSession]:
    """A session without credentials."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        yield session


def api(emu: Emulator, path: str) -> str:
    """Absolute URL of an iMuze path (``/songs``)."""
    return emu.urls["imuze"] + path


async def call(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    """Send a request and return (status, parsed JSON body)."""
    async with session.request(method, url, **kwargs) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


SONG = {"title": "Morning Run", "arrangement_id": 1, "tags": ["upbeat"], "desired_length": 3}


async def create_song(
    emu: Emulator, session: aiohttp.ClientSession, **overrides: Any
) -> dict[str, Any]:
    """Create a song over HTTP and return the 201 body."""
    status, body = await call(session, "POST", api(emu, "/songs"), json={**SONG, **overrides})
    assert status == 201, body
    assert isinstance(body, dict)
    return body


@pytest.fixture
def ms(emu: Emulator) -> MuseScoreState:
    """The emulated MuseScore.com state."""
    return emu.musescore


@pytest.fixture
async def jhttp(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A session sending the demo user's pre-issued JWT, raw, as the reference documents."""
    token = emu.credentials["joplin"].token
    assert token
    async with aiohttp.ClientSession(headers={"Authorization": token}, timeout=TIMEOUT) as session:
        yield session


@pytest.fixture
async def mhttp(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A session sending the useapi.net token as a bearer token."""
    token = emu.credentials["mureka"].token
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=TIMEOUT) as session:
        yield session
