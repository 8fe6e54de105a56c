"""MuseScore.com's REST API as pure functions: ``build_*`` Requests, ``parse_*`` Responses.

Seed 004. Notes on the wire format:

* the format is the suffix of the last path segment (``/score.json``, ``/score/583/time.json``);
  the SDK asks for JSON, and can read the XML of ``time`` and ``space`` (``format="xml"``);
* numbers often arrive as strings, empty strings mean "not set", and ``metadata.parts`` wraps
  each part as ``{"part": {...}}``: converter hooks registered here take care of all three;
* search pages hold 20 scores and ``page`` is zero-based: a short page is the last one;
* ``/resolve`` answers 302 to the API URL of a score or a user.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from imuzekit import errors
from imuzekit._convert import loads_json
from imuzekit._http import FilePart, Request, Response
from imuzekit._paging import Page
from imuzekit.jobs import JobState, JobStatus
from imuzekit.providers._common import check_int, check_str, decode_json, join_url, structure
from imuzekit.providers.musescore.models import (
    License,
    LicenseFilter,
    MeasureBox,
    OAuthToken,
    OEmbed,
    Part,
    Score,
    ScoreDates,
    ScoreMetadata,
    ScoreUser,
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
    "configure_converter",
    "next_search_request",
    "parse_oembed",
    "parse_resolve_location",
    "parse_score",
    "parse_search",
    "parse_space",
    "parse_time",
    "parse_token",
    "parse_user",
]

PROVIDER = "musescore"
PAGE_SIZE = 20
READY = "ready"
# Leaves first: a generated structure function looks up its fields' hooks when it is made.
_MODELS = (Part, ScoreUser, ScoreDates, ScoreMetadata, Score, User, TimeEvent, MeasureBox, OEmbed)


def _blank_to_none(converter: cattrs.Converter, cls: type[Any]) -> None:
    inner = make_dict_structure_fn(cls, converter)

    def structure_blank_as_none(value: Any, tp: Any) -> Any:
        if isinstance(value, Mapping):
            value = {k: (None if v == "" else v) for k, v in value.items()}
            if cls is Part and isinstance(value.get("part"), Mapping):
                value = {k: (None if v == "" else v) for k, v in value["part"].items()}
        return inner(value, tp)

    converter.register_structure_hook(cls, structure_blank_as_none)


def _int_or_str(value: Any, _: Any) -> int | str:
    # oEmbed's width is "100%" unless a maxwidth was given; then it is a number of pixels.
    if isinstance(value, bool):
        raise TypeError("expected a size")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value) if value.strip().isdigit() else value
    raise TypeError(f"expected a size, got {value!r}")


def _optional_int_or_str(value: Any, tp: Any) -> int | str | None:
    return None if value is None else _int_or_str(value, tp)


def configure_converter(converter: cattrs.Converter) -> None:
    """Register MuseScore.com's wire rules on the package converter."""
    converter.register_structure_hook(int | str, _int_or_str)
    converter.register_structure_hook(int | str | None, _optional_int_or_str)
    for cls in _MODELS:
        _blank_to_none(converter, cls)


def _path(base_url: str, *segments: str | int, fmt: str = "json") -> str:
    """A REST URL with the format suffix on its last segment (``/score/583/time.json``)."""
    *head, last = segments
    return f"{join_url(base_url, *head, last)}.{fmt}"


def _request(method: str, url: str, **kwargs: Any) -> Request:
    return Request(method, url, provider=PROVIDER, **kwargs)


def _check_format(fmt: str) -> str:
    if fmt not in ("json", "xml"):
        raise errors.ValidationError("format", f"must be 'json' or 'xml', got {fmt!r}")
    return fmt


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
    base_url: str, params: Mapping[str, str], *, user_id: int | None = None, page: int = 0
) -> Request:
    """``GET /score.json`` (or ``/user/{id}/score.json``) for one zero-based page."""
    url = _path(base_url, "score") if user_id is None else _path(base_url, "user", user_id, "score")
    return _request("GET", url, params={**params, "page": str(page)})


def parse_search(response: Response) -> Page[Score]:
    """One page of scores (a JSON array)."""
    data = decode_json(response)
    if isinstance(data, dict) and "score" in data:
        data = data["score"]  # some deployments wrap the array
    return Page(items=structure(data or [], tuple[Score, ...]))


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


def build_get_score(base_url: str, score_id: int, *, secret: str | None = None) -> Request:
    """``GET /score/{id}.json`` (``secret`` for a private score you do not own)."""
    check_int("score_id", score_id, minimum=1)
    params = _secret_params(secret)
    return _request("GET", _path(base_url, "score", score_id), params=params)


def parse_score(response: Response, *, static_url: str | None = None) -> Score:
    """A :class:`Score`, with ``static_url`` set for building file links."""
    data = decode_json(response)
    if isinstance(data, dict) and isinstance(data.get("score"), dict) and "id" not in data:
        data = data["score"]
    score = structure(data, Score)
    return attrs.evolve(score, static_url=static_url) if static_url else score


def build_time(
    base_url: str, score_id: int, *, secret: str | None = None, fmt: str = "json"
) -> Request:
    """``GET /score/{id}/time.{fmt}``."""
    return _build_score_data(base_url, score_id, "time", secret, fmt)


def build_space(
    base_url: str, score_id: int, *, secret: str | None = None, fmt: str = "json"
) -> Request:
    """``GET /score/{id}/space.{fmt}``."""
    return _build_score_data(base_url, score_id, "space", secret, fmt)


