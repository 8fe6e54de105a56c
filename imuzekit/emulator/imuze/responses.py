"""The emulated iMuze API's HTTP handlers: parse the request, ask the state, shape the answer.

`urls` lists them in a route table; rules live in `state`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from imuzekit.emulator._kit.accounts import User
from imuzekit.emulator._kit.http import (
    BadJSON,
    bad_request,
    bytes_response,
    json_response,
    login,
    not_found,
    origin,
    parse_id,
    read_json,
    read_json_object,
    unauthorized,
)
from imuzekit.emulator._kit.media import COVER_PNG
from imuzekit.emulator._kit.routes import StateKey

from .state import DEFAULT_PER_PAGE, MAX_PER_PAGE, ImuzeState, SongRecord, song_problems

__all__ = [
    "arrangement_image",
    "create_song",
    "list_arrangements",
    "list_songs",
    "post_token",
    "show_arrangement",
    "show_song",
    "song_mp3",
    "song_timeline",
    "state_of",
]

state_of = StateKey("imuze_state", ImuzeState)
"""The `ImuzeState` of the application that routed a request."""


def _authenticate(request: web.Request, state: ImuzeState) -> User | None:
    raw = request.headers.get("Authorization", "").strip()
    scheme, _, rest = raw.partition(" ")
    if rest and scheme.lower() in ("token", "bearer"):
        raw = rest.strip()
        # Rails' "Token token=abc" form.
        if raw.startswith("token="):
            raw = raw[len("token=") :].strip('"')
    return state.user_for_token(raw) if raw else None


def _song_summary(state: ImuzeState, song: SongRecord, origin: str) -> dict[str, Any]:
    return {
        "id": song.id,
        "title": song.title,
        "status": state.status(song),
        "mp3_url": origin + state.mp3_path(song.id),
        "arrangement_name": state.arrangements[song.arrangement_id].name,
    }


def _count(state: ImuzeState, total: int) -> int | str:
    return str(total) if state.count_as_string else total


async def post_token(request: web.Request) -> web.Response:
    """``POST /tokens``: log in with ``{"token": {"email", "password"}}``."""
    state = state_of(request)
    try:
        body = await read_json(request)
    except BadJSON as exc:
        return bad_request(str(exc))
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, dict):
        return bad_request('token is required: {"token": {"email": ..., "password": ...}}')
    user = login(
        state,
        token.get("email"),
        token.get("password"),
        email_problem="token.email must be a non-empty string",
        password_problem="token.password must be a non-empty string",
    )
    if isinstance(user, web.Response):
        return user
    issued = state.issue_token(user.email)
    if state.token_response_style == "token":
        return json_response({"token": issued, "user_id": user.id})
    return json_response({"response": issued})


async def list_arrangements(request: web.Request) -> web.Response:
    """``GET /arrangements``: the catalogue's ids and names."""
    state = state_of(request)
    if _authenticate(request, state) is None:
        return unauthorized()
    items = [{"id": item.id, "name": item.name} for item in state.arrangements.values()]
    return json_response({"count": _count(state, len(items)), "response": items})


async def show_arrangement(request: web.Request) -> web.Response:
    """``GET /arrangements/{id}``: one arrangement in full."""
    state = state_of(request)
    if _authenticate(request, state) is None:
        return unauthorized()
    arrangement_id = parse_id(request.match_info["id"])
    item = state.arrangements.get(arrangement_id) if arrangement_id is not None else None
    if item is None:
        return not_found()
    image = f"{origin(request)}{state.prefix}/files/arrangements/{item.id}.png"
    return json_response(
        {
            "description": item.description,
            "image_url": image if item.has_image else None,
            "id": item.id,
            "genre_list": list(item.genre_list),
            "name": item.name,
        }
    )


