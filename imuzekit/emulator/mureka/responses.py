"""The emulated Mureka's HTTP handlers, the API's and the CDN's.

`urls` lists them in route tables; rules live in `state`, shapes in `views`.
"""

from __future__ import annotations

import asyncio
import html
import math
import time
from typing import Any

from aiohttp import web

from imuzekit.emulator._kit.http import (
    BadJSON,
    bad_request,
    bytes_response,
    json_error,
    json_response,
    not_found,
    origin,
    read_json_object,
    unauthorized,
)
from imuzekit.emulator._kit.media import COVER_PNG
from imuzekit.emulator._kit.routes import StateKey

from .models import MurekaError, MurekaJob, MurekaSong
from .state import MurekaState
from .views import accounts_json, feed_json, job_json, running_jobs_json, song_detail_json

__all__ = [
    "cdn_image",
    "cdn_mp3",
    "create_advanced",
    "create_instrumental",
    "create_simple",
    "list_accounts",
    "list_music",
    "running_jobs",
    "share_page",
    "show_job",
    "show_song",
    "state_of",
]

state_of = StateKey("mureka_state", MurekaState)
"""The `MurekaState` of the application that routed a request."""
# A synchronous create re-reads the clock this often: cheap, and close enough to the moment a
# test advances a frozen clock.
_SYNC_POLL_SECONDS = 0.02
_SONG_DELETED = {"error": "The song has been deleted"}


def _error(exc: MurekaError, state: MurekaState) -> web.Response:
    headers = None
    if exc.status == 429 and state.retry_after_on_429 is not None:
        headers = {"Retry-After": str(math.ceil(state.retry_after_on_429))}
    return json_error(exc.status, exc.message, headers=headers)


def _authorized(request: web.Request, state: MurekaState) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and bool(token) and state.check_token(token.strip())


def _query_int(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    # A length cap keeps absurd values cheap and out of int().
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise MurekaError(400, f"{name}: must be an integer")
    return int(text)


def _query_bool(request: web.Request, name: str) -> bool:
    text = request.query.get(name, "").lower()
    if text in ("", "false", "0"):
        return False
    if text in ("true", "1"):
        return True
    raise MurekaError(400, f"{name}: must be true or false")


async def list_accounts(request: web.Request) -> web.Response:
    """``GET /accounts``: ``{"<account>": {"account", "email", "error"?}}`` (useapi.net's
    script calls it first, to find the accounts it may use)."""
    state = state_of(request)
    if not _authorized(request, state):
        return unauthorized()
    return json_response(accounts_json(state))


async def list_music(request: web.Request) -> web.Response:
    """``GET /music/?account&last_id&expand``: a page of feeds, newest first."""
    state = state_of(request)
    if not _authorized(request, state):
        return unauthorized()
    try:
        account = state.resolve_account(request.query.get("account"))
        last_id = _query_int(request, "last_id")
        expand = _query_bool(request, "expand")
        state.check_account_error(account)
    except MurekaError as exc:
        return _error(exc, state)
    page = state.page(account.id, last_id)
    root = origin(request)
    body: dict[str, Any] = {"list": [feed_json(state, feed, root, lyrics=expand) for feed in page]}
    if page:
        # An empty page has no last feed to continue after: the cursor is left out.
        body["last_id"] = page[-1].feed_id
    feeds = account.feeds
    body["more"] = bool(page) and feeds[0] is not page[-1]
    body["total"] = len(feeds)
    return json_response(body)


async def show_song(request: web.Request) -> web.Response:
    """``GET /music/{song_id}``: ``{"song", "user", "feed_id"}``."""
    state = state_of(request)
    if not _authorized(request, state):
        return unauthorized()
    song = state.songs.get(request.match_info["song_id"])
    if song is None or not state.is_visible(song):
        return json_response(_SONG_DELETED, status=404)
    account = state.accounts.get(song.feed.account)
    if account is not None:
        try:
            state.check_account_error(account)
        except MurekaError as exc:
            return _error(exc, state)
    return json_response(song_detail_json(state, song, origin(request)))


async def _wait_for(state: MurekaState, job: MurekaJob) -> bool:
    """Wait (real time, bounded by `sync_timeout`) until the job's generation ends."""
    deadline = time.monotonic() + state.sync_timeout
    while state.clock.now() < job.done_at:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_SYNC_POLL_SECONDS)
    return True


