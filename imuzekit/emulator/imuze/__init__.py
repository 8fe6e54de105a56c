"""Emulated iMuze API v4 (``https://api.imuze.io/api/4``), mounted at ``/imuze/api/4``.

Shapes follow the provider's reference page (seed 001) field for field:

======  =========================================  ==============================================
POST    /tokens                                    ``{"token": {"email", "password"}}`` -> token
GET     /arrangements                              ``{"count", "response": [{"id", "name"}]}``
GET     /arrangements/{id}                         ``{"description", "image_url", "id", ...}``
POST    /songs                                     201, the create shape (``mp3``, no status)
GET     /songs[?page=&per_page=]                   ``{"count", "response": [song, ...]}``
GET     /songs/{id}                                one song with ``status`` and ``timeline_url``
GET     /files/songs/{id}/{key}.mp3                the audio (no auth: a signed CDN URL)
GET     /files/songs/{id}/{key}.json               the timeline
======  =========================================  ==============================================

Everything but ``/tokens`` and ``/files/...`` needs ``Authorization: <token>`` (``Token <t>`` and
``Bearer <t>`` work too). A song is ``"processing"`` until the emulator clock passes its creation
time plus its render time, then ``"ready"``; `ImuzeState.set_status` overrides that by hand.

The package follows moto's shape: `state` (the data and its rules, no aiohttp), `responses`
(the handlers) and `urls` (the route table `build_app` reads).
"""

from __future__ import annotations

from imuzekit.emulator._kit.timing import RenderSeconds

from .state import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    MUSICAL_MODES,
    Arrangement,
    ImuzeState,
    SongRecord,
    User,
)
from .urls import build_app, mounts

__all__ = [
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "MUSICAL_MODES",
    "Arrangement",
    "ImuzeState",
    "RenderSeconds",
    "SongRecord",
    "User",
    "build_app",
    "mounts",
]