async def create_song(request: web.Request) -> web.Response:
    """``POST /songs``: 201 with the create shape (``mp3``, no status)."""
    state = state_of(request)
    user = _authenticate(request, state)
    if user is None:
        return unauthorized()
    try:
        body = await read_json_object(request)
    except BadJSON as exc:
        return bad_request(str(exc))
    problems = song_problems(body, state.arrangements)
    if problems:
        return bad_request("; ".join(problems))
    arrangement_id = body.get("arrangement_id")
    if arrangement_id is None:
        chosen = state.arrangement_for_tags(body["tags"])
        if chosen is None:  # song_problems refuses such tags already; kept for safety
            return bad_request("arrangement_id is missing and no arrangement matches the tags")
        arrangement_id = chosen.id
    song = state.create_song(
        title=body["title"],
        arrangement_id=arrangement_id,
        tags=body["tags"],
        desired_length=body["desired_length"],
        owner=user.id,
    )
    root = origin(request)
    return json_response(
        {
            "title": song.title,
            "musical_mode": song.musical_mode,
            "arrangement_id": song.arrangement_id,
            "timeline_url": root + state.timeline_path(song.id),
            "mp3": root + state.mp3_path(song.id),
            "status_channel": f"songs:{song.id}",
            "id": song.id,
        },
        status=201,
    )


class _BadParam(ValueError):
    pass


def _page_param(request: web.Request, name: str, maximum: int) -> int | None:
    """The query parameter's value in 1..maximum, None if absent; `_BadParam` if invalid."""
    text = request.query.get(name)
    if text is None:
        return None
    value = parse_id(text)
    if value is None or not 1 <= value <= maximum:
        raise _BadParam(f"{name} must be an integer from 1 to {maximum}")
    return value


async def list_songs(request: web.Request) -> web.Response:
    """``GET /songs[?page=&per_page=]``: the caller's songs, newest first."""
    state = state_of(request)
    user = _authenticate(request, state)
    if user is None:
        return unauthorized()
    try:
        page = _page_param(request, "page", 10**9)
        per_page = _page_param(request, "per_page", MAX_PER_PAGE)
    except _BadParam as exc:
        return bad_request(str(exc))
    owned = state.songs_of(user.id)
    total = len(owned)
    if page is None and per_page is None:
        selected: Sequence[SongRecord] = owned[::-1]
    else:
        size = per_page or DEFAULT_PER_PAGE
        # Newest first without reversing the whole list: page n spans these indexes, backwards.
        stop = total - ((page or 1) - 1) * size
        selected = owned[max(0, stop - size) : stop][::-1] if stop > 0 else []
    root = origin(request)
    return json_response(
        {
            "count": _count(state, total),
            "response": [_song_summary(state, song, root) for song in selected],
        }
    )


def _owned_song(request: web.Request, state: ImuzeState, user: User) -> SongRecord | None:
    song_id = parse_id(request.match_info["id"])
    song = state.songs.get(song_id) if song_id is not None else None
    return song if song is not None and song.owner == user.id else None


async def show_song(request: web.Request) -> web.Response:
    """``GET /songs/{id}``: one song with ``status`` and ``timeline_url``."""
    state = state_of(request)
    user = _authenticate(request, state)
    if user is None:
        return unauthorized()
    song = _owned_song(request, state, user)
    if song is None:
        return not_found()
    root = origin(request)
    summary = _song_summary(state, song, root)
    summary["timeline_url"] = root + state.timeline_path(song.id)
    return json_response(summary)


def _file_song(request: web.Request, state: ImuzeState) -> SongRecord | web.Response:
    song_id = parse_id(request.match_info["id"])
    song = state.songs.get(song_id) if song_id is not None else None
    if song is None or not secrets.compare_digest(song.key, request.match_info["key"]):
        return not_found()
    if not state.is_ready(song):
        return not_found("Song is not ready")
    return song


async def song_mp3(request: web.Request) -> web.Response:
    """``GET /files/songs/{id}/{key}.mp3``: the audio, no auth (a signed CDN URL)."""
    state = state_of(request)
    song = _file_song(request, state)
    if isinstance(song, web.Response):
        return song
    audio = state.audio(song)
    return bytes_response(request, audio.data, content_type="audio/mpeg", etag=audio.etag)


async def song_timeline(request: web.Request) -> web.Response:
    """``GET /files/songs/{id}/{key}.json``: the timeline."""
    state = state_of(request)
    song = _file_song(request, state)
    if isinstance(song, web.Response):
        return song
    return json_response(state.timeline(song.id))


async def arrangement_image(request: web.Request) -> web.Response:
    """``GET /files/arrangements/{id}.png``: an arrangement's cover."""
    state = state_of(request)
    arrangement_id = parse_id(request.match_info["id"])
    item = state.arrangements.get(arrangement_id) if arrangement_id is not None else None
    if item is None or not item.has_image:
        return not_found()
    return bytes_response(request, COVER_PNG, content_type="image/png", etag='"imuze-cover-1"')
