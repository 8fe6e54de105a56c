"""MuseScore.com (``kit.musescore``): OAuth 1.0, score search and details, timings and layout,
upload, delete, users, URL resolution, oEmbed and score files.

Base URL: ``http://api.musescore.com/services/rest``. Typical use:

    async with Client(musescore=MuseScoreConfig(consumer_key="...")) as kit:
        async for score in kit.musescore.scores.search("bach", parts=1, sort="view_count"):
            print(score.title, score.metadata.duration)
        pdf = await kit.download(score.file("pdf"), "scores/")
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import anyio
import attrs

from imuzekit import errors
from imuzekit._http import Request, Sender
from imuzekit._paging import Paginator
from imuzekit.auth import withhold_login_answer
from imuzekit.jobs import Job, PollPolicy
from imuzekit.jobs._poller import Poller
from imuzekit.jobs.job import resume_typed
from imuzekit.providers._common import check_int
from imuzekit.providers.musescore import _api
from imuzekit.providers.musescore._oauth import OAuth1Credentials, OAuth1Hook, sign
from imuzekit.providers.musescore.models import (
    License,
    LicenseFilter,
    MeasureBox,
    OAuthToken,
    OEmbed,
    Part,
    Score,
    ScoreDates,
    ScoreFile,
    ScoreMetadata,
    ScoreUser,
    Sort,
    TimeEvent,
    User,
)

__all__ = [
    "License",
    "LicenseFilter",
    "MeasureBox",
    "MuseScoreAPI",
    "OAuthAPI",
    "OAuthToken",
    "OEmbed",
    "Part",
    "Score",
    "ScoreDates",
    "ScoreFile",
    "ScoreMetadata",
    "ScoreUser",
    "ScoresAPI",
    "Sort",
    "TimeEvent",
    "User",
    "UsersAPI",
]


class OAuthAPI:
    """``kit.musescore.oauth``: the three-legged OAuth 1.0 flow, and xAuth's one step."""

    def __init__(self, api: MuseScoreAPI) -> None:
        self._api = api

    def _credentials(self) -> OAuth1Credentials:
        credentials = self._api.hook.credentials
        if not credentials.consumer_secret:
            raise errors.ConfigurationError(
                "the OAuth flow needs the consumer secret: set MuseScoreConfig(consumer_secret=...)"
                " or IMUZEKIT_MUSESCORE_CONSUMER_SECRET"
            )
        return credentials

    async def request_token(self, callback: str = "oob") -> OAuthToken:
        """Step 1: a request token (``POST {oauth_url}/request_token``).

        Raises:
            errors.ConfigurationError: no consumer secret is configured.
            errors.ValidationError: `callback` is neither `oob` nor an http(s) URL.
            errors.AuthenticationError: the consumer was refused (the answer is withheld).
            errors.APIError: another error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer carried no token.
        """
        request = sign(
            _api.build_token_request(self._api.oauth_url, "request_token"),
            self._credentials(),
            token="",
            token_secret="",
            callback=check_callback(callback),
        )
        return await self._token_step(request)

    async def _token_step(self, request: Request) -> OAuthToken:
        # A refused token step may echo the consumer key, the token or its secret: withheld.
        try:
            return _api.parse_token(await self._api.sender.send(request))
        except (errors.APIError, errors.ParseError) as exc:
            withhold_login_answer(exc)
            raise

    def authorize_url(self, request_token: OAuthToken | str) -> str:
        """Step 2: where the user approves the request token (then reads the verifier)."""
        token = (
            request_token.oauth_token if isinstance(request_token, OAuthToken) else request_token
        )
        return f"{self._api.authorize_url}?{urlencode({'oauth_token': token})}"

    async def access_token(self, request_token: OAuthToken, verifier: str) -> OAuthToken:
        """Step 3: exchange the approved request token for the user's access token.

        The Client uses the new token for every later call; store it (with its secret) to
        skip the flow next time: ``MuseScoreConfig(token=..., token_secret=...)``.

        Raises:
            errors.ConfigurationError: the consumer secret is not configured.
            errors.ValidationError: `verifier` is empty (nothing is sent).
            errors.AuthenticationError: the token or the verifier was refused (the answer is
                withheld: it may echo them).
            errors.APIError: another error status of the token step.
            errors.TransportError: the connection failed or timed out.
            errors.ParseError: the answer held no access token.
        """
        request = sign(
            _api.build_token_request(self._api.oauth_url, "access_token"),
            self._credentials(),
            token=request_token.oauth_token,
            token_secret=request_token.oauth_token_secret,
            verifier=check_verifier(verifier),
        )
        token = await self._token_step(request)
        credentials = self._api.hook.credentials
        credentials.token = token.oauth_token
        credentials.token_secret = token.oauth_token_secret
        return token

    async def xauth(self, username: str, password: str) -> OAuthToken:
        """Log in with a user's name (or email) and password instead of the three steps (xAuth,
        as MuseScore's desktop app does); the consumer must be allowed xAuth.

        Like `access_token`, the Client uses the new token for every later call. A refused
        login raises an `APIError` whose answer is withheld (it may echo the password).

        Raises:
            errors.ConfigurationError: xAuth needs the consumer secret in the config.
            errors.ValidationError: `username` or `password` is empty or too long.
            errors.AuthenticationError: the login was refused (401; its answer withheld).
            errors.PermissionDeniedError: the consumer is not allowed xAuth.
            errors.APIError: any other error status, its answer withheld too.
            errors.TransportError: no answer could be had.
        """
        request = sign(
            _api.build_xauth_request(self._api.oauth_url, username, password),
            self._credentials(),
            token="",
            token_secret="",
        )
        token = await self._token_step(request)
        credentials = self._api.hook.credentials
        credentials.token = token.oauth_token
        credentials.token_secret = token.oauth_token_secret
        return token


