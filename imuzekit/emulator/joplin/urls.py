"""The emulated joplin engine's route table, and the application `build_app` makes of it."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from imuzekit.emulator._kit import routes
from imuzekit.emulator._kit.routes import Mount, Route

from . import responses as r
from .state import JoplinState

__all__ = ["MEDIA_ROUTES", "ROUTES", "build_app", "build_media_app", "mounts"]

ROUTES: Final = (
    Route("PUT", "/accounts/token", r.put_token),
    Route("GET", "/genres/", r.list_genres),
    Route("GET", "/genres", r.list_genres),
    Route("POST", "/musics", r.create_music),
    Route("GET", "/musics/{id}/schema", r.music_schema),
    Route("GET", "/musics/{id}/mp3", r.music_mp3),
)
"""Every route, relative to the provider's prefix (``/joplin``)."""

MEDIA_ROUTES: Final = (Route("GET", "/{id}/mp3", r.music_mp3),)
"""The mp3 again, relative to `JoplinState.media_prefix` (``/musics``): the create answer's
``mp3_uri``."""


def build_app(state: JoplinState) -> web.Application:
    """Build the joplin application over `state` (mounted by the emulator at its prefix)."""
    # Every joplin error body also carries its HTTP status (what iMuze's Ruby client reads).
    wrapped = [Route(route.method, route.path, r.with_status(route.handler)) for route in ROUTES]
    return routes.build_app(r.state_of, state, wrapped)


def build_media_app(state: JoplinState) -> web.Application:
    """Build the application serving `MEDIA_ROUTES` (mounted at `JoplinState.media_prefix`)."""
    wrapped = [
        Route(route.method, route.path, r.with_status(route.handler)) for route in MEDIA_ROUTES
    ]
    return routes.build_app(r.state_of, state, wrapped)


def mounts(state: JoplinState) -> list[Mount]:
    """The applications the emulator mounts for joplin: the engine at its prefix, and its mp3
    at ``/musics`` (logged, counted and matched by faults as ``GET /musics/<id>/mp3``, the
    engine's own route)."""
    return [
        Mount(state.name, state.prefix, build_app(state)),
        Mount(state.name, state.media_prefix, build_media_app(state), state.media_prefix),
    ]
