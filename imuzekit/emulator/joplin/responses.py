"""The emulated joplin engine's HTTP handlers: parse the request, ask the state, shape the answer.

`urls` lists them in a route table; rules live in `state` and `models`.
"""

from __future__ import annotations

import functools
import json

from aiohttp import web

from imuzekit.emulator._kit.accounts import User
from imuzekit.emulator._kit.http import (
    BadJSON,
    bad_request,
    bytes_response,
    dumps,
    json_response,
    login,
    not_found,
    read_json_object,
    unauthorized,
)
from imuzekit.emulator._kit.routes import Handler, StateKey

from .models import InvalidMusic, MusicRecord
from .state import JoplinState

__all__ = [
    "create_music",
    "list_genres",
    "music_mp3",
    "music_schema",
    "put_token",
    "state_of",
    "with_status",
]

state_of = StateKey("joplin_state", JoplinState)
"""The `JoplinState` of the application that routed a request."""


def with_status(handler: Handler) -> Handler:
    """`handler` whose JSON error answers also carry ``"status": <http status>``.

    iMuze's Ruby client (``format_response.rb`` of ``imuze/ruby-imuzer``) reads the HTTP status
    from the error body's ``status``; the shared error shape ``{"error", "code"}`` keeps its keys.
    """

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        if response.status < 400 or not isinstance(response, web.Response):
            return response
        if response.content_type != "application/json" or not isinstance(response.body, bytes):
            return response
        try:
            data = json.loads(response.body)
        except ValueError:
            return response
        if isinstance(data, dict) and "status" not in data:
            data["status"] = response.status
            response.text = dumps(data)
        return response

    return wrapped


def _authenticate(request: web.Request, state: JoplinState) -> User | web.Response:
    """The caller's account, or the 401 to answer."""
    raw = request.headers.get("Authorization", "").strip()
    scheme, _, rest = raw.partition(" ")
    if rest and scheme.lower() in ("bearer", "jwt"):
        raw = rest.strip()
    result = state.check_token(raw)
    if isinstance(result, User):
        return result
    return unauthorized(f"Unauthorized: {result.lower()}")


async def put_token(request: web.Request) -> web.Response:
    """``PUT /accounts/token``: ``{"email", "password"}`` -> ``{"token": "<JWT>"}``."""
    state = state_of(request)
    try:
        body = await read_json_object(
            request,
            not_object='Request body must be a JSON object: {"email": ..., "password": ...}',
        )
    except BadJSON as exc:
        return bad_request(str(exc))
    user = login(
        state,
        body.get("email"),
        body.get("password"),
        email_problem="email is required and must be a non-empty string",
        password_problem="password is required and must be a non-empty string",
    )
    if isinstance(user, web.Response):
        return user
    return json_response({"token": state.issue_token(user.email)})


async def list_genres(request: web.Request) -> web.Response:
    """``GET /genres/``: the catalogue, no auth."""
    state = state_of(request)
    genres = [
        {"name": genre.name, "subgenres": [sub.name for sub in genre.subgenres]}
        for genre in state.genres.values()
    ]
    return json_response({"genres": genres})


async def create_music(request: web.Request) -> web.Response:
    """``POST /musics``: 201 with the music schema and ``mp3_uri``.

    ``mp3_uri`` is scheme-relative (``//<host>/musics/<id>/mp3``, see
    `JoplinState.media_prefix`): iMuze's Ruby client plays ``"http:" + mp3_uri`` and takes the
    music's id from its fifth ``/``-separated piece.
    """
    state = state_of(request)
    user = _authenticate(request, state)
    if isinstance(user, web.Response):
        return user
    try:
        body = await read_json_object(request)
    except BadJSON as exc:
        return bad_request(str(exc))
    try:
        music = state.create_music(body, owner=user.id)
    except InvalidMusic as exc:
        return bad_request(str(exc))
    mp3_uri = f"//{request.host}{state.media_prefix}/{music.id}/mp3"
    return json_response({**music.schema, "mp3_uri": mp3_uri}, status=201)


def _owned_music(request: web.Request, state: JoplinState) -> MusicRecord | web.Response:
    user = _authenticate(request, state)
    if isinstance(user, web.Response):
        return user
    music = state.musics.get(request.match_info["id"])
    # Another user's music is as absent as a missing one: ids must not leak.
    if music is None or music.owner != user.id:
        return not_found()
    return music


async def music_schema(request: web.Request) -> web.Response:
    """``GET /musics/{id}/schema``: the music schema."""
    state = state_of(request)
    music = _owned_music(request, state)
    if isinstance(music, web.Response):
        return music
    return json_response(music.schema)


async def music_mp3(request: web.Request) -> web.Response:
    """``GET /musics/{id}/mp3``: 202 ``{"id"}`` with ``Retry-After`` while rendering, then audio."""
    state = state_of(request)
    music = _owned_music(request, state)
    if isinstance(music, web.Response):
        return music
    if not state.is_ready(music):
        # The reference documents this route's body as {"id": ...}: that is the "accepted,
        # still rendering" answer; the MP3 itself comes once rendering is over.
        return json_response(
            {"id": music.id},
            status=202,
            headers={"Retry-After": str(state.retry_after_seconds)},
        )
    audio = state.audio(music)
    return bytes_response(request, audio.data, content_type="audio/mpeg", etag=audio.etag)
