"""The emulated MuseScore.com's REST handlers (``/musescore/services/rest``).

Each handler takes the request, the state and the verified `Caller` and returns an `Answer`;
`rest` wraps it with the format, the OAuth check and errors rendered in the requested format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import attrs
from aiohttp import web

from imuzekit.emulator._kit.http import dumps, json_error, origin

from .models import MuseScoreError, MuseScoreScore, MuseScoreUser
from .oauth import Caller, authenticate, state_of
from .rendering import render, render_error, rendering_for
from .state import MuseScoreState
from .views import score_json, space_json, time_json, user_json

__all__ = [
    "Answer",
    "RestHandler",
    "delete_score",
    "get_score",
    "get_user",
    "me",
    "resolve",
    "rest",
    "score_space",
    "score_time",
    "search",
    "upload",
    "user_scores",
]


@attrs.frozen
class Answer:
    """What a REST handler answers: the data, its XML root element and the status."""

    data: Any
    root: str
    status: int = 200


RestHandler = Callable[[web.Request, MuseScoreState, Caller], Awaitable[Answer | web.Response]]


def rest(
    handler: RestHandler, *, require_signature: bool = False
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap a REST handler: format, OAuth, and errors rendered in the requested format."""

    async def wrapped(request: web.Request) -> web.Response:
        state = state_of(request)
        root = origin(request)
        try:
            rendering = rendering_for(
                request.match_info.get("fmt", "").lstrip(".").lower(), request.query.get("callback")
            )
        except MuseScoreError as exc:
            return json_error(exc.status, exc.message)
        try:
            caller, _, _ = await authenticate(request, state, require_signature=require_signature)
            answer = await handler(request, state, caller)
        except MuseScoreError as exc:
            return render_error(rendering, exc, root)
        if isinstance(answer, web.Response):
            return answer
        return render(rendering, answer.data, answer.root, answer.status)

    return wrapped


def _score_id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _readable_score(request: web.Request, state: MuseScoreState, caller: Caller) -> MuseScoreScore:
    score = state.scores.get(_score_id(request))
    if score is None or not state.readable(score, caller.user_id, request.query.get("secret")):
        raise MuseScoreError(404, "Not found")
    return score


def _search_args(request: web.Request) -> dict[str, Any]:
    query = request.query
    return {
        "text": query.get("text"),
        "part": ",".join(query.getall("part", [])) or None,
        "parts": query.get("parts"),
        "language": query.get("language"),
        "license": query.get("license"),
        "sort": query.get("sort"),
        "page": query.get("page"),
    }


async def search(request: web.Request, state: MuseScoreState, caller: Caller) -> Answer:
    """``GET /score``: one page of the search."""
    found = state.search(**_search_args(request), viewer_id=caller.user_id)
    root = origin(request)
    return Answer([score_json(state, score, root) for score in found], "scores")


async def user_scores(request: web.Request, state: MuseScoreState, caller: Caller) -> Answer:
    """``GET /user/{id}/score``: the search within one user's scores."""
    user = state.find_user(request.match_info["user"])
    if user is None:
        raise MuseScoreError(404, "Not found")
    found = state.search(**_search_args(request), user_id=user.id, viewer_id=caller.user_id)
    root = origin(request)
    return Answer([score_json(state, score, root) for score in found], "scores")


async def get_score(request: web.Request, state: MuseScoreState, caller: Caller) -> Answer:
    """``GET /score/{id}``: a readable score."""
    score = _readable_score(request, state, caller)
    return Answer(score_json(state, score, origin(request)), "score")


async def score_time(request: web.Request, state: MuseScoreState, caller: Caller) -> Answer:
    """``GET /score/{id}/time``: one event per measure."""
    return Answer(time_json(_readable_score(request, state, caller)), "events")


async def score_space(request: web.Request, state: MuseScoreState, caller: Caller) -> Answer:
    """``GET /score/{id}/space``: one box per measure."""
    return Answer(space_json(_readable_score(request, state, caller)), "elements")


