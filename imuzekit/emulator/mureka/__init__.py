"""Emulated Mureka through useapi.net (``https://api.useapi.net/v1/mureka``), mounted at
``/mureka/v1/mureka``, plus its CDN at ``/mureka/cdn``.

Shapes follow the reference pages (seeds 002 and 003) field for field, and useapi.net's
creation and job endpoints:

======  ==============================  ==================================================
GET     /accounts                       ``{"<account>": {"account", "email", "error"?}}``
GET     /music/?account&last_id&expand  ``{"list": [feed], "last_id", "more", "total"}``
GET     /music/{song_id}                ``{"song", "user", "feed_id"}``
POST    /music/create                   201 job record (``"async": true``), else 200 feed
POST    /music/create-advanced          the same, ``lyrics`` required
POST    /music/create-instrumental      the same, no lyrics
GET     /jobs/{jobid}                   the job record
GET     /jobs                           the running jobs, per account
GET     /mureka/cdn/{key}.mp3 / .png    audio and images, no auth (a CDN)
GET     /mureka/cdn/share/{share_key}   a song's share page (HTML)
======  ==============================  ==================================================

One useapi.net token (``Authorization: Bearer <token>``) drives several Mureka accounts, picked
with ``account`` (optional when exactly one is configured). A generation takes the emulator's
``render_seconds`` on its clock and yields a feed of two songs; the feed is listed from the
start with ``state`` 1 (queued) then 2 (generating), and 3 once complete. Each account runs at
most `MurekaState.max_parallel` generations at a time; one more answers 429.

Everything is derived from the clock when read (no background tasks), so a frozen clock and
``emu.clock.advance`` make every transition exact.

The package follows moto's shape: `models` (constants and records), `rules` (what a creation
may hold, the lyrics it writes), `state` (the data) and `views` (the JSON shapes), all without
aiohttp, then `responses` (the handlers) and `urls` (the route tables `build_app` reads).
"""

from __future__ import annotations

from .models import (
    ACCOUNT_ERRORS,
    CREATE_ROUTES,
    DEFAULT_ACCOUNTS,
    DEFAULT_MODEL,
    FEED_COMPLETE,
    FEED_GENERATING,
    FEED_QUEUED,
    JOB_RETENTION_SECONDS,
    MODELS,
    PAGE_SIZE,
    USEAPI_USER_ID,
    Failure,
    MurekaAccount,
    MurekaError,
    MurekaFeed,
    MurekaJob,
    MurekaSong,
)
from .state import MurekaState
from .urls import build_app, build_cdn_app, mounts

__all__ = [
    "ACCOUNT_ERRORS",
    "CREATE_ROUTES",
    "DEFAULT_ACCOUNTS",
    "DEFAULT_MODEL",
    "FEED_COMPLETE",
    "FEED_GENERATING",
    "FEED_QUEUED",
    "JOB_RETENTION_SECONDS",
    "MODELS",
    "PAGE_SIZE",
    "USEAPI_USER_ID",
    "Failure",
    "MurekaAccount",
    "MurekaError",
    "MurekaFeed",
    "MurekaJob",
    "MurekaSong",
    "MurekaState",
    "build_app",
    "build_cdn_app",
    "mounts",
]
