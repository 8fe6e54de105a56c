"""MuseScore.com's REST API as pure functions: ``build_*`` Requests, ``parse_*`` Responses.

Seed 004. Notes on the wire format:

* the format is the suffix of the last path segment (``/score.json``, ``/score/583/time.xml``,
  ``/me.jsonp?callback=f``): every GET can ask for ``json``, ``xml`` or ``jsonp`` and each parses
  into the same models (`_formats.decode`);
* numbers often arrive as strings, empty strings mean "not set", and ``metadata.parts`` wraps
  each part as ``{"part": {...}}``: the converter hooks of `_hooks` take care of all three;
* search pages hold 20 scores and ``page`` is zero-based: a short page is the last one; a score
  that cannot be read whole keeps what can be read (the unreadable fields None), and one without
  a usable id is left out, so one odd score never fails its page;
* metadata numbers may come fractional (``"duration": "474.5"``): ``duration`` keeps the
  fraction, the counts (``pages``, ``measures``, ...) are rounded to the nearest integer;
* the answer of ``POST /score`` is not in the reference: any JSON or XML answer that names the
  new score (``id``, ``score_id``, ``uri`` or ``permalink``) is accepted;
* ``/resolve`` answers 302 to the API URL of a score or a user (on the API's own host, where
  ``http`` and ``https`` may differ).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

import attrs

from imuzekit import errors
from imuzekit._convert import loads_json
from imuzekit._http import FilePart, Request, Response
from imuzekit._paging import Page
from imuzekit.jobs import JobState, JobStatus
from imuzekit.providers._common import check_int, check_str, join_url, structure
from imuzekit.providers.musescore._formats import check_format, decode, format_params, items_of
from imuzekit.providers.musescore._hooks import configure_converter, salvage_score
from imuzekit.providers.musescore.models import (
    License,
    LicenseFilter,
    MeasureBox,
    OAuthToken,
    OEmbed,
    Score,
    Sort,
    TimeEvent,
    User,
)

__all__ = [
    "PAGE_SIZE",
    "PROVIDER",
    "ScoreDriver",
    "build_delete",
    "build_get_score",
    "build_get_user",
    "build_me",
    "build_oembed",
    "build_resolve",
    "build_search",
    "build_space",
    "build_time",
    "build_token_request",
    "build_upload",
    "build_xauth_request",
    "check_user_id",
    "configure_converter",
    "next_search_request",
    "parse_oembed",
    "parse_resolve_location",
    "parse_score",
    "parse_search",
    "parse_space",
    "parse_time",
    "parse_token",
    "parse_upload",
    "parse_user",
]

PROVIDER = "musescore"
MAX_UPLOAD_TITLE = 255
"""Longest score title an upload sends (characters)."""
MAX_UPLOAD_DESCRIPTION = 10_000
"""Longest score description an upload sends (characters)."""
MAX_UPLOAD_TAG = 100
"""Longest tag an upload sends (characters; a tag holds no comma)."""
PAGE_SIZE = 20
READY = "ready"


def _path(base_url: str, *segments: str | int, fmt: str = "json") -> str:
    """A REST URL with the format suffix on its last segment (``/score/583/time.json``)."""
    *head, last = segments
    return f"{join_url(base_url, *head, last)}.{fmt}"


def _request(method: str, url: str, **kwargs: Any) -> Request:
    return Request(method, url, provider=PROVIDER, **kwargs)


def _get(
    base_url: str,
    *segments: str | int,
    fmt: str = "json",
    callback: str | None = None,
    params: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Request:
    """A GET in ``fmt`` (``json``, ``xml`` or ``jsonp`` with its ``callback``), checked first."""
    fmt, callback = check_format(fmt, callback)
    query = {**(params or {}), **format_params(callback)}
    return _request("GET", _path(base_url, *segments, fmt=fmt), params=query, **kwargs)


def check_user_id(user_id: object) -> int | str:
    """A user id: an int >= 1, or a string (a numeric id or a user name, seed 004's "string")."""
    if isinstance(user_id, str):
        check_str("user_id", user_id, max_length=255)
        return user_id.strip()
    return check_int("user_id", user_id, minimum=1)


# -- search -------------------------------------------------------------------------------


def _parts_value(part: object) -> str:
    if isinstance(part, int) and not isinstance(part, bool):
        return str(check_int("part", part, minimum=-1, maximum=128))
    if not isinstance(part, list | tuple) or not part:
        raise errors.ValidationError(
            "part", f"must be a MIDI program or a list of them, got {part!r}"
        )
    programs = [
        check_int(f"part[{index}]", program, minimum=-1, maximum=128)
        for index, program in enumerate(part)
    ]
    return ",".join(str(p) for p in programs)


def search_params(
    *,
    text: str | None = None,
    part: int | Sequence[int] | None = None,
    parts: int | None = None,
    language: str | None = None,
    license: LicenseFilter | str | None = None,
    sort: Sort | str | None = None,
) -> dict[str, str]:
    """Validated query parameters of a score search (ValidationError names the filter)."""
    params: dict[str, str] = {}
    if text is not None:
        params["text"] = check_str("text", text, max_length=500)
    if part is not None:
        params["part"] = _parts_value(part)
    if parts is not None:
        params["parts"] = str(check_int("parts", parts, minimum=1, maximum=1000))
    if language is not None:
        if not isinstance(language, str) or not re.fullmatch(r"[A-Za-z]{2}", language):
            raise errors.ValidationError("language", f"must be a 2-letter code, got {language!r}")
        params["language"] = language.lower()
    if license is not None:
        if license not in LicenseFilter.__members__.values():
            allowed = ", ".join(f.value for f in LicenseFilter)
            raise errors.ValidationError("license", f"must be one of {allowed}, got {license!r}")
        params["license"] = LicenseFilter(license).value
    if sort is not None:
        if sort not in Sort.__members__.values():
            allowed = ", ".join(s.value for s in Sort)
            raise errors.ValidationError("sort", f"must be one of {allowed}, got {sort!r}")
        params["sort"] = Sort(sort).value
    return params


def build_search(
    base_url: str,
    params: Mapping[str, str],
    *,
    user_id: int | str | None = None,
    page: int = 0,
    fmt: str = "json",
    callback: str | None = None,
) -> Request:
    """``GET /score.{fmt}`` (or ``/user/{id}/score.{fmt}``) for one zero-based page."""
    page = check_int("page", page, minimum=0)
    segments: tuple[str | int, ...] = ("score",)
    if user_id is not None:
        segments = ("user", check_user_id(user_id), "score")
    return _get(
        base_url, *segments, fmt=fmt, callback=callback, params={**params, "page": str(page)}
    )


def parse_search(response: Response) -> Page[Score]:
    """One page of scores (a JSON array, or the same in XML or JSONP).

    A score that cannot be read whole keeps the fields that can (the others None); one without a
    usable ``id`` is left out: one odd score never fails the page.
    """
    data = items_of(decode(response), "score")
    if data is None:
        data = []
    if not isinstance(data, list):
        raise errors.ParseError(f"expected a list of scores, got {type(data).__name__}", body=data)
    scores = (salvage_score(item, f"$[{index}]") for index, item in enumerate(data))
    return Page(items=tuple(score for score in scores if score is not None))


def next_search_request(previous: Request, page: Page[Score]) -> Request | None:
    """The next page while pages are full (20 scores); a short page is the last."""
    if len(page.items) < PAGE_SIZE:
        return None
    current = int(dict(previous.params).get("page", "0"))
    return previous.with_params(page=str(current + 1))


# -- scores ------------------------------------------------------------------------------------


def _secret_params(secret: str | None) -> dict[str, str]:
    """The ``secret`` query parameter that opens a private score, when one is given."""
    return {} if secret is None else {"secret": check_str("secret", secret, max_length=64)}


def build_get_score(
    base_url: str,
    score_id: int,
    *,
    secret: str | None = None,
    fmt: str = "json",
    callback: str | None = None,
) -> Request:
    """``GET /score/{id}.{fmt}`` (``secret`` for a private score you do not own)."""
    check_int("score_id", score_id, minimum=1)
    params = _secret_params(secret)
    return _get(base_url, "score", score_id, fmt=fmt, callback=callback, params=params)


def _unwrap(data: Any, key: str) -> Any:
    if isinstance(data, dict) and isinstance(data.get(key), dict) and "id" not in data:
        return data[key]
    return data


def parse_score(response: Response, *, static_url: str | None = None) -> Score:
    """A `Score` (from JSON, XML or JSONP), with ``static_url`` set for file links."""
    score = structure(_unwrap(decode(response), "score"), Score)
    return attrs.evolve(score, static_url=static_url) if static_url else score


def build_time(
    base_url: str,
    score_id: int,
    *,
    secret: str | None = None,
    fmt: str = "json",
    callback: str | None = None,
) -> Request:
    """``GET /score/{id}/time.{fmt}``."""
    return _build_score_data(base_url, score_id, "time", secret, fmt, callback)


def build_space(
    base_url: str,
    score_id: int,
    *,
    secret: str | None = None,
    fmt: str = "json",
    callback: str | None = None,
) -> Request:
    """``GET /score/{id}/space.{fmt}``."""
    return _build_score_data(base_url, score_id, "space", secret, fmt, callback)


def _build_score_data(
    base_url: str, score_id: int, leaf: str, secret: str | None, fmt: str, callback: str | None
) -> Request:
    """``GET /score/{id}/{leaf}.{fmt}``: a score's measure timings or positions."""
    check_int("score_id", score_id, minimum=1)
    params = _secret_params(secret)
    return _get(base_url, "score", score_id, leaf, fmt=fmt, callback=callback, params=params)


def parse_time(response: Response) -> list[TimeEvent]:
    """Measure start times, from JSON, JSONP or the reference's XML (``<events><event>``)."""
    data = items_of(decode(response), "event")
    return list(structure(data or [], tuple[TimeEvent, ...]))


def parse_space(response: Response) -> list[MeasureBox]:
    """Measure bounding boxes, from JSON, JSONP or the reference's XML (``<elements>``)."""
    data = items_of(decode(response), "element")
    return list(structure(data or [], tuple[MeasureBox, ...]))


def build_upload(
    base_url: str,
    *,
    filename: str,
    content: bytes,
    title: str,
    description: str | None = None,
    private: bool = False,
    license: License | str | None = None,
    tags: Sequence[str] = (),
) -> Request:
    """``POST /score.json`` as multipart/form-data; ValidationError before sending."""
    if not filename.lower().endswith(".mscz"):
        raise errors.ValidationError("file", f"must be a .mscz file, got {filename!r}")
    if not content.startswith(b"PK\x03\x04"):
        raise errors.ValidationError("file", "is not a MuseScore .mscz file (not a zip archive)")
    form: dict[str, str] = {"title": check_str("title", title, max_length=MAX_UPLOAD_TITLE)}
    if description is not None:
        form["description"] = check_str(
            "description", description, max_length=MAX_UPLOAD_DESCRIPTION, allow_empty=True
        )
    if not isinstance(private, bool):
        raise errors.ValidationError("private", f"must be True or False, got {private!r}")
    form["private"] = "1" if private else "0"
    if license is not None:
        if license not in License.__members__.values():
            allowed = ", ".join(item.value for item in License)
            raise errors.ValidationError("license", f"must be one of {allowed}, got {license!r}")
        form["license"] = License(license).value
    if isinstance(tags, str):
        raise errors.ValidationError("tags", "must be a list of tags, not a string")
    for index, tag in enumerate(tags):
        check_str(f"tags[{index}]", tag, max_length=MAX_UPLOAD_TAG)
        if "," in tag:
            raise errors.ValidationError(f"tags[{index}]", "must not contain a comma")
    if tags:
        form["tags"] = ",".join(tags)
    return _request(
        "POST",
        _path(base_url, "score"),
        form=form,
        files=(FilePart("score_data", filename, content, "application/octet-stream"),),
    )


_SCORE_ID_IN_URL = re.compile(r"/scores?/(\d{1,18})(?:\.\w+)?/?$")


def parse_upload(response: Response, *, static_url: str | None = None) -> Score:
    """The new score from the answer of ``POST /score`` (the reference does not show it).

    Any JSON, XML or JSONP answer that names the score is accepted: a whole score object, or
    only its ``id``, ``score_id``, ``uri`` (``.../score/{id}``) or ``permalink``
    (``.../scores/{id}``), bare or under a ``score`` key. A partial answer gives a Score with
    only its id (and what else could be read; no ``status``): read the rest with
    ``GET /score/{id}``. ParseError when nothing names the score.
    """
    data = _unwrap(decode(response), "score")
    if isinstance(data, dict):
        score_id = _upload_id(data)
        if score_id is not None:
            score = salvage_score({**data, "id": score_id}, "$")
            if score is not None:
                return attrs.evolve(score, static_url=static_url) if static_url else score
    raise errors.ParseError(
        "the upload answer does not name the new score (no id, score_id, uri or permalink)",
        body=data,
    )


def _upload_id(data: Mapping[str, Any]) -> int | None:
    for key in ("id", "score_id"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
            return int(value)
    for key in ("uri", "permalink"):
        value = data.get(key)
        if isinstance(value, str):
            match = _SCORE_ID_IN_URL.search(urlsplit(value.strip()).path)
            if match is not None:
                return int(match.group(1))
    return None


def build_delete(base_url: str, score_id: int) -> Request:
    """``DELETE /score/{id}.json``."""
    check_int("score_id", score_id, minimum=1)
    return _request("DELETE", _path(base_url, "score", score_id))


# -- users, resolve, oEmbed -----------------------------------------------------------------------


def build_me(base_url: str, *, fmt: str = "json", callback: str | None = None) -> Request:
    """``GET /me.{fmt}`` (needs the user's access token)."""
    return _get(base_url, "me", fmt=fmt, callback=callback)


def build_get_user(
    base_url: str, user_id: int | str, *, fmt: str = "json", callback: str | None = None
) -> Request:
    """``GET /user/{id}.{fmt}``; ``user_id`` an int, a numeric string or a user name."""
    return _get(base_url, "user", check_user_id(user_id), fmt=fmt, callback=callback)


def parse_user(response: Response) -> User:
    """A `User` (from JSON, XML or JSONP)."""
    return structure(_unwrap(decode(response), "user"), User)


def build_resolve(
    base_url: str, url: str, *, fmt: str = "json", callback: str | None = None
) -> Request:
    """``GET /resolve.{fmt}?url=...`` without following the redirect (checked first)."""
    check_str("url", url, max_length=2000)
    if urlsplit(url).scheme not in ("http", "https"):
        raise errors.ValidationError("url", f"must be an http(s) MuseScore.com URL, got {url!r}")
    return _get(
        base_url, "resolve", fmt=fmt, callback=callback, params={"url": url}, allow_redirects=False
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _same_api_host(location: SplitResult, base: SplitResult) -> bool:
    """The same host and port, the scheme the same or only ``http`` <-> ``https``.

    With the default ports (no port in either URL) the scheme change moves 80 <-> 443 too.
    """
    if (location.scheme, location.netloc) == (base.scheme, base.netloc):
        return True
    if location.scheme not in _DEFAULT_PORTS or base.scheme not in _DEFAULT_PORTS:
        return False
    if (location.hostname or "").lower() != (base.hostname or "").lower() or not base.hostname:
        return False
    if location.username or location.password:
        return False
    if location.port is None and base.port is None:
        return True
    own = location.port or _DEFAULT_PORTS[location.scheme]
    return own == (base.port or _DEFAULT_PORTS[base.scheme])


def parse_resolve_location(response: Response, base_url: str) -> tuple[str, int | str]:
    """``("score", id)`` or ``("user", id or name)`` from the 302's ``Location``.

    The redirect is followed only when it points back into the API (``base_url``'s host and
    path; ``http`` <-> ``https`` allowed): a Location on any other host is refused rather than
    sent the consumer's credentials.
    """
    location = response.headers.get("Location")
    if response.status not in (301, 302, 303, 307, 308) or not location:
        raise errors.ParseError(f"/resolve answered {response.status} without a redirect")
    parts = urlsplit(location)
    base = urlsplit(base_url)
    if not _same_api_host(parts, base) or not parts.path.startswith(base.path):
        raise errors.ParseError(
            f"/resolve redirected outside the MuseScore API: {parts.netloc}{parts.path}"
        )
    match = re.search(r"/(score|user)/(\d+|[A-Za-z0-9_-]{1,64})(?:\.\w+)?$", parts.path)
    if match is None or (match.group(1) == "score" and not match.group(2).isdigit()):
        raise errors.ParseError(f"/resolve redirected to an unknown resource: {parts.path}")
    ident = match.group(2)
    return match.group(1), int(ident) if ident.isdigit() else ident


def build_oembed(
    oembed_url: str,
    url: str,
    *,
    maxwidth: int | None = None,
    maxheight: int | None = None,
    fmt: str = "json",
    callback: str | None = None,
) -> Request:
    """The oEmbed endpoint for a score URL (no authentication needed); ``fmt`` is ``json``,
    ``xml`` or ``jsonp`` (with ``callback``)."""
    check_str("url", url, max_length=2000)
    fmt, callback = check_format(fmt, callback)
    params: dict[str, Any] = {"url": url, "format": fmt, **format_params(callback)}
    if maxwidth is not None:
        params["maxwidth"] = check_int("maxwidth", maxwidth, minimum=1)
    if maxheight is not None:
        params["maxheight"] = check_int("maxheight", maxheight, minimum=1)
    return _request("GET", oembed_url, params=params, auth=False)


def parse_oembed(response: Response) -> OEmbed:
    """An `OEmbed` from JSON, XML or JSONP (``width`` may be ``"100%"``)."""
    return structure(_unwrap(decode(response), "oembed"), OEmbed)


# -- OAuth tokens ------------------------------------------------------------------------------


def build_token_request(oauth_url: str, step: str) -> Request:
    """``POST {oauth_url}/request_token`` or ``/access_token`` (signed by the caller)."""
    if step not in ("request_token", "access_token"):
        raise errors.ValidationError("step", f"unknown OAuth step {step!r}")
    return Request("POST", join_url(oauth_url, step), provider=PROVIDER, auth=False)


def build_xauth_request(oauth_url: str, username: str, password: str) -> Request:
    """xAuth: ``POST {oauth_url}/access_token`` with ``x_auth_username``, ``x_auth_password``
    and ``x_auth_mode=client_auth`` in a form body (signed by the consumer alone)."""
    form = {
        "x_auth_username": check_str("username", username, max_length=255).strip(),
        # Sent as typed: a password's spaces are its own.
        "x_auth_password": check_str("password", password, max_length=1000),
        "x_auth_mode": "client_auth",
    }
    request = build_token_request(oauth_url, "access_token")
    return attrs.evolve(request, form=tuple(form.items()))


def parse_token(response: Response) -> OAuthToken:
    """A token from a form-encoded (``oauth_token=..&oauth_token_secret=..``) or JSON answer."""
    text = response.text().strip()
    data: Any
    if text.startswith("{"):
        try:
            data = loads_json(text)
        except ValueError:
            data = None
        if data is None:
            # Raised outside the except block: the decode error's `.doc` is the whole answer,
            # secrets included, and would stay reachable as the context.
            raise errors.ParseError("the token answer is not valid JSON", body=None)
    else:
        data = dict(parse_qsl(text, keep_blank_values=True))
    if (
        not isinstance(data, dict)
        or not data.get("oauth_token")
        or not data.get("oauth_token_secret")
    ):
        raise errors.ParseError("the token answer carries no oauth_token/oauth_token_secret")
    confirmed = data.get("oauth_callback_confirmed")
    return OAuthToken(
        oauth_token=str(data["oauth_token"]),
        oauth_token_secret=str(data["oauth_token_secret"]),
        oauth_callback_confirmed=None if confirmed is None else str(confirmed).lower() == "true",
    )


@attrs.frozen
class ScoreDriver:
    """Polls an uploaded score with ``GET /score/{id}.json`` until its status is ``ready``."""

    base_url: str
    static_url: str
    provider: str = PROVIDER
    kind: str = "upload"
    ok_statuses: Collection[int] = ()

    def status_request(self, job_id: str) -> Request:
        """``GET /score/{id}.json``."""
        return build_get_score(self.base_url, int(job_id))

    def status_of(self, score: Score) -> JobStatus[Score]:
        """READY when the status is ``ready``; other values keep it processing (kept raw)."""
        if score.status == READY:
            return JobStatus(JobState.READY, raw_status=score.status, result=score)
        state = JobState.PROCESSING if score.status else JobState.QUEUED
        return JobStatus(state, raw_status=score.status, result=score)

    def parse_status(
        self, job_id: str, response: Response, previous: Score | None
    ) -> JobStatus[Score]:
        """The upload's state from the score."""
        return self.status_of(parse_score(response, static_url=self.static_url))

    def token_data(self, job_id: str, result: Score | None) -> dict[str, Any]:
        """Nothing: the score is read again on resume."""
        return {}

    def from_token_data(self, job_id: str, data: Mapping[str, Any]) -> Score | None:
        """No partial result."""
        return None
