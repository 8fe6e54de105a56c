"""Shared helpers of the emulated joplin tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import aiohttp

from imuzekit.emulator import Emulator

from .conftest import call

MUSIC: dict[str, Any] = {
    "genre": "electronic",
    "subgenre": "house",
    "duration_ms": 30_000,
    "structure": [
        {"start": 0.0, "duration": 0.2, "movement": "intro"},
        {"start": 0.2, "duration": 0.5, "energy": "dynamic"},
        {"start": 0.7, "duration": 0.3, "movement": "outro"},
    ],
}


def url(emu: Emulator, path: str) -> str:
    """Absolute URL of a joplin path (``/musics``)."""
    return emu.urls["joplin"] + path


async def create(emu: Emulator, session: aiohttp.ClientSession, **overrides: Any) -> dict[str, Any]:
    """Create a music over HTTP and return the 201 body."""
    status, body = await call(session, "POST", url(emu, "/musics"), json={**MUSIC, **overrides})
    assert status == 201, body
    assert isinstance(body, dict)
    return body


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def sign(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256-style JWT built by hand (what a forger with or without the key can make)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    digest = hashlib.sha512 if header.get("alg") == "HS512" else hashlib.sha256
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"
