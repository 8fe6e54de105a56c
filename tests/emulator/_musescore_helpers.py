"""Shared helpers of the MuseScore.com emulator tests: signing with authlib, sending, recomputing.

Signing goes through authlib's client (`ClientAuth`), as the SDK does, so that the emulator is
checked against an independent OAuth 1.0 implementation rather than against itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import aiohttp
import attrs
import yarl
from authlib.oauth1 import ClientAuth
from multidict import CIMultiDictProxy

from imuzekit.emulator import Emulator
from imuzekit.emulator.musescore import DEMO_USER_ID, MuseScoreScore, MuseScoreState

SCORE_KEYS = [
    "id", "vid", "dates", "secret", "uri", "permalink", "user", "status", "sharing",
    "comment_count", "favoriting_count", "view_count", "playback_count", "download_count",
    "genre", "format", "license", "language", "title", "description", "tags", "custom_url",
    "metadata",
]  # fmt: skip
METADATA_KEYS = [
    "title", "subtitle", "composer", "poet", "pages", "measures", "lyrics", "chordnames",
    "keysig", "duration", "dimensions", "parts",
]  # fmt: skip
USER_KEYS = ["id", "name", "permalink", "uri"]
OEMBED_KEYS = [
    "type", "version", "provider_name", "width", "height", "provider_url", "html", "title",
    "author_name", "author_url", "original_url",
]  # fmt: skip

# Written out again here rather than imported: the tests recompute what the emulator should do.
ALL_LICENSES = {
    "all-rights-reserved", "publicdomain", "cc-zero", "cc-by", "cc-by-sa", "cc-by-nd",
    "cc-by-nc", "cc-by-nc-sa", "cc-by-nc-nd",
}  # fmt: skip
LICENSE_SETS = {
    "to_play": ALL_LICENSES,
    "to_share": ALL_LICENSES - {"all-rights-reserved"},
    "to_use_commercially": {"publicdomain", "cc-zero", "cc-by", "cc-by-sa", "cc-by-nd"},
    "to_modify_commercially": {"publicdomain", "cc-zero", "cc-by", "cc-by-sa"},
}


@attrs.frozen
class Reply:
    """What a request got back."""

    status: int
    content_type: str
    body: bytes
    headers: CIMultiDictProxy[str]

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.body.decode()

    def error(self) -> str:
        """The ``error`` of a JSON error body, checking its shape."""
        body = self.json()
        assert set(body) == {"error", "code"}, body
        assert body["code"] == self.status
        assert isinstance(body["error"], str)
        return body["error"]


def rest(emu: Emulator, path: str) -> str:
    """Absolute URL of a REST path (``/score.json``)."""
    return emu.urls["musescore"] + path


def auth(
    emu: Emulator,
    *,
    user: bool = True,
    token: str | None = None,
    token_secret: str | None = None,
    consumer: tuple[str, str] | None = None,
    **kwargs: Any,
) -> ClientAuth:
    """An authlib signer: the demo consumer, with the demo user's access token if `user`."""
    ms = emu.musescore
    key, secret = consumer if consumer is not None else (ms.consumer_key, ms.consumer_secret)
    if token is None and user:
        token, token_secret = ms.token, ms.token_secret
    return ClientAuth(key, secret, token=token, token_secret=token_secret, **kwargs)


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    signer: ClientAuth | None = None,
    key: str | None = None,
    params: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    form: Mapping[str, str] | None = None,
    multipart: aiohttp.FormData | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """Send a request, public (`key` as ``oauth_consumer_key``) or signed by `signer`.

    A form body is signed with its parameters; a multipart body is not (RFC 5849 signs only
    form-urlencoded bodies), exactly as authlib's ``prepare`` treats them.
    """
    query = list(params.items()) if isinstance(params, Mapping) else list(params)
    if key is not None:
        query.append(("oauth_consumer_key", key))
    uri = url + ("?" + urlencode(query) if query else "")
    sent_headers = dict(headers or {})
    body: Any = None
    if form is not None:
        sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urlencode(form)
    elif multipart is not None:
        sent_headers["Content-Type"] = "multipart/form-data"
    if signer is not None:
        uri, sent_headers, body = signer.prepare(method, uri, sent_headers, body or b"")
        body = body or None
    if multipart is not None:
        # aiohttp writes the header with the boundary itself.
        sent_headers.pop("Content-Type", None)
        body = multipart
    async with session.request(
        method,
        yarl.URL(uri, encoded=True),
        headers=sent_headers,
        data=body,
        allow_redirects=False,
    ) as response:
        return Reply(
            response.status, response.content_type, await response.read(), response.headers
        )