def check_callback(callback: str) -> str:
    """``oob`` or an http(s) URL."""
    if callback != "oob" and not callback.startswith(("http://", "https://")):
        raise errors.ValidationError(
            "callback", f"must be 'oob' or an http(s) URL, got {callback!r}"
        )
    return callback


def check_verifier(verifier: str) -> str:
    """A non-empty verifier string."""
    if not isinstance(verifier, str) or not verifier.strip():
        raise errors.ValidationError("verifier", "must be the non-empty code shown to the user")
    return verifier.strip()


class ScoresAPI:
    """``kit.musescore.scores``: search, read, time, space, upload and delete scores."""

    def __init__(self, api: MuseScoreAPI) -> None:
        self._api = api

    def search(
        self,
        text: str | None = None,
        *,
        part: int | Sequence[int] | None = None,
        parts: int | None = None,
        language: str | None = None,
        license: LicenseFilter | str | None = None,
        sort: Sort | str | None = None,
        limit: int | None = None,
        page: int = 0,
        format: str = "json",
        callback: str | None = None,
    ) -> Paginator[Score]:
        """Search scores, 20 a page, fetching pages as you iterate (``GET /score.json``).

        ``part``: a MIDI program in [-1, 128] (128 drumset, -1 undefined) or a list of them
        (each must be in the score); ``parts``: the number of parts; ``language``: two letters;
        ``license``: what the licence must allow (``to_play``, ``to_share``,
        ``to_use_commercially``, ``to_modify_commercially``); ``sort``: ``relevance``,
        ``view_count``, ``date_uploaded`` or ``comment_count``; ``limit``: stop after that many
        scores; ``page``: the zero-based page to start from (20 scores a page); ``format``:
        ``json``, ``xml`` or ``jsonp`` (with ``callback``), each read into the same models.
        Filters are checked before anything is sent.

        Raises:
            errors.ValidationError: a filter, `page`, `limit`, `format` or `callback` is wrong:
                raised by the call itself, before anything is sent.
            errors.APIError: an error status of a page (`RateLimitError`, ...), raised by the
                iteration like the rows below.
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        params = _api.search_params(
            text=text, part=part, parts=parts, language=language, license=license, sort=sort
        )
        first = _api.build_search(
            self._api.base_url, params, page=page, fmt=format, callback=callback
        )
        return self._api.paginate(first, limit)

    async def get(
        self,
        score_id: int,
        secret: str | None = None,
        *,
        format: str = "json",
        callback: str | None = None,
    ) -> Score:
        """One score (``GET /score/{id}.{format}``); ``secret`` opens a private score.

        Raises:
            errors.ValidationError: `score_id` < 1, a `secret` over 64 characters, or
                `format` is not json, xml or jsonp (with `callback`).
            errors.NotFoundError: no score has this id, or it is private and `secret` is wrong.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_get_score(
            self._api.base_url, score_id, secret=secret, fmt=format, callback=callback
        )
        return self._api.score(await self._api.sender.send(request))

    async def time(
        self,
        score_id: int,
        secret: str | None = None,
        *,
        format: str = "json",
        callback: str | None = None,
    ) -> list[TimeEvent]:
        """When each measure starts in the audio, in ms (``GET /score/{id}/time.{format}``).

        Raises:
            errors.ValidationError: a wrong argument (nothing is sent).
            errors.NotFoundError: the score does not exist, or has no timings.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_time(
            self._api.base_url, score_id, secret=secret, fmt=format, callback=callback
        )
        return _api.parse_time(await self._api.sender.send(request))

    async def space(
        self,
        score_id: int,
        secret: str | None = None,
        *,
        format: str = "json",
        callback: str | None = None,
    ) -> list[MeasureBox]:
        """Each measure's bounding box on its page (``GET /score/{id}/space.{format}``).

        Raises:
            errors.NotFoundError: there is no such score (or no layout for it).
            errors.ValidationError: `score_id`, `secret` or `format` is wrong (before sending).
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_space(
            self._api.base_url, score_id, secret=secret, fmt=format, callback=callback
        )
        return _api.parse_space(await self._api.sender.send(request))

    async def upload(
        self,
        file: str | os.PathLike[str] | tuple[str, bytes],
        title: str,
        *,
        description: str | None = None,
        private: bool = False,
        license: License | str | None = None,
        tags: Sequence[str] = (),
    ) -> Job[Score]:
        """Upload a ``.mscz`` score (``POST /score.json``, multipart; needs the user's token).

        ``file`` is a path or ``(filename, bytes)``. The job is READY once MuseScore.com has
        processed the score (its status is ``ready``). Never retried once sent. An answer that
        only names the new score (its ``id``, ``score_id``, ``uri`` or ``permalink``) is
        completed with ``GET /score/{id}`` before the job is returned.

        Raises:
            errors.ValidationError: the file is not a readable `.mscz`, or the title, the
                licence or a tag breaks a rule (nothing is sent).
            errors.AuthenticationError: the access token is missing or refused.
            errors.APIError: another error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the upload failed on the wire; with `sent` True the score
                may exist (it is not uploaded again).
            errors.ParseError: the answer did not name the new score.
        """
        if isinstance(file, tuple):
            filename, content = file
        else:
            path = anyio.Path(file)
            filename = path.name
            if not filename.lower().endswith(".mscz"):
                raise errors.ValidationError("file", f"must be a .mscz file, got {filename!r}")
            try:
                content = await path.read_bytes()
            except OSError as exc:
                raise errors.ValidationError("file", f"cannot read {str(file)!r}: {exc}") from exc
        request = _api.build_upload(
            self._api.base_url,
            filename=filename,
            content=content,
            title=title,
            description=description,
            private=private,
            license=license,
            tags=tags,
        )
        response = await self._api.sender.send(request)
        score = _api.parse_upload(response, static_url=self._api.static_url)
        job = self._api.job_for(score)
        job.started_at = time.monotonic()  # a known age: the schedule learns processing times
        if score.status is None:
            # The score exists now: its id must reach the caller whatever this read does, and
            # the job's polls read the score again (GET /score/{id}) when it is waited on.
            with contextlib.suppress(errors.APIError, errors.TransportError, errors.ParseError):
                await job.refresh()
        return job

    async def delete(self, score_id: int) -> None:
        """Delete one of your scores (``DELETE /score/{id}.json``); 403 for another's.

        Raises:
            errors.ValidationError: `score_id` is not an integer >= 1 (nothing is sent).
            errors.PermissionDeniedError: the score is someone else's.
            errors.NotFoundError: there is no score with this id.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
        """
        await self._api.sender.send(_api.build_delete(self._api.base_url, score_id))

    def job(self, score_id: int, *, policy: PollPolicy | None = None) -> Job[Score]:
        """A job for an upload made elsewhere (READY once the score is ``ready``)."""
        return self._api.job_for(Score(id=score_id), policy)

    def resume(self, token: str) -> Job[Score]:
        """Rebuild an upload's job from `job.token()` (in this or another process), typed.

        `kit.musescore.scores.resume(token)` is a `Job[Score]`, READY once the score is
        processed. A token of another provider or job kind raises
        `imuzekit.errors.ValidationError` on `token` (`kit.resume(token)` takes any
        provider's, untyped).

        Raises:
            errors.ValidationError: `token` is not a token of a MuseScore upload.
        """
        return resume_typed(token, self._api._driver, self._api._rebuild)