async def _create(request: web.Request, route: str) -> web.Response:
    state = state_of(request)
    if not _authorized(request, state):
        return unauthorized()
    try:
        body = await read_json_object(request)
    except BadJSON as exc:
        return bad_request(str(exc))
    root = origin(request)
    try:
        job = state.create(route, body, origin=root)
    except MurekaError as exc:
        return _error(exc, state)
    if body.get("async") is True:
        return json_response(job_json(state, job, root, as_created=True), status=201)

    if not await _wait_for(state, job):
        return json_response(
            {
                "error": f"Generation still running after {state.sync_timeout:g} s, "
                f"poll GET /jobs/{job.jobid}",
                "code": 504,
                "jobid": job.jobid,
            },
            status=504,
        )
    if job.failure is not None:
        failure = job.failure
        return json_response(
            {
                "jobid": job.jobid,
                "error": failure.error,
                "errorDetails": failure.details,
                "code": failure.code,
            },
            status=failure.code,
        )
    # useapi.net answers a synchronous create with the job id merged into the feed.
    return json_response({"jobid": job.jobid, **feed_json(state, job.feed, root)})


async def create_simple(request: web.Request) -> web.Response:
    """``POST /music/create``."""
    return await _create(request, "create")


async def create_advanced(request: web.Request) -> web.Response:
    """``POST /music/create-advanced`` (``lyrics`` required)."""
    return await _create(request, "create-advanced")


async def create_instrumental(request: web.Request) -> web.Response:
    """``POST /music/create-instrumental``."""
    return await _create(request, "create-instrumental")


async def show_job(request: web.Request) -> web.Response:
    """``GET /jobs/{jobid}``: the job record."""
    state = state_of(request)
    if not _authorized(request, state):
        return unauthorized()
    job = state.jobs.get(request.match_info["jobid"])
    if job is None or state.clock.now() >= job.expires_at:
        return json_error(404, "Job not found")
    account = state.accounts.get(job.account)
    if account is not None:
        try:
            state.check_account_error(account)
        except MurekaError as exc:
            return _error(exc, state)
    return json_response(job_json(state, job, origin(request)))


async def running_jobs(request: web.Request) -> web.Response:
    """``GET /jobs``: the running jobs, per account."""
    state = state_of(request)
    if not _authorized(request, state):
        return unauthorized()
    return json_response(running_jobs_json(state))


# ------------------------------------------------------------------------------------------------
# CDN


async def cdn_mp3(request: web.Request) -> web.Response:
    """``GET /mureka/cdn/{key}.mp3``: a song's audio, no auth."""
    state = state_of(request)
    song = state.by_cdn_key(request.match_info["key"])
    if not isinstance(song, MurekaSong) or not state.is_ready(song):
        return not_found()
    audio = state.audio(song)
    return bytes_response(request, audio.data, content_type="audio/mpeg", etag=audio.etag)


async def cdn_image(request: web.Request) -> web.Response:
    """``GET /mureka/cdn/{key}.png``: a cover or profile image, no auth."""
    state = state_of(request)
    owner = state.by_cdn_key(request.match_info["key"])
    if owner is None or (isinstance(owner, MurekaSong) and not state.is_visible(owner)):
        return not_found()
    return bytes_response(request, COVER_PNG, content_type="image/png", etag='"mureka-cover-1"')


async def share_page(request: web.Request) -> web.Response:
    """``GET /mureka/cdn/share/{share_key}``: a song's share page (HTML)."""
    state = state_of(request)
    song = state.by_share_key(request.match_info["share_key"])
    if song is None or not state.is_visible(song):
        return not_found()
    title = html.escape(song.title)
    audio = ""
    if state.is_ready(song):
        audio = f'<audio controls src="{state.cdn_url(origin(request), song.key, "mp3")}"></audio>'
    page = f"<!doctype html><title>{title}</title><h1>{title}</h1>{audio}\n"
    return web.Response(text=page, content_type="text/html")
