"""The emulated MuseScore.com's route tables (REST, OAuth, site, static) and their applications."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from imuzekit.emulator._kit import routes
from imuzekit.emulator._kit.routes import Mount, Route

from . import oauth, site
from . import responses as r
from .oauth import state_of
from .state import MuseScoreState

__all__ = [
    "OAUTH_ROUTES",
    "ROUTES",
    "SITE_ROUTES",
    "STATIC_ROUTES",
    "build_app",
    "build_oauth_app",
    "build_site_app",
    "build_static_app",
    "mounts",
]

_FMT = r"{fmt:(\.[A-Za-z]{1,8})?}"
_ID = r"{id:[0-9]{1,18}}"
_USER = r"{user:[A-Za-z0-9_-]{1,64}}"

ROUTES: Final = (
    Route("GET", f"/score{_FMT}", r.rest(r.search)),
    Route("POST", f"/score{_FMT}", r.rest(r.upload, require_signature=True)),
    Route("GET", f"/score/{_ID}{_FMT}", r.rest(r.get_score)),
    Route("DELETE", f"/score/{_ID}{_FMT}", r.rest(r.delete_score, require_signature=True)),
    Route("GET", f"/score/{_ID}/time{_FMT}", r.rest(r.score_time)),
    Route("GET", f"/score/{_ID}/space{_FMT}", r.rest(r.score_space)),
    # The reference's headings also name these orders of the segments.
    Route("GET", f"/score/time/{_ID}{_FMT}", r.rest(r.score_time)),
    Route("GET", f"/score/space/{_ID}{_FMT}", r.rest(r.score_space)),
    Route("GET", f"/me{_FMT}", r.rest(r.me, require_signature=True)),
    Route("GET", f"/user/{_USER}/score{_FMT}", r.rest(r.user_scores)),
    Route("GET", f"/user/{_USER}{_FMT}", r.rest(r.get_user)),
    Route("GET", f"/resolve{_FMT}", r.rest(r.resolve)),
)
"""The REST routes, relative to the provider's prefix (``/musescore/services/rest``)."""

OAUTH_ROUTES: Final = (
    Route("GET", "/request_token", oauth.request_token),
    Route("POST", "/request_token", oauth.request_token),
    Route("GET", "/access_token", oauth.access_token),
    Route("POST", "/access_token", oauth.access_token),
)
"""The OAuth endpoints, relative to `MuseScoreState.oauth_prefix`, GET or POST."""

SITE_ROUTES: Final = (
    # Fixed paths first: aiohttp matches in registration order, and /{user} would shadow them.
    Route("GET", "/oauth/authorize", site.authorize),
    Route("GET", "/oembed/endpoint", site.oembed),
    Route("GET", f"/node/{_ID}/embed", site.embed),
    Route("GET", f"/score/{_ID}", site.score_by_id),
    Route("GET", f"/user/{_ID}", site.user_by_id),
    Route("GET", f"/{_USER}/scores/{_ID}", site.permalink),
    Route("GET", f"/{_USER}", site.user_by_name),
)
"""The site's pages, relative to `MuseScoreState.site_prefix`."""

STATIC_ROUTES: Final = (
    Route("GET", f"/{_ID}/{{secret:[0-9a-f]{{1,64}}}}/{{name}}", site.static_file),
)
"""The score files, relative to `MuseScoreState.static_prefix`."""


def build_app(state: MuseScoreState) -> web.Application:
    """Build the MuseScore.com REST application over `state` (mounted at its prefix)."""
    return routes.build_app(state_of, state, ROUTES)


def build_oauth_app(state: MuseScoreState) -> web.Application:
    """Build the OAuth application: ``request_token`` and ``access_token``, GET or POST."""
    return routes.build_app(state_of, state, OAUTH_ROUTES)


def build_site_app(state: MuseScoreState) -> web.Application:
    """Build the site: authorize page, oEmbed endpoint, embed player and permalink pages."""
    return routes.build_app(state_of, state, SITE_ROUTES)


def build_static_app(state: MuseScoreState) -> web.Application:
    """Build the static file server: ``/{id}/{secret}/{name}``, no auth (the secret is the key)."""
    return routes.build_app(state_of, state, STATIC_ROUTES)


def mounts(state: MuseScoreState) -> list[Mount]:
    """The REST API at its prefix; OAuth, site and static files each under its own label."""
    name = state.name
    return [
        Mount(name, state.prefix, build_app(state)),
        Mount(name, state.oauth_prefix, build_oauth_app(state), "/oauth"),
        Mount(name, state.site_prefix, build_site_app(state), "/site"),
        Mount(name, state.static_prefix, build_static_app(state), "/static"),
    ]
