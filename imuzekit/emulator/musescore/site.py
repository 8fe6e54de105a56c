"""The emulated MuseScore.com outside its REST base: the site's pages, oEmbed, static files.

``/musescore/site``: the authorize page, the oEmbed endpoint, the embed player and permalink
pages; ``/musescore/static``: the scores' files, with Range support.
"""

from __future__ import annotations

import hmac
import html
from urllib.parse import urlencode

from aiohttp import web

from imuzekit.emulator._kit.http import bytes_response, json_error, origin

from .files import content_type
from .models import DEMO_USER_ID, MuseScoreError, MuseScoreScore, MuseScoreUser
from .oauth import state_of
from .rendering import page, page_not_found, render, render_error, rendering_for
from .search import blank
from .state import MuseScoreState
from .views import oembed_json

__all__ = [
    "authorize",
    "embed",
    "oembed",
    "permalink",
    "score_by_id",
    "static_file",
    "user_by_id",
    "user_by_name",
]


async def authorize(request: web.Request) -> web.Response:
    """``/site/oauth/authorize``: the demo user approves a request token (HTML)."""
    state = state_of(request)
    token = request.query.get("oauth_token", "")
    try:
        verifier = state.approve(token)
    except ValueError:
        return page(
            "Authorization failed",
            "<h1>Authorization failed</h1><p>Unknown or expired request token.</p>",
            status=404,
        )
    record = state.request_tokens[token]
    user = state.users[DEMO_USER_ID]
    callback = ""
    if record.callback != "oob":
        # Shown, not followed: the emulator never sends a browser (or a test) elsewhere.
        target = record.callback + ("&" if "?" in record.callback else "?")
        target += urlencode({"oauth_token": token, "oauth_verifier": verifier})
        callback = f'<p>Continue to <a href="{html.escape(target)}">the application</a>.</p>'
    body = (
        "<h1>Application authorized</h1>"
        f"<p>Signed in as <strong>{html.escape(user.name)}</strong>; the application may now "
        "act on your behalf.</p>"
        "<p>Enter this verification code in the application:</p>"
        f'<p><code id="oauth_verifier">{verifier}</code></p>{callback}'
    )
    return page("Application authorized", body)


def _oembed_int(value: str | None, name: str) -> int | None:
    if blank(value):
        return None
    assert value is not None
    if not (value.isascii() and value.isdigit() and len(value) <= 6 and int(value) > 0):
        raise MuseScoreError(400, f"{name}: must be a positive integer")
    return int(value)


async def oembed(request: web.Request) -> web.Response:
    """``/site/oembed/endpoint``: the oEmbed answer for a score URL."""
    state = state_of(request)
    query = request.query
    fmt = query.get("format") or "json"
    try:
        if fmt not in ("json", "xml", "jsonp", "js"):
            # What the oEmbed specification prescribes for a format the provider lacks.
            raise MuseScoreError(501, f"Unsupported format {fmt[:16]!r}: use json, xml or jsonp")
        rendering = rendering_for("jsonp" if fmt == "js" else fmt, query.get("callback"))
    except MuseScoreError as exc:
        return json_error(exc.status, exc.message)
    try:
        maxwidth = _oembed_int(query.get("maxwidth"), "maxwidth")
        maxheight = _oembed_int(query.get("maxheight"), "maxheight")
        url = query.get("url", "")
        if not url:
            raise MuseScoreError(400, "url: is required")
        found = state.resolve(url)
        if not isinstance(found, MuseScoreScore):
            raise MuseScoreError(404, "Not found")
    except MuseScoreError as exc:
        return render_error(rendering, exc, origin(request))
    data = oembed_json(state, found, origin(request), maxwidth=maxwidth, maxheight=maxheight)
    return render(rendering, data, "oembed")


