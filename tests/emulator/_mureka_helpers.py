"""Shared helpers of the emulated Mureka tests."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import aiohttp

from imuzekit.emulator import Emulator
from imuzekit.emulator.mureka import DEFAULT_ACCOUNTS

from .conftest import call

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
