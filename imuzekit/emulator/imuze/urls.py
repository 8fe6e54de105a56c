"""The emulated iMuze API's route table, and the application `build_app` makes of it."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from imuzekit.emulator._kit import routes
from imuzekit.emulator._kit.routes import Mount, Route

from . import responses as r
from .state import ImuzeState

__all__ = ["ROUTES", "build_app", "mounts"]

ROUTES: Final = (
    Route("POST", "/tokens", r.post_token),
    Route("GET", "/arrangements", r.list_arrangements),
    Route("GET", "/arrangements/{id}", r.show_arrangement),
    Route("POST", "/songs", r.create_song),
    Route("GET", "/songs", r.list_songs),
    Route("GET", "/songs/{id}", r.show_song),
    Route("GET", "/files/songs/{id}/{key}.mp3", r.song_mp3),
    Route("GET", "/files/songs/{id}/{key}.json", r.song_timeline),
    Route("GET", "/files/arrangements/{id}.png", r.arrangement_image),
)
"""Every route, relative to the provider's prefix (``/imuze/api/4``)."""


def build_app(state: ImuzeState) -> web.Application:
    """Build the iMuze v4 application over `state` (mounted by the emulator at its prefix)."""
    return routes.build_app(r.state_of, state, ROUTES)


def mounts(state: ImuzeState) -> list[Mount]:
    """The applications the emulator mounts for iMuze: the API at its prefix."""
    return [Mount(state.name, state.prefix, build_app(state))]