def jsonp_payload(reply: Reply, callback: str) -> Any:
    """The JSON inside ``callback(...);``."""
    match = re.fullmatch(re.escape(callback) + r"\((.*)\);", reply.text, re.DOTALL)
    assert match is not None, reply.text[:200]
    return json.loads(match.group(1))


def expected_search(
    ms: MuseScoreState,
    *,
    text: str | None = None,
    part: Sequence[int] = (),
    parts: int | None = None,
    language: str | None = None,
    license: str = "to_play",
    sort: str = "relevance",
    user_id: int | None = None,
    viewer_id: int | None = None,
) -> list[int]:
    """Every id the search should list, in order (all pages), recomputed from the records."""
    needle = text[1:-1] if text and len(text) >= 2 and text[0] == text[-1] == '"' else text
    needle = needle.lower() if needle else None
    hits: list[tuple[MuseScoreScore, int]] = []
    for score in ms.scores.values():
        if score.status != "ready":
            continue
        if score.sharing != "public" and (viewer_id is None or score.user_id != viewer_id):
            continue
        if user_id is not None and score.user_id != user_id:
            continue
        programs = {p.program for p in score.metadata.parts}
        if not set(part) <= programs:
            continue
        if parts is not None and len(score.metadata.parts) != parts:
            continue
        if language is not None and score.language != language:
            continue
        if score.license not in LICENSE_SETS[license]:
            continue
        relevance = 0
        if needle:
            fields = [score.title, score.description, score.metadata.composer or ""]
            relevance = sum(needle in f.lower() for f in fields)
            if not relevance:
                continue
        hits.append((score, relevance))
    sort_keys = {
        "relevance": lambda h: (h[1], h[0].id),
        "view_count": lambda h: (h[0].view_count, h[0].id),
        "date_uploaded": lambda h: (h[0].posted, h[0].id),
        "comment_count": lambda h: (h[0].comment_count, h[0].id),
    }
    hits.sort(key=sort_keys[sort], reverse=True)
    return [score.id for score, _ in hits]


def key(emu: Emulator) -> str:
    """The demo consumer key, for public calls."""
    return emu.musescore.consumer_key


def other_public_score(ms: MuseScoreState) -> int:
    """A public score of a user other than the demo user."""
    return next(
        s.id for s in ms.scores.values() if s.user_id != DEMO_USER_ID and s.sharing == "public"
    )


def private_score(ms: MuseScoreState, *, demo: bool) -> int:
    """A private score of the demo user (`demo`) or of someone else."""
    return next(
        s.id
        for s in ms.scores.values()
        if s.sharing == "private" and (s.user_id == DEMO_USER_ID) == demo
    )


async def all_pages(
    session: aiohttp.ClientSession, url: str, params: dict[str, str], **kwargs: Any
) -> tuple[list[int], list[int]]:
    """Every id a search lists, page after page, and the size of each page."""
    ids: list[int] = []
    sizes: list[int] = []
    for page in range(100):
        reply = await send(session, "GET", url, params={**params, "page": str(page)}, **kwargs)
        assert reply.status == 200, reply.text
        body = reply.json()
        sizes.append(len(body))
        ids += [int(score["id"]) for score in body]
        if len(body) < 20:
            return ids, sizes
    raise AssertionError("more than 100 pages")
