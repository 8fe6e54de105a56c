"""The emulated Mureka's route tables (the useapi.net API and the CDN) and their applications."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from imuzekit.emulator._kit import routes
from imuzekit.emulator._kit.routes import Mount, Route

from . import responses as r
from .courier import courier_context
from .state import MurekaState

__all__ = ["CDN_ROUTES", "ROUTES", "build_app", "build_cdn_app", "mounts"]

ROUTES: Final = (
    Route("GET", "/accounts", r.list_accounts),
    Route("GET", "/accounts/", r.list_accounts),
    Route("GET", "/music/", r.list_music),
    Route("GET", "/music", r.list_music),
    Route("POST", "/music/create", r.create_simple),
    Route("POST", "/music/create-advanced", r.create_advanced),
    Route("POST", "/music/create-instrumental", r.create_instrumental),
    Route("GET", "/music/{song_id}", r.show_song),
    Route("GET", "/jobs", r.running_jobs),
    Route("GET", "/jobs/", r.running_jobs),
    Route("GET", "/jobs/{jobid}", r.show_job),
)
"""The API's routes, relative to the provider's prefix (``/mureka/v1/mureka``)."""

CDN_ROUTES: Final = (
    Route("GET", "/{key}.mp3", r.cdn_mp3),
    Route("GET", "/{key}.png", r.cdn_image),
    Route("GET", "/share/{share_key}", r.share_page),
)
"""The CDN's routes, relative to `MurekaState.cdn_prefix` (``/mureka/cdn``)."""


def build_app(state: MurekaState) -> web.Application:
    """Build the useapi.net Mureka application over `state` (mounted at its prefix).

    While it serves, a `Courier` POSTs the creations' callbacks to their ``replyUrl``.
    """
    app = routes.build_app(r.state_of, state, ROUTES)
    app.cleanup_ctx.append(courier_context(state))
    return app


def build_cdn_app(state: MurekaState) -> web.Application:
    """Build the CDN application: MP3s, covers and share pages, no auth (signed-URL style)."""
    return routes.build_app(r.state_of, state, CDN_ROUTES)


def mounts(state: MurekaState) -> list[Mount]:
    """The API at its prefix, and the CDN at `MurekaState.cdn_prefix`, logged as ``/cdn/...``."""
    return [
        Mount(state.name, state.prefix, build_app(state)),
        Mount(state.name, state.cdn_prefix, build_cdn_app(state), "/cdn"),
    ]
