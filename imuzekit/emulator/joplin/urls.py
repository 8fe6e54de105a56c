"""The emulated joplin engine's route table, and the application `build_app` makes of it."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from imuzekit.emulator._kit import routes
from imuzekit.emulator._kit.routes import Mount, Route

from . import responses as r
from .state import JoplinState

__all__ = ["ROUTES", "build_app", "mounts"]

ROUTES: Final = (
    Route("PUT", "/accounts/token", r.put_token),
    Route("GET", "/genres/", r.list_genres),
    Route("GET", "/genres", r.list_genres),
    Route("POST", "/musics", r.create_music),
    Route("GET", "/musics/{id}/schema", r.music_schema),
    Route("GET", "/musics/{id}/mp3", r.music_mp3),
)
"""Every route, relative to the provider's prefix (``/joplin``)."""


def build_app(state: JoplinState) -> web.Application:
    """Build the joplin application over `state` (mounted by the emulator at its prefix)."""
    return routes.build_app(r.state_of, state, ROUTES)


def mounts(state: JoplinState) -> list[Mount]:
    """The applications the emulator mounts for joplin: the engine at its prefix."""
    return [Mount(state.name, state.prefix, build_app(state))]