class UsersAPI:
    """``kit.musescore.users``: users and their scores."""

    def __init__(self, api: MuseScoreAPI) -> None:
        self._api = api

    async def get(
        self, user_id: int | str, *, format: str = "json", callback: str | None = None
    ) -> User:
        """One user (``GET /user/{id}.{format}``): ``user_id`` an int, a numeric string or the
        user's name.

        Raises:
            errors.ValidationError: `user_id` is not a user id or name, or `format` is not
                json, xml or jsonp (with `callback`).
            errors.NotFoundError: there is no such user.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_get_user(self._api.base_url, user_id, fmt=format, callback=callback)
        return _api.parse_user(await self._api.sender.send(request))

    def scores(
        self,
        user_id: int | str,
        *,
        text: str | None = None,
        part: int | Sequence[int] | None = None,
        parts: int | None = None,
        language: str | None = None,
        license: LicenseFilter | str | None = None,
        sort: Sort | str | None = None,
        limit: int | None = None,
        page: int = 0,
        format: str = "json",
        callback: str | None = None,
    ) -> Paginator[Score]:
        """A user's scores (``user_id`` an int, a numeric string or the user's name),
        searchable, paged and formatted like ``scores.search`` (their private ones too when
        the access token is theirs).

        Raises:
            errors.ValidationError: `user_id` or a filter is wrong (at the call, before sending).
            errors.NotFoundError: no such user (raised by the iteration, like the rows below).
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        params = _api.search_params(
            text=text, part=part, parts=parts, language=language, license=license, sort=sort
        )
        request = _api.build_search(
            self._api.base_url,
            params,
            user_id=user_id,
            page=page,
            fmt=format,
            callback=callback,
        )
        return self._api.paginate(request, limit)