def _signed_user(caller: Caller) -> MuseScoreUser:
    if caller.user is None:
        raise MuseScoreError(401, "user authentication required (sign with an access token)")
    return caller.user


def _form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MuseScoreError(400, f"{name}: must be a text field")
    return value


async def upload(request: web.Request, state: MuseScoreState, caller: Caller) -> Answer:
    """``POST /score``: a multipart upload, signed by a user."""
    user = _signed_user(caller)
    if request.content_type != "multipart/form-data":
        raise MuseScoreError(400, "a score upload must be multipart/form-data")
    try:
        form = await request.post()
    except ValueError:
        raise MuseScoreError(400, "Malformed multipart body") from None
    field = form.get("score_data")
    if not isinstance(field, web.FileField):
        raise MuseScoreError(400, "score_data: a .mscz file is required")
    data = field.file.read()
    private_text = _form_text(form, "private").strip().lower()
    if private_text not in ("", "0", "1", "true", "false"):
        raise MuseScoreError(400, "private: must be 1 or 0")
    license = _form_text(form, "license").strip() or "all-rights-reserved"
    tags = [tag.strip() for tag in _form_text(form, "tags").split(",") if tag.strip()]
    score = state.upload(
        user.id,
        data,
        filename=field.filename or "",
        title=_form_text(form, "title"),
        description=_form_text(form, "description"),
        private=private_text in ("1", "true"),
        license=license,
        tags=tags,
    )
    answer = score_json(state, score, origin(request))
    if state.upload_answer != "score":
        # Only the one field that names the new score (see MuseScoreState.upload_answer).
        key = state.upload_answer
        answer = {key: answer["id"] if key == "score_id" else answer[key]}
    return Answer(answer, "score")


async def delete_score(request: web.Request, state: MuseScoreState, caller: Caller) -> Answer:
    """``DELETE /score/{id}``: the owner only."""
    user = _signed_user(caller)
    score = state.scores.get(_score_id(request))
    # Someone else's private (or processing) score does not exist as far as the caller knows.
    if score is None or not state.readable(score, user.id):
        raise MuseScoreError(404, "Not found")
    if score.user_id != user.id:
        raise MuseScoreError(403, "Only the owner can delete a score")
    state.delete(score.id)
    return Answer({"ok": True, "id": str(score.id)}, "result")


async def me(request: web.Request, state: MuseScoreState, caller: Caller) -> Answer:
    """``GET /me``: the signing user."""
    return Answer(user_json(state, _signed_user(caller), origin(request)), "user")


async def get_user(request: web.Request, state: MuseScoreState, caller: Caller) -> Answer:
    """``GET /user/{id}``: a user by id or name."""
    user = state.find_user(request.match_info["user"])
    if user is None:
        raise MuseScoreError(404, "Not found")
    return Answer(user_json(state, user, origin(request)), "user")


async def resolve(
    request: web.Request, state: MuseScoreState, caller: Caller
) -> Answer | web.Response:
    """``GET /resolve?url=``: 302 to the API resource of a permalink."""
    url = request.query.get("url", "")
    if not url:
        raise MuseScoreError(400, "url: is required")
    found = state.resolve(url, caller.user_id)
    if found is None:
        raise MuseScoreError(404, "Not found")
    fmt = request.match_info.get("fmt", "")
    kind = "score" if isinstance(found, MuseScoreScore) else "user"
    params = {"oauth_consumer_key": caller.consumer_key}
    if "callback" in request.query:
        params["callback"] = request.query["callback"]
    root = origin(request)
    if state.redirect_scheme is not None:
        root = state.redirect_scheme + root[root.index(":") :]
    location = f"{state.rest_url(root)}/{kind}/{found.id}{fmt}?{urlencode(params)}"
    return web.Response(
        status=302,
        text=dumps({"location": location}),
        content_type="application/json",
        headers={"Location": location},
    )