def _scorepage(state: MuseScoreState, score: MuseScoreScore, origin: str) -> web.Response:
    owner = state.users[score.user_id]
    static = f"{origin}{state.static_prefix}/{score.id}/{score.secret}"
    body = (
        f"<h1>{html.escape(score.title)}</h1>"
        f'<p>by <a href="{state.site_url(origin)}/{owner.slug}">{html.escape(owner.name)}</a></p>'
        f"<p>{html.escape(score.description)}</p>"
        f'<p><img src="{static}/thumb.png" alt="first page"></p>'
        f'<p><a href="{static}/score.pdf">PDF</a> <a href="{static}/score.mid">MIDI</a> '
        f'<a href="{static}/score.mxl">MusicXML</a> <a href="{static}/score.mscz">MuseScore</a> '
        f'<a href="{static}/score.mp3">MP3</a></p>'
    )
    return page(score.title, body)


def _listed_score(state: MuseScoreState, text: str) -> MuseScoreScore | None:
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        return None
    score = state.scores.get(int(text))
    return score if score is not None and state.listed(score) else None


async def permalink(request: web.Request) -> web.Response:
    """``/site/{username}/scores/{id}``: a score's page."""
    state = state_of(request)
    score = _listed_score(state, request.match_info["id"])
    owner = state.users[score.user_id] if score is not None else None
    if score is None or owner is None or owner.slug != request.match_info["user"].lower():
        return page_not_found()
    return _scorepage(state, score, origin(request))


async def score_by_id(request: web.Request) -> web.Response:
    """``/site/score/{id}``: a score's page."""
    state = state_of(request)
    score = _listed_score(state, request.match_info["id"])
    if score is None:
        return page_not_found()
    return _scorepage(state, score, origin(request))


async def embed(request: web.Request) -> web.Response:
    """``/site/node/{id}/embed``: the player iframe."""
    state = state_of(request)
    score = _listed_score(state, request.match_info["id"])
    if score is None:
        return page_not_found()
    root = origin(request)
    static = f"{root}{state.static_prefix}/{score.id}/{score.secret}"
    body = (
        f'<img src="{static}/score_0.png" alt="{html.escape(score.title)}">'
        f'<audio controls src="{static}/score.mp3"></audio>'
    )
    return page(score.title, body)


def _userpage(state: MuseScoreState, user: MuseScoreUser, origin: str) -> web.Response:
    owned = sorted(
        (s for s in state.scores.values() if s.user_id == user.id and state.listed(s)),
        key=lambda s: s.id,
        reverse=True,
    )
    items = "".join(
        f'<li><a href="{state.score_permalink(s, origin)}">{html.escape(s.title)}</a></li>'
        for s in owned
    )
    return page(user.name, f"<h1>{html.escape(user.name)}</h1><ul>{items}</ul>")


async def user_by_name(request: web.Request) -> web.Response:
    """``/site/{username}``: a user's page."""
    state = state_of(request)
    name = request.match_info["user"]
    user = None if name.isdigit() else state.find_user(name)
    if user is None:
        return page_not_found()
    return _userpage(state, user, origin(request))


async def user_by_id(request: web.Request) -> web.Response:
    """``/site/user/{id}``: a user's page."""
    state = state_of(request)
    user = state.users.get(int(request.match_info["id"]))
    if user is None:
        return page_not_found()
    return _userpage(state, user, origin(request))


async def static_file(request: web.Request) -> web.Response:
    """``/static/{id}/{secret}/{name}``: a score file, no auth (the secret is the key)."""
    state = state_of(request)
    score = state.scores.get(int(request.match_info["id"]))
    secret = request.match_info["secret"]
    if (
        score is None
        or not score.is_ready
        or not hmac.compare_digest(secret.encode(), score.secret.encode())
    ):
        return json_error(404, "Not found")
    try:
        name = request.match_info["name"]
        made = state.file(score, name)
    except KeyError:
        return json_error(404, "Not found")
    return bytes_response(request, made.data, content_type=content_type(name), etag=made.etag)