class MuseScoreAPI:
    """The MuseScore.com namespace of a Client (``kit.musescore``)."""

    def __init__(
        self,
        *,
        sender: Sender,
        hook: OAuth1Hook,
        base_url: str,
        oauth_url: str,
        authorize_url: str,
        static_url: str,
        oembed_url: str,
        poller: Poller,
        poll_policy: PollPolicy,
    ) -> None:
        self.sender = sender
        self.hook = hook
        self.base_url = base_url.rstrip("/")
        self.oauth_url = oauth_url.rstrip("/")
        self.authorize_url = authorize_url
        self.static_url = static_url.rstrip("/")
        self.oembed_url = oembed_url
        self.poll_policy = poll_policy
        self._poller = poller
        self._driver = _api.ScoreDriver(self.base_url, self.static_url)
        self.oauth = OAuthAPI(self)
        self.scores = ScoresAPI(self)
        self.users = UsersAPI(self)

    def score(self, response: Any) -> Score:
        """Parse a score answer, with file links enabled."""
        return _api.parse_score(response, static_url=self.static_url)

    def paginate(self, first: Any, limit: int | None) -> Paginator[Score]:
        """An iterator over the score pages that start with ``first``."""
        if limit is not None:
            check_int("limit", limit, minimum=1)

        def parse(response: Any) -> Any:
            page = _api.parse_search(response)
            items = tuple(self.score_with_links(score) for score in page.items)
            return type(page)(items=items, total=page.total, cursor=page.cursor, more=page.more)

        return Paginator(self.sender, first, parse, _api.next_search_request, limit=limit)

    def score_with_links(self, score: Score) -> Score:
        """``score`` with ``static_url`` set."""
        return attrs.evolve(score, static_url=self.static_url)

    async def me(self, *, format: str = "json", callback: str | None = None) -> User:
        """The user of the access token (``GET /me.{format}``).

        Raises:
            errors.ValidationError: `format` is not json, xml or jsonp (with `callback`).
            errors.AuthenticationError: there is no user's access token, or it was refused.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_me(self.base_url, fmt=format, callback=callback)
        return _api.parse_user(await self.sender.send(request))

    async def resolve(
        self, url: str, *, format: str = "json", callback: str | None = None
    ) -> Score | User:
        """The score or user behind a MuseScore.com URL (``GET /resolve.{format}``).

        The redirect is followed only into the MuseScore API: its host (``http`` <-> ``https``
        allowed) and path; any other host is refused (ParseError) rather than sent the
        credentials. The resource is read in the same ``format``.

        Raises:
            errors.ValidationError: `url` is not an http(s) MuseScore.com URL, or the `format`
                is not one of json, xml and jsonp.
            errors.NotFoundError: the URL leads to no score or user.
            errors.ParseError: the redirect leaves the MuseScore API (nothing is sent there),
                or an answer could not be read.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
        """
        request = _api.build_resolve(self.base_url, url, fmt=format, callback=callback)
        response = await self.sender.send(request)
        kind, resource_id = _api.parse_resolve_location(response, self.base_url)
        if kind == "score" and isinstance(resource_id, int):
            return await self.scores.get(resource_id, format=format, callback=callback)
        return await self.users.get(resource_id, format=format, callback=callback)

    async def oembed(
        self,
        url: str,
        *,
        maxwidth: int | None = None,
        maxheight: int | None = None,
        format: str = "json",
        callback: str | None = None,
    ) -> OEmbed:
        """The oEmbed description (player iframe) of a score URL (``musescore.com/*`` or
        ``mus.cr/*``), asked for as ``json``, ``xml`` or ``jsonp`` (with ``callback``).

        Raises:
            errors.ValidationError: `url`, `maxwidth`, `maxheight` or `format` is wrong.
            errors.NotFoundError: the URL is not a score oEmbed knows.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_oembed(
            self.oembed_url,
            url,
            maxwidth=maxwidth,
            maxheight=maxheight,
            fmt=format,
            callback=callback,
        )
        return _api.parse_oembed(await self.sender.send(request))

    def job_for(self, score: Score, policy: PollPolicy | None = None) -> Job[Score]:
        """A job for an uploaded score, polled until it is ``ready``."""
        return Job(
            job_id=str(score.id),
            driver=self._driver,
            poller=self._poller,
            status=self._driver.status_of(score),
            policy=policy or self.poll_policy,
        )

    def resume(self, kind: str, job_id: str, data: Mapping[str, Any]) -> Job[Score]:
        """Rebuild a job from a token's fields (used by ``Client.resume``)."""
        if kind != self._driver.kind:
            raise errors.ValidationError("token", f"unknown MuseScore job kind {kind!r}")
        return self._rebuild(job_id, data)

    def _rebuild(self, job_id: str, data: Mapping[str, Any]) -> Job[Score]:
        return self.job_for(Score(id=int(job_id)))