def _build_score_data(
    base_url: str, score_id: int, leaf: str, secret: str | None, fmt: str
) -> Request:
    """``GET /score/{id}/{leaf}.{fmt}``: a score's measure timings or positions."""
    check_int("score_id", score_id, minimum=1)
    return _request(
        "GET",
        _path(base_url, "score", score_id, leaf, fmt=_check_format(fmt)),
        params=_secret_params(secret),
    )


def _xml_records(body: bytes, item_tag: str) -> list[dict[str, str]]:
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise errors.ParseError(f"not valid XML: {exc}", body=body[:200]) from exc
    return [
        {child.tag: (child.text or "").strip() for child in item} for item in root.iter(item_tag)
    ]


def _records(response: Response, item_tag: str) -> Any:
    if response.content_type.endswith("xml") or response.body.lstrip().startswith(b"<"):
        return _xml_records(response.body, item_tag)
    return decode_json(response)


def parse_time(response: Response) -> list[TimeEvent]:
    """Measure start times, from JSON or from the reference's XML (``<events><event>``)."""
    return list(structure(_records(response, "event") or [], tuple[TimeEvent, ...]))


def parse_space(response: Response) -> list[MeasureBox]:
    """Measure bounding boxes, from JSON or the reference's XML (``<elements><element>``)."""
    return list(structure(_records(response, "element") or [], tuple[MeasureBox, ...]))


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
    form: dict[str, str] = {"title": check_str("title", title, max_length=255)}
    if description is not None:
        form["description"] = check_str(
            "description", description, max_length=10_000, allow_empty=True
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
        check_str(f"tags[{index}]", tag, max_length=100)
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


def build_delete(base_url: str, score_id: int) -> Request:
    """``DELETE /score/{id}.json``."""
    check_int("score_id", score_id, minimum=1)
    return _request("DELETE", _path(base_url, "score", score_id))


# -- users, resolve, oEmbed -----------------------------------------------------------------------


def build_me(base_url: str) -> Request:
    """``GET /me.json`` (needs the user's access token)."""
    return _request("GET", _path(base_url, "me"))


def build_get_user(base_url: str, user_id: int) -> Request:
    """``GET /user/{id}.json``."""
    check_int("user_id", user_id, minimum=1)
    return _request("GET", _path(base_url, "user", user_id))


def parse_user(response: Response) -> User:
    """A :class:`User`."""
    data = decode_json(response)
    if isinstance(data, dict) and isinstance(data.get("user"), dict) and "id" not in data:
        data = data["user"]
    return structure(data, User)


def build_resolve(base_url: str, url: str) -> Request:
    """``GET /resolve.json?url=...`` without following the redirect (checked first)."""
    check_str("url", url, max_length=2000)
    if urlsplit(url).scheme not in ("http", "https"):
        raise errors.ValidationError("url", f"must be an http(s) MuseScore.com URL, got {url!r}")
    return _request("GET", _path(base_url, "resolve"), params={"url": url}, allow_redirects=False)


def parse_resolve_location(response: Response, base_url: str) -> tuple[str, int]:
    """``("score" | "user", id)`` from the 302's ``Location``.

    The redirect is followed only when it points back into the API (``base_url``): a Location
    anywhere else is refused rather than sent the consumer's credentials.
    """
    location = response.headers.get("Location")
    if response.status not in (301, 302, 303, 307, 308) or not location:
        raise errors.ParseError(f"/resolve answered {response.status} without a redirect")
    parts = urlsplit(location)
    base = urlsplit(base_url)
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path.startswith(
        base.path
    ):
        raise errors.ParseError(
            f"/resolve redirected outside the MuseScore API: {parts.netloc}{parts.path}"
        )
    match = re.search(r"/(score|user)/(\d+)(?:\.\w+)?$", parts.path)
    if match is None:
        raise errors.ParseError(f"/resolve redirected to an unknown resource: {parts.path}")
    return match.group(1), int(match.group(2))


def build_oembed(
    oembed_url: str, url: str, *, maxwidth: int | None = None, maxheight: int | None = None
) -> Request:
    """The oEmbed endpoint for a score URL (JSON; no authentication needed)."""
    check_str("url", url, max_length=2000)
    params: dict[str, Any] = {"url": url, "format": "json"}
    if maxwidth is not None:
        params["maxwidth"] = check_int("maxwidth", maxwidth, minimum=1)
    if maxheight is not None:
        params["maxheight"] = check_int("maxheight", maxheight, minimum=1)
    return _request("GET", oembed_url, params=params, auth=False)


def parse_oembed(response: Response) -> OEmbed:
    """An :class:`OEmbed` (``width`` may be ``"100%"``)."""
    return structure(decode_json(response), OEmbed)


# -- OAuth tokens ------------------------------------------------------------------------------


def build_token_request(oauth_url: str, step: str) -> Request:
    """``POST {oauth_url}/request_token`` or ``/access_token`` (signed by the caller)."""
    if step not in ("request_token", "access_token"):
        raise errors.ValidationError("step", f"unknown OAuth step {step!r}")
    return Request("POST", join_url(oauth_url, step), provider=PROVIDER, auth=False)


def parse_token(response: Response) -> OAuthToken:
    """A token from a form-encoded (``oauth_token=..&oauth_token_secret=..``) or JSON answer."""
    text = response.text().strip()
    data: Any
    if text.startswith("{"):
        try:
            data = loads_json(text)
        except ValueError as exc:
            raise errors.ParseError("the token answer is not valid JSON", body=None) from exc
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
