"""Emulated iMuze music engine, "joplin" (``http://joplin.imuze.io``), mounted at ``/joplin``.

Shapes follow the provider's reference page (seed 000) field for field:

======  ======================  ===============================================================
PUT     /accounts/token         ``{"email", "password"}`` -> ``{"token": "<JWT>"}``
GET     /genres/ (and /genres)  ``{"genres": [{"name", "subgenres": [...]}, ...]}``, no auth
POST    /musics                 201, the music schema (below) and ``mp3_uri``
GET     /musics/{id}/schema     the music schema
GET     /musics/{id}/mp3        202 ``{"id"}`` + ``Retry-After`` while rendering, then audio
======  ======================  ===============================================================

The schema is ``{"id", "genre", "subgenre", "music_engine_version", "bpm", "measure",
"duration_ms", "structure": [{"start", "duration", "energy" | "movement"}, ...]}``; a movement
may also carry neither (seed 000's own create example), never both. The create answer adds
``"mp3_uri": "//<host>/joplin/musics/<id>/mp3"`` (scheme-relative: iMuze's Ruby client plays
``"http:" + mp3_uri``), and every error body is ``{"error", "code", "status"}`` (the client reads
``status``).

Tokens are real HS256 JWTs (signed and checked with the standard library) with a per-emulator random
secret (`JoplinState.secret`), with ``sub``, ``email``, ``iat``, ``exp`` and ``jti`` claims in
Unix seconds from the emulator clock's `Clock.wall`, so
``emu.clock.advance(emu.joplin.token_ttl)`` expires them. Protected routes take the raw JWT in
``Authorization`` (``Bearer <jwt>`` works too).

A music renders like an iMuze song: its MP3 is served once the emulator clock passes its creation
time plus its render time; `JoplinState.set_ready` overrides that by hand.

The package follows moto's shape: `models` (catalogue, records, composition rules) and `state`
(the data), both without aiohttp, `responses` (the handlers) and `urls` (the route table
`build_app` reads).
"""

from __future__ import annotations

from .models import (
    ENERGIES,
    ENGINE_VERSION,
    MAX_DURATION_MS,
    MIN_DURATION_MS,
    MOVEMENTS,
    Genre,
    InvalidMusic,
    MusicRecord,
    Subgenre,
    music_problems,
)
from .state import DEMO_EMAIL, DEMO_PASSWORD, JoplinState
from .urls import build_app, mounts

__all__ = [
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "ENERGIES",
    "ENGINE_VERSION",
    "MAX_DURATION_MS",
    "MIN_DURATION_MS",
    "MOVEMENTS",
    "Genre",
    "InvalidMusic",
    "JoplinState",
    "MusicRecord",
    "Subgenre",
    "build_app",
    "mounts",
    "music_problems",
]
