"""The emulated MuseScore.com: OAuth 1.0 verified for real (authlib signs), the three-legged flow,
formats, the score and user objects of seed 004, search against a recomputation, private scores,
time and space, upload and delete, resolve, oEmbed, site pages, faults and counters.
Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import html
import itertools
import re
import time
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from authlib.oauth1.rfc5849 import client_auth

from imuzekit.emulator import Emulator
from imuzekit.emulator._files import mscz_archive
from imuzekit.emulator.musescore import DEMO_USER_ID, MuseScoreError, MuseScoreState

from ._musescore_helpers import (
    ALL_LICENSES,
    METADATA_KEYS,
    OEMBED_KEYS,
    SCORE_KEYS,
    USER_KEYS,
    Reply,
    auth,
    expected_search,
    jsonp_payload,
    rest,
    send,
)
from .conftest import RENDER_SECONDS


@pytest.fixture
def ms(emu: Emulator) -> MuseScoreState:
    """The emulated MuseScore.com state."""
    return emu.musescore


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


# --- wiring ---------------------------------------------------------------------------------


async def test_urls_credentials_and_banner(emu: Emulator, ms: MuseScoreState) -> None:
    root = emu.base_url + "/musescore"
    assert emu.urls["musescore"] == root + "/services/rest"
    assert emu.urls["musescore_oauth"] == root + "/oauth"
    assert emu.urls["musescore_authorize"] == root + "/site/oauth/authorize"
    assert emu.urls["musescore_static"] == root + "/static"
    assert emu.urls["musescore_oembed"] == root + "/site/oembed/endpoint"
    assert emu.urls["musescore_site"] == root + "/site"
    creds = emu.credentials["musescore"]
    assert creds.token == ms.token
    assert dict(creds.extra) == {
        "consumer_key": ms.consumer_key,
        "consumer_secret": ms.consumer_secret,
        "token": ms.token,
        "token_secret": ms.token_secret,
    }
    assert ms.consumers == {ms.consumer_key: ms.consumer_secret}
    assert ms.access_tokens[ms.token].user_id == DEMO_USER_ID
    banner = emu.describe()
    assert f"musescore  {emu.urls['musescore']}" in banner
    line = next(line for line in banner.splitlines() if "consumer_key=" in line)
    assert line.startswith("  musescore ")
    assert f"consumer_key={ms.consumer_key}" in line
    assert line.count(f"token={ms.token}") == 1


async def test_client_is_configured_for_musescore(emu: Emulator, ms: MuseScoreState) -> None:
    async with emu.client() as kit:
        config = kit._configs["musescore"]
        assert (config.consumer_key, config.consumer_secret) == (
            ms.consumer_key,
            ms.consumer_secret,
        )
        assert (config.token, config.token_secret) == (ms.token, ms.token_secret)
        assert config.base_url == emu.urls["musescore"]
        assert config.oauth_url == emu.urls["musescore_oauth"]
        assert config.authorize_url == emu.urls["musescore_authorize"]
        assert config.static_url == emu.urls["musescore_static"]
        assert config.oembed_url == emu.urls["musescore_oembed"]


# --- OAuth: public and signed calls ---------------------------------------------------------


async def test_public_call_needs_a_known_consumer_key(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    url = rest(emu, "/score.json")
    reply = await send(anon, "GET", url)
    assert (reply.status, reply.error()) == (401, "missing consumer key")
    assert reply.headers["WWW-Authenticate"].startswith("OAuth realm=")
    reply = await send(anon, "GET", url, key="not-registered")
    assert (reply.status, reply.error()) == (401, "unknown consumer")
    reply = await send(anon, "GET", url, key=key(emu))
    assert reply.status == 200
    assert len(reply.json()) == 20
    # A token without a signature proves nothing.
    reply = await send(anon, "GET", url, key=key(emu), params={"oauth_token": emu.musescore.token})
    assert reply.status == 401


async def test_two_and_three_legged_signatures(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    two_legged = auth(emu, user=False)
    reply = await send(anon, "GET", rest(emu, "/score.json"), signer=two_legged)
    assert reply.status == 200
    reply = await send(anon, "GET", rest(emu, "/me.json"), signer=auth(emu, user=False))
    assert reply.status == 401
    assert "user" in reply.error()
    reply = await send(anon, "GET", rest(emu, "/me.json"), signer=auth(emu))
    assert reply.status == 200
    assert reply.json()["id"] == str(DEMO_USER_ID)
    # Signed query parameters (and a JSONP callback) take part in the signature.
    reply = await send(
        anon,
        "GET",
        rest(emu, "/me.jsonp"),
        signer=auth(emu),
        params={"callback": "cb", "x": "a b+c/é"},
    )
    assert reply.status == 200
    assert jsonp_payload(reply, "cb")["name"] == "demo"


@pytest.mark.parametrize("signature_type", ["QUERY", "BODY"])
async def test_oauth_parameters_in_the_query_or_a_form_body(
    emu: Emulator, anon: aiohttp.ClientSession, signature_type: str
) -> None:
    signer = auth(emu, signature_type=signature_type)
    if signature_type == "QUERY":
        reply = await send(anon, "GET", rest(emu, "/me.json"), signer=signer)
    else:
        # A form body with the oauth parameters (and others, also signed) on a token endpoint.
        signer = auth(emu, user=False, signature_type="BODY", redirect_uri="oob")
        reply = await send(
            anon,
            "POST",
            emu.urls["musescore_oauth"] + "/request_token",
            signer=signer,
            form={"extra": "signed too"},
        )
    assert reply.status == 200, reply.text


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("wrong consumer secret", "invalid signature"),
        ("wrong token secret", "invalid signature"),
        ("unknown token", "invalid token"),
        ("unknown consumer", "unknown consumer"),
        ("tampered query", "invalid signature"),
        ("plaintext", "unsupported signature method (HMAC-SHA1 only)"),
        ("another host", "invalid signature"),
    ],
)
async def test_bad_signatures_are_401(
    emu: Emulator, anon: aiohttp.ClientSession, case: str, why: str
) -> None:
    ms = emu.musescore
    url = rest(emu, "/me.json")
    signer = auth(emu)
    if case == "wrong consumer secret":
        signer = auth(emu, consumer=(ms.consumer_key, "not-the-secret"))
    elif case == "wrong token secret":
        signer = auth(emu, token=ms.token, token_secret="not-the-secret")
    elif case == "unknown token":
        signer = auth(emu, token="0" * 32, token_secret="x")
    elif case == "unknown consumer":
        signer = auth(emu, consumer=("someone", "else"))
    elif case == "plaintext":
        signer = auth(emu, signature_method="PLAINTEXT")
    if case == "tampered query":
        uri, headers, _ = signer.prepare("GET", url + "?page=1", {}, b"")
        uri = uri.replace("page=1", "page=2")
    elif case == "another host":
        # Signed for "localhost:<port>", received as "127.0.0.1:<port>".
        uri, headers, _ = signer.prepare("GET", url.replace("127.0.0.1", "localhost"), {}, b"")
        uri = url
    else:
        uri, headers, _ = signer.prepare("GET", url, {}, b"")
    async with anon.get(uri, headers=headers) as response:
        reply = Reply(
            response.status, response.content_type, await response.read(), response.headers
        )
    assert (reply.status, reply.error()) == (401, why)


async def test_a_replayed_request_is_401(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    uri, headers, _ = auth(emu).prepare("GET", rest(emu, "/me.json"), {}, b"")
    async with anon.get(uri, headers=headers) as response:
        assert response.status == 200
    async with anon.get(uri, headers=headers) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "nonce already used"


@pytest.fixture
def fixed_nonce(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make authlib sign with the nonce at the end of the yielded list."""
    nonces = ["fixed-nonce"]
    monkeypatch.setattr(client_auth, "generate_nonce", lambda: nonces[-1])
    return nonces


async def test_a_forged_request_does_not_burn_its_nonce(
    emu: Emulator, anon: aiohttp.ClientSession, fixed_nonce: list[str]
) -> None:
    url = rest(emu, "/me.json")
    forged = auth(emu, consumer=(key(emu), "guessed"))
    reply = await send(anon, "GET", url, signer=forged)
    assert (reply.status, reply.error()) == (401, "invalid signature")
    assert (await send(anon, "GET", url, signer=auth(emu))).status == 200
    reply = await send(anon, "GET", url, signer=auth(emu))
    assert (reply.status, reply.error()) == (401, "nonce already used")
    # Nonces are per consumer: another consumer may use the same one.
    other = emu.musescore.add_consumer()
    token, secret = emu.musescore.issue_token("Nicolas", other[0])
    signer = auth(emu, consumer=other, token=token, token_secret=secret)
    assert (await send(anon, "GET", url, signer=signer)).json()["name"] == "Nicolas"


async def test_timestamps_outside_the_window_are_401(
    emu: Emulator, anon: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = rest(emu, "/me.json")
    monkeypatch.setattr(client_auth, "generate_timestamp", lambda: str(int(time.time()) + 400))
    reply = await send(anon, "GET", url, signer=auth(emu))
    assert (reply.status, reply.error()) == (401, "timestamp expired")
    monkeypatch.setattr(client_auth, "generate_timestamp", lambda: str(int(time.time()) + 250))
    assert (await send(anon, "GET", url, signer=auth(emu))).status == 200
    monkeypatch.undo()
    # The emulator's clock moves its idea of "now" (Clock.wall) without moving the client's.
    emu.clock.advance(301)
    reply = await send(anon, "GET", url, signer=auth(emu))
    assert (reply.status, reply.error()) == (401, "timestamp expired")


@pytest.mark.parametrize(
    "header",
    [
        "OAuth",
        "OAuth ",
        "OAuth ,,,",
        "OAuth oauth_consumer_key",
        'OAuth oauth_consumer_key="',
        "OAuth =x",
        'OAuth oauth_consumer_key="%ZZ", oauth_signature="%"',
        'OAuth oauth_consumer_key="imuzekit-demo", oauth_consumer_key="imuzekit-demo"',
        'OAuth oauth_consumer_key="imuzekit-demo", oauth_signature="x"',
        'OAuth oauth_consumer_key="imuzekit-demo", oauth_signature="x", '
        'oauth_signature_method="HMAC-SHA1", oauth_timestamp="12e4", oauth_nonce="n"',
        'OAuth oauth_consumer_key="imuzekit-demo", oauth_signature="x", '
        'oauth_signature_method="HMAC-SHA1", oauth_timestamp="99999999999999999", '
        'oauth_nonce="n"',
        "OAuth " + "a=b," * 2000,
        "Basic dXNlcjpwYXNz",
    ],
)
async def test_garbage_authorization_headers_are_401(
    emu: Emulator, anon: aiohttp.ClientSession, header: str
) -> None:
    reply = await send(anon, "GET", rest(emu, "/me.json"), headers={"Authorization": header})
    assert reply.status == 401
    assert reply.error()


async def test_an_access_token_belongs_to_its_consumer(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    other_key, _ = ms.add_consumer("partner-app", "partner-secret")
    token, secret = ms.issue_token(DEMO_USER_ID, other_key)
    signer = auth(emu, token=token, token_secret=secret)  # the demo consumer, the other's token
    reply = await send(anon, "GET", rest(emu, "/me.json"), signer=signer)
    assert (reply.status, reply.error()) == (401, "invalid token")
    with pytest.raises(ValueError, match="unknown user"):
        ms.issue_token("nobody")
    with pytest.raises(ValueError, match="unknown consumer"):
        ms.issue_token(DEMO_USER_ID, "nope")


# --- OAuth: the three-legged flow -----------------------------------------------------------


async def test_three_legged_flow_with_form_answers(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    oauth = emu.urls["musescore_oauth"]
    reply = await send(
        anon, "POST", oauth + "/request_token", signer=auth(emu, user=False, redirect_uri="oob")
    )
    assert reply.status == 200
    assert reply.content_type == "application/x-www-form-urlencoded"
    answer = {k: v[0] for k, v in parse_qs(reply.text).items()}
    assert set(answer) == {"oauth_token", "oauth_token_secret", "oauth_callback_confirmed"}
    assert answer["oauth_callback_confirmed"] == "true"
    request_token, request_secret = answer["oauth_token"], answer["oauth_token_secret"]

    # The authorize page approves as the demo user and shows the verifier.
    async with anon.get(
        emu.urls["musescore_authorize"], params={"oauth_token": request_token}
    ) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    match = re.search(r'<code id="oauth_verifier">([0-9a-f]+)</code>', page)
    assert match is not None
    verifier = match.group(1)
    assert "demo" in page

    signer = auth(emu, token=request_token, token_secret=request_secret, verifier=verifier)
    reply = await send(anon, "POST", oauth + "/access_token", signer=signer)
    assert reply.status == 200, reply.text
    access = {k: v[0] for k, v in parse_qs(reply.text).items()}
    assert set(access) == {"oauth_token", "oauth_token_secret", "user_id", "username"}
    assert (access["user_id"], access["username"]) == (str(DEMO_USER_ID), "demo")
    signer = auth(emu, token=access["oauth_token"], token_secret=access["oauth_token_secret"])
    reply = await send(anon, "GET", rest(emu, "/me.json"), signer=signer)
    assert reply.json()["id"] == str(DEMO_USER_ID)

    # The request token is spent: its verifier cannot be used again.
    signer = auth(emu, token=request_token, token_secret=request_secret, verifier=verifier)
    reply = await send(anon, "POST", oauth + "/access_token", signer=signer)
    assert (reply.status, reply.error()) == (401, "invalid token")
    # A request token is not an access token, nor the reverse.
    signer = auth(emu, token=access["oauth_token"], token_secret=access["oauth_token_secret"])
    reply = await send(anon, "GET", oauth + "/access_token", signer=signer)
    assert reply.status == 401


async def test_three_legged_flow_with_json_answers(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    ms.token_format = "json"
    oauth = emu.urls["musescore_oauth"]
    signer = auth(emu, user=False, redirect_uri="oob", signature_type="QUERY")
    reply = await send(anon, "GET", oauth + "/request_token", signer=signer)
    assert reply.content_type == "application/json"
    answer = reply.json()
    assert answer == {
        "oauth_token": answer["oauth_token"],
        "oauth_token_secret": answer["oauth_token_secret"],
        "oauth_callback_confirmed": "true",
    }
    verifier = ms.approve(answer["oauth_token"], username="Nicolas")
    assert ms.approve(answer["oauth_token"], username="nicolas") == verifier
    signer = auth(
        emu,
        token=answer["oauth_token"],
        token_secret=answer["oauth_token_secret"],
        verifier=verifier,
        signature_type="QUERY",
    )
    access = (await send(anon, "GET", oauth + "/access_token", signer=signer)).json()
    assert (access["user_id"], access["username"]) == ("5", "Nicolas")
    signer = auth(emu, token=access["oauth_token"], token_secret=access["oauth_token_secret"])
    me = (await send(anon, "GET", rest(emu, "/me.json"), signer=signer)).json()
    assert me["name"] == "Nicolas"
    with pytest.raises(ValueError, match="token_format"):
        ms.token_format = "yaml"


async def test_access_token_needs_an_approved_token_and_its_verifier(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    oauth = emu.urls["musescore_oauth"]
    record = ms.new_request_token(ms.consumer_key)

    async def exchange(verifier: str | None) -> Reply:
        signer = auth(emu, token=record.token, token_secret=record.secret, verifier=verifier)
        return await send(anon, "POST", oauth + "/access_token", signer=signer)

    reply = await exchange("abc")
    assert (reply.status, reply.error()) == (401, "request token not authorized")
    verifier = ms.approve(record.token)
    reply = await exchange("0" * 12)
    assert (reply.status, reply.error()) == (401, "invalid verifier")
    reply = await exchange(None)
    assert (reply.status, reply.error()) == (401, "invalid verifier")
    # A request token signed with a wrong secret is refused like any signature.
    signer = auth(emu, token=record.token, token_secret="wrong", verifier=verifier)
    reply = await send(anon, "POST", oauth + "/access_token", signer=signer)
    assert (reply.status, reply.error()) == (401, "invalid signature")
    assert (await exchange(verifier)).status == 200

    # Request tokens expire (emulator clock).
    ms.request_token_ttl = 10
    late = ms.new_request_token(ms.consumer_key)
    emu.clock.advance(11)
    with pytest.raises(ValueError, match="expired"):
        ms.approve(late.token)
    # request_token itself must be signed, and not with a token.
    reply = await send(anon, "POST", oauth + "/request_token", key=key(emu))
    assert (reply.status, reply.error()) == (401, "missing signature")
    reply = await send(anon, "POST", oauth + "/request_token", signer=auth(emu))
    assert (reply.status, reply.error()) == (401, "invalid token")


async def test_authorize_page_for_an_unknown_token_is_404(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    async with anon.get(emu.urls["musescore_authorize"], params={"oauth_token": "x"}) as response:
        assert response.status == 404
        assert response.content_type == "text/html"
    record = emu.musescore.new_request_token(key(emu), "http://app.example/done")
    async with anon.get(
        emu.urls["musescore_authorize"], params={"oauth_token": record.token}
    ) as response:
        page = await response.text()
    # A callback URL is shown as a link, never followed by the emulator.
    assert "http://app.example/done?oauth_token=" in html.unescape(page)


# --- formats --------------------------------------------------------------------------------


def xml_value(element: ET.Element) -> Any:
    """An XML element back to the JSON value it renders (arrays by ``is_array``)."""
    if element.get("is_array") == "true":
        items = [xml_value(child) for child in element]
        if element.tag == "parts":
            return [{"part": item} for item in items]
        return items
    if len(element):
        return {child.tag: xml_value(child) for child in element}
    return element.text


def normalize(value: Any) -> Any:
    """JSON values as XML text renders them: everything a string, null and "" alike."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("/score/{id}", "score"),
        ("/score/{id}/time", "events"),
        ("/score/{id}/space", "elements"),
        ("/score/time/{id}", "events"),
        ("/score", "scores"),
        ("/user/5", "user"),
        ("/user/5/score", "scores"),
    ],
)
async def test_every_format_carries_the_same_data(
    emu: Emulator, anon: aiohttp.ClientSession, path: str, root: str
) -> None:
    path = path.format(id=other_public_score(emu.musescore))
    plain = await send(anon, "GET", rest(emu, path), key=key(emu))
    as_json = await send(anon, "GET", rest(emu, path + ".json"), key=key(emu))
    assert plain.content_type == as_json.content_type == "application/json"
    data = as_json.json()
    assert plain.json() == data
    jsonp = await send(
        anon, "GET", rest(emu, path + ".jsonp"), key=key(emu), params={"callback": "my.cb_1"}
    )
    assert jsonp.content_type == "application/javascript"
    assert jsonp_payload(jsonp, "my.cb_1") == data
    as_xml = await send(anon, "GET", rest(emu, path + ".xml"), key=key(emu))
    assert as_xml.content_type == "application/xml"
    assert as_xml.text.startswith('<?xml version="1.0" encoding="utf-8"?>\n')
    element = ET.fromstring(as_xml.body)
    assert element.tag == root
    assert xml_value(element) == normalize(data)


async def test_xml_follows_the_reference_style(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    score = next(
        s for s in ms.scores.values() if len(s.metadata.parts) >= 2 and s.sharing == "public"
    )
    reply = await send(anon, "GET", rest(emu, f"/score/{score.id}.xml"), key=key(emu))
    root = ET.fromstring(reply.body)
    parts = root.find("metadata/parts")
    assert parts is not None and parts.get("is_array") == "true"
    assert [(p.findtext("name"), p.findtext("program")) for p in parts.findall("part")] == [
        (part.name, str(part.program)) for part in score.metadata.parts
    ]
    reply = await send(anon, "GET", rest(emu, f"/score/{score.id}/time.xml"), key=key(emu))
    events = ET.fromstring(reply.body)
    assert events.get("is_array") == "true"
    first = events.find("event")
    assert first is not None
    assert (first.findtext("elid"), first.findtext("position")) == ("0", "0")
    reply = await send(anon, "GET", rest(emu, f"/score/{score.id}/space.xml"), key=key(emu))
    element = ET.fromstring(reply.body).find("element")
    assert element is not None
    assert [child.tag for child in element] == ["id", "x", "y", "sx", "sy", "page"]
    reply = await send(anon, "GET", rest(emu, "/user/5.xml"), key=key(emu))
    assert reply.text.split("\n", 1)[1].startswith("<user><id>5</id><name>Nicolas</name>")


async def test_format_problems(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    reply = await send(anon, "GET", rest(emu, "/score.yaml"), key=key(emu))
    assert reply.status == 400 and "format" in reply.error()
    reply = await send(anon, "GET", rest(emu, "/score.jsonp"), key=key(emu))
    assert reply.status == 400 and "callback" in reply.error()
    for callback in ("alert(1)", "a b", "1abc", "x;y"):
        reply = await send(
            anon, "GET", rest(emu, "/score.jsonp"), key=key(emu), params={"callback": callback}
        )
        assert reply.status == 400
    # Errors come in the format asked for.
    reply = await send(anon, "GET", rest(emu, "/score/999999999.xml"), key=key(emu))
    assert reply.status == 404
    assert reply.text.endswith("<result><error>Not found</error><code>404</code></result>\n")
    reply = await send(
        anon, "GET", rest(emu, "/score/999999999.jsonp"), key=key(emu), params={"callback": "f"}
    )
    assert reply.status == 404
    assert jsonp_payload(reply, "f") == {"error": "Not found", "code": 404}
    reply = await send(anon, "GET", rest(emu, "/me.xml"), key=key(emu))
    assert reply.status == 401 and "<result><error>" in reply.text
    reply = await send(anon, "GET", rest(emu, "/score/abc.json"), key=key(emu))
    assert (reply.status, reply.error()) == (404, "Not found")


# --- catalogue and search -------------------------------------------------------------------


async def test_catalogue_is_seeded_and_deterministic(emu: Emulator) -> None:
    ms = emu.musescore
    scores = list(ms.scores.values())
    assert sum(s.sharing == "public" for s in scores) == 300
    assert sum(s.sharing == "private" for s in scores) == 24
    assert len(ms.users) == 20
    assert len({s.user_id for s in scores}) == 20
    assert sum(s.sharing == "private" and s.user_id == DEMO_USER_ID for s in scores) >= 3
    assert all(re.fullmatch(r"[0-9a-f]{10}", s.secret) for s in scores)
    # Every filter has matches and non-matches.
    counts = {len(s.metadata.parts) for s in scores}
    assert counts == {1, 2, 3, 4, 5, 6}
    programs = set().union(*(s.metadata.programs for s in scores))
    assert {0, 73, 40, 42, 24, 56, 71, 52, 128, -1} <= programs
    assert {s.language for s in scores} >= {"en", "fr", "de", "es", "it", None, ""}
    assert {s.license for s in scores} == ALL_LICENSES

    async with Emulator(seed=0) as same, Emulator(seed=1) as other:
        origin = "http://x"
        dumped = [ms.score_json(s, origin) for s in scores]
        assert [same.musescore.score_json(s, origin) for s in same.musescore.scores.values()] == (
            dumped
        )
        assert [
            other.musescore.score_json(s, origin) for s in other.musescore.scores.values()
        ] != dumped


SEARCHES: list[dict[str, str]] = [
    {},
    {"text": "bach"},
    {"text": "MOZART"},
    {"text": "piano"},
    {"text": '"Canon in D"'},
    {"text": "for"},
    {"text": "é"},
    {"text": "zzz-no-such-thing"},
    {"part": "0"},
    {"part": "0,73"},
    {"part": "40,42"},
    {"part": "128"},
    {"part": "-1"},
    {"part": "52", "sort": "view_count"},
    {"parts": "1"},
    {"parts": "4", "sort": "comment_count"},
    {"parts": "6"},
    {"parts": "0"},
    {"language": "fr"},
    {"language": "EN"},
    {"license": "to_share"},
    {"license": "to_use_commercially", "sort": "date_uploaded"},
    {"license": "to_modify_commercially"},
    {"license": "to_play", "sort": "relevance"},
    {"sort": "view_count"},
    {"sort": "date_uploaded"},
    {"sort": "comment_count"},
    {"text": "sonata", "part": "0", "sort": "view_count"},
    {"text": "a", "parts": "2", "license": "to_share", "language": "en"},
]


def to_expected_args(query: dict[str, str]) -> dict[str, Any]:
    """The helper's keyword arguments for a query."""
    args: dict[str, Any] = {}
    if "text" in query:
        args["text"] = query["text"]
    if "part" in query:
        args["part"] = [int(p) for p in query["part"].split(",")]
    if "parts" in query:
        args["parts"] = int(query["parts"])
    if "language" in query:
        args["language"] = query["language"].lower()
    for name in ("license", "sort"):
        if name in query:
            args[name] = query[name]
    return args


@pytest.mark.parametrize(
    "query", SEARCHES, ids=lambda q: "&".join(f"{k}={v}" for k, v in q.items())
)
async def test_search_matches_a_recomputation(
    emu: Emulator, anon: aiohttp.ClientSession, query: dict[str, str]
) -> None:
    ms = emu.musescore
    expected = expected_search(ms, **to_expected_args(query))
    if query.get("text") == "zzz-no-such-thing" or query.get("parts") == "0":
        assert expected == []
    elif query:
        # A real filter: some scores match, some do not (or the order differs).
        assert expected
        assert len(expected) < 300 or "sort" in query
    ids, sizes = await all_pages(anon, rest(emu, "/score.json"), query, key=key(emu))
    assert ids == expected
    assert all(size == 20 for size in sizes[:-1]) and sizes[-1] < 20
    # The method behind the route gives the same answer.
    assert [s.id for s in ms.search(**query)] == expected[:20]


async def test_relevance_ranks_by_matching_fields(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    ids = [int(s["id"]) for s in (await send(
        anon, "GET", rest(emu, "/score.json"), key=key(emu), params={"text": "bach"}
    )).json()]  # fmt: skip
    ranks = []
    for score_id in ids:
        score = ms.scores[score_id]
        fields = (score.title, score.description, score.metadata.composer or "")
        ranks.append(sum("bach" in field.lower() for field in fields))
    assert ranks == sorted(ranks, reverse=True)
    assert ranks[0] >= 2 and ranks[-1] >= 1


async def test_search_pages(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    expected = expected_search(emu.musescore)
    assert len(expected) == 300
    ids, sizes = await all_pages(anon, rest(emu, "/score.json"), {}, key=key(emu))
    assert ids == expected
    assert sizes == [20] * 15 + [0]
    # A filter with a short last page.
    query = {"part": "0"}
    expected = expected_search(emu.musescore, part=[0])
    ids, sizes = await all_pages(anon, rest(emu, "/score.json"), query, key=key(emu))
    assert ids == expected
    assert sizes[-1] == len(expected) % 20 != 0
    beyond = await send(
        anon, "GET", rest(emu, "/score.json"), key=key(emu), params={"page": "9999"}
    )
    assert beyond.json() == []


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("part", "129"),
        ("part", "-2"),
        ("part", "piano"),
        ("part", "0,,73"),
        ("part", "1.5"),
        ("parts", "-1"),
        ("parts", "two"),
        ("language", "english"),
        ("language", "e1"),
        ("license", "to_steal"),
        ("sort", "title"),
        ("page", "-1"),
        ("page", "1.0"),
        ("page", "x"),
    ],
)
async def test_search_rejects_invalid_values(
    emu: Emulator, anon: aiohttp.ClientSession, param: str, value: str
) -> None:
    reply = await send(anon, "GET", rest(emu, "/score.json"), key=key(emu), params={param: value})
    assert reply.status == 400
    assert reply.error().startswith(f"{param}:")
    with pytest.raises(MuseScoreError):
        emu.musescore.search(**{param: value})


async def test_signed_search_adds_the_signers_private_scores(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    public_ids, _ = await all_pages(anon, rest(emu, "/score.json"), {}, key=key(emu))
    signed_ids, _ = await all_pages(anon, rest(emu, "/score.json"), {}, signer=auth(emu))
    added = set(signed_ids) - set(public_ids)
    assert added == {
        s.id for s in ms.scores.values() if s.sharing == "private" and s.user_id == DEMO_USER_ID
    }
    assert signed_ids == expected_search(ms, viewer_id=DEMO_USER_ID)
    two_legged, _ = await all_pages(
        anon, rest(emu, "/score.json"), {}, signer=auth(emu, user=False)
    )
    assert two_legged == public_ids


async def test_user_scores(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    url = rest(emu, f"/user/{DEMO_USER_ID}/score.json")
    ids, _ = await all_pages(anon, url, {}, key=key(emu))
    assert ids == expected_search(ms, user_id=DEMO_USER_ID)
    assert ids and all(ms.scores[i].user_id == DEMO_USER_ID for i in ids)
    mine, _ = await all_pages(anon, url, {}, signer=auth(emu))
    assert mine == expected_search(ms, user_id=DEMO_USER_ID, viewer_id=DEMO_USER_ID)
    assert len(mine) > len(ids)
    # Someone else's list never shows their private scores to the demo user.
    url = rest(emu, "/user/5/score.json")
    theirs, _ = await all_pages(anon, url, {"sort": "view_count"}, signer=auth(emu))
    assert theirs == expected_search(ms, user_id=5, sort="view_count")
    by_name = await send(anon, "GET", rest(emu, "/user/nicolas/score.json"), key=key(emu))
    assert [int(s["id"]) for s in by_name.json()] == expected_search(ms, user_id=5)[:20]
    reply = await send(anon, "GET", rest(emu, "/user/999/score.json"), key=key(emu))
    assert (reply.status, reply.error()) == (404, "Not found")


# --- scores ---------------------------------------------------------------------------------


async def test_score_object_has_the_reference_shape(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    score_id = other_public_score(ms)
    record = ms.scores[score_id]
    reply = await send(anon, "GET", rest(emu, f"/score/{score_id}.json"), key=key(emu))
    body = reply.json()
    assert list(body) == SCORE_KEYS
    assert list(body["metadata"]) == METADATA_KEYS
    owner = ms.users[record.user_id]
    site = emu.urls["musescore_site"]
    assert body["id"] == str(score_id) and body["vid"] == str(record.vid)
    assert body["dates"] == {"posted": str(record.posted), "lastupdate": str(record.lastupdate)}
    assert body["uri"] == rest(emu, f"/score/{score_id}")
    assert body["permalink"] == f"{site}/{owner.name.lower()}/scores/{score_id}"
    assert body["user"] == {"uid": str(owner.id), "username": owner.name}
    assert (body["status"], body["sharing"]) == ("ready", "public")
    for name in ("comment_count", "view_count", "playback_count"):
        assert body[name] == str(getattr(record, name))
    for name in ("favoriting_count", "download_count"):
        assert body[name] == getattr(record, name)
        assert isinstance(body[name], int)
    assert (body["genre"], body["format"]) == ("", "")
    assert body["language"] == record.language
    meta = body["metadata"]
    for name in ("pages", "measures", "keysig", "duration"):
        assert meta[name] == str(getattr(record.metadata, name))
    assert meta["lyrics"] in ("0", "1") and meta["chordnames"] in ("0", "1")
    assert re.fullmatch(r"\d+x\d+", meta["dimensions"])
    assert meta["parts"] == [
        {"part": {"name": p.name, "program": str(p.program)}} for p in record.metadata.parts
    ]
    # The catalogue's languages: null, "" or a code.
    languages = {s["language"] for s in (await send(
        anon, "GET", rest(emu, "/score.json"), key=key(emu), params={"parts": "2"}
    )).json()}  # fmt: skip
    assert languages <= {None, "", "en", "fr", "de", "es", "it"}


async def test_private_scores_need_the_owner_or_the_secret(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    theirs = ms.scores[private_score(ms, demo=False)]
    mine = ms.scores[private_score(ms, demo=True)]
    url = rest(emu, f"/score/{theirs.id}.json")
    reply = await send(anon, "GET", url, key=key(emu))
    assert (reply.status, reply.json()) == (404, {"error": "Not found", "code": 404})
    reply = await send(anon, "GET", url, signer=auth(emu))
    assert reply.status == 404
    reply = await send(anon, "GET", url, key=key(emu), params={"secret": "0" * 10})
    assert reply.status == 404
    reply = await send(anon, "GET", url, key=key(emu), params={"secret": theirs.secret})
    assert (reply.status, reply.json()["sharing"]) == (200, "private")
    for suffix in ("time", "space"):
        reply = await send(
            anon, "GET", rest(emu, f"/score/{theirs.id}/{suffix}.json"), key=key(emu)
        )
        assert reply.status == 404
        reply = await send(
            anon,
            "GET",
            rest(emu, f"/score/{theirs.id}/{suffix}.json"),
            key=key(emu),
            params={"secret": theirs.secret},
        )
        assert reply.status == 200
    reply = await send(anon, "GET", rest(emu, f"/score/{mine.id}.json"), signer=auth(emu))
    assert reply.status == 200
    reply = await send(anon, "GET", rest(emu, f"/score/{mine.id}.json"), key=key(emu))
    assert reply.status == 404


async def test_time_and_space(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    checked = 0
    for score in list(ms.scores.values())[:60]:
        if score.sharing != "public":
            continue
        meta = score.metadata
        events = (
            await send(anon, "GET", rest(emu, f"/score/{score.id}/time.json"), key=key(emu))
        ).json()
        assert [e["elid"] for e in events] == list(range(meta.measures))
        positions = [e["position"] for e in events]
        assert positions[0] == 0 and isinstance(positions[0], int)
        assert all(isinstance(p, float) for p in positions[1:])
        assert all(a < b for a, b in itertools.pairwise(positions))
        assert positions[-1] < meta.duration * 1000
        boxes = (
            await send(anon, "GET", rest(emu, f"/score/{score.id}/space.json"), key=key(emu))
        ).json()
        assert [b["id"] for b in boxes] == list(range(meta.measures))
        assert list(boxes[0]) == ["id", "x", "y", "sx", "sy", "page"]
        assert sorted({b["page"] for b in boxes}) == list(range(meta.pages))
        width_mm, height_mm = (int(v) for v in meta.dimensions.split("x"))
        page_w, page_h = width_mm / 25.4 * 1200, height_mm / 25.4 * 1200  # 1/12 px at 100 dpi
        for box in boxes:
            assert all(isinstance(box[k], float) for k in ("x", "y", "sx", "sy"))
            assert box["x"] > 0 and box["x"] + box["sx"] <= page_w + 1
            assert box["y"] > 0 and box["y"] + box["sy"] <= page_h + 1
        # Measures read left to right, top to bottom, page after page.
        order = [(b["page"], b["y"], b["x"]) for b in boxes]
        assert order == sorted(order)
        checked += 1
    assert checked > 40


# --- upload and delete ----------------------------------------------------------------------


def mscz(title: str = "Uploaded Etude") -> bytes:
    """A small MuseScore file: flute and piano, 12 measures."""
    return mscz_archive(
        title, [("Flute", 73), ("Piano", 0)], measures=12, keysig=2, composer="Me Myself"
    )


def upload_form(
    data: bytes | None = None, filename: str = "etude.mscz", **fields: str
) -> aiohttp.FormData:
    """The multipart body of ``POST /score``."""
    form = aiohttp.FormData(default_to_multipart=True)
    if data is not None:
        form.add_field(
            "score_data", data, filename=filename, content_type="application/octet-stream"
        )
    for name, value in {"title": "My upload", **fields}.items():
        form.add_field(name, value)
    return form


async def test_upload_is_processed_then_ready(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    data = mscz()
    form = upload_form(
        data, description="First try", license="cc-by", tags="etude, flute ,", private="0"
    )
    reply = await send(anon, "POST", rest(emu, "/score.json"), signer=auth(emu), multipart=form)
    assert reply.status == 200, reply.text
    body = reply.json()
    assert list(body) == SCORE_KEYS
    assert (body["status"], body["sharing"], body["license"]) == ("processing", "public", "cc-by")
    assert (body["title"], body["description"]) == ("My upload", "First try")
    assert body["user"] == {"uid": str(DEMO_USER_ID), "username": "demo"}
    meta = body["metadata"]
    assert (meta["title"], meta["composer"], meta["measures"], meta["keysig"]) == (
        "Uploaded Etude", "Me Myself", "12", "2",
    )  # fmt: skip
    assert meta["parts"] == [
        {"part": {"name": "Flute", "program": "73"}},
        {"part": {"name": "Piano", "program": "0"}},
    ]
    score_id = int(body["id"])
    assert score_id > max(i for i in ms.scores if i != score_id)
    assert ms.uploads == 1
    record = ms.scores[score_id]
    assert record.tags == ("etude", "flute") and record.status == "processing"
    url = rest(emu, f"/score/{score_id}.json")
    assert (await send(anon, "GET", url, signer=auth(emu))).json()["status"] == "processing"
    assert (await send(anon, "GET", url, key=key(emu))).status == 404
    newest = await send(
        anon, "GET", rest(emu, "/score.json"), signer=auth(emu), params={"sort": "date_uploaded"}
    )
    assert score_id not in [int(s["id"]) for s in newest.json()]
    static = f"{emu.urls['musescore_static']}/{score_id}/{record.secret}/score.mscz"
    async with anon.get(static) as response:
        assert response.status == 404

    emu.clock.advance(RENDER_SECONDS)
    assert record.status == "ready"
    reply = await send(anon, "GET", url, key=key(emu))
    assert (reply.status, reply.json()["status"]) == (200, "ready")
    newest = await send(
        anon, "GET", rest(emu, "/score.json"), key=key(emu), params={"sort": "date_uploaded"}
    )
    assert int(newest.json()[0]["id"]) == score_id
    async with anon.get(static) as response:
        assert await response.read() == data
    events = await send(anon, "GET", rest(emu, f"/score/{score_id}/time.json"), key=key(emu))
    assert len(events.json()) == 12


async def test_a_private_upload(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    form = upload_form(mscz(), private="1", title="Secret draft")
    body = (
        await send(anon, "POST", rest(emu, "/score.xml"), signer=auth(emu), multipart=form)
    ).body
    root = ET.fromstring(body)
    assert (root.findtext("sharing"), root.findtext("status")) == ("private", "processing")
    score_id, secret = root.findtext("id"), root.findtext("secret")
    emu.clock.advance(RENDER_SECONDS)
    url = rest(emu, f"/score/{score_id}.json")
    assert (await send(anon, "GET", url, key=key(emu))).status == 404
    reply = await send(anon, "GET", url, key=key(emu), params={"secret": secret or ""})
    assert reply.json()["title"] == "Secret draft"


@pytest.mark.parametrize(
    ("form", "why"),
    [
        (lambda: upload_form(mscz(), filename="etude.zip"), "score_data: must be a .mscz file"),
        (lambda: upload_form(b"not a zip", filename="x.mscz"), "score_data: not a valid"),
        (lambda: upload_form(None), "score_data: a .mscz file is required"),
        (lambda: upload_form(mscz(), title=""), "title: is required"),
        (lambda: upload_form(mscz(), title="   "), "title: is required"),
        (lambda: upload_form(mscz(), title="t" * 256), "title: must be at most 255"),
        (lambda: upload_form(mscz(), license="cc-by-4.0"), "license: must be one of"),
        (lambda: upload_form(mscz(), private="maybe"), "private: must be 1 or 0"),
    ],
)
async def test_upload_validation(
    emu: Emulator, anon: aiohttp.ClientSession, form: Any, why: str
) -> None:
    reply = await send(anon, "POST", rest(emu, "/score.json"), signer=auth(emu), multipart=form())
    assert reply.status == 400
    assert reply.error().startswith(why)
    assert emu.musescore.uploads == 0


async def test_upload_needs_a_user_and_multipart(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    url = rest(emu, "/score.json")
    reply = await send(anon, "POST", url, key=key(emu), multipart=upload_form(mscz()))
    assert reply.status == 401
    reply = await send(
        anon, "POST", url, signer=auth(emu, user=False), multipart=upload_form(mscz())
    )
    assert reply.status == 401
    reply = await send(anon, "POST", url, signer=auth(emu), form={"title": "x"})
    assert (reply.status, reply.error()) == (400, "a score upload must be multipart/form-data")
    title = "t" * 255
    reply = await send(
        anon, "POST", url, signer=auth(emu), multipart=upload_form(mscz(), title=title)
    )
    assert reply.status == 200
    # A .mscz without a readable score still uploads, with default metadata.
    with_nothing = mscz_archive("x", [], measures=0, keysig=0)
    reply = await send(
        anon, "POST", url, signer=auth(emu), multipart=upload_form(with_nothing, title="Bare")
    )
    assert reply.json()["metadata"]["parts"] == [{"part": {"name": "Piano", "program": "0"}}]


async def test_delete(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    theirs = other_public_score(ms)
    mine = next(s for s in ms.scores.values() if s.user_id == DEMO_USER_ID)
    secret = mine.secret
    reply = await send(anon, "DELETE", rest(emu, f"/score/{theirs}.json"), signer=auth(emu))
    assert reply.status == 403
    assert reply.error() == "Only the owner can delete a score"
    reply = await send(anon, "DELETE", rest(emu, f"/score/{mine.id}.json"), key=key(emu))
    assert reply.status == 401
    reply = await send(
        anon, "DELETE", rest(emu, f"/score/{mine.id}.json"), signer=auth(emu, user=False)
    )
    assert reply.status == 401
    hidden = private_score(ms, demo=False)
    reply = await send(anon, "DELETE", rest(emu, f"/score/{hidden}.json"), signer=auth(emu))
    assert reply.status == 404
    reply = await send(anon, "DELETE", rest(emu, "/score/999999999.json"), signer=auth(emu))
    assert reply.status == 404
    assert ms.deletions == 0

    reply = await send(anon, "DELETE", rest(emu, f"/score/{mine.id}.json"), signer=auth(emu))
    assert (reply.status, reply.json()) == (200, {"ok": True, "id": str(mine.id)})
    assert mine.id not in ms.scores and ms.deletions == 1
    reply = await send(anon, "GET", rest(emu, f"/score/{mine.id}.json"), signer=auth(emu))
    assert reply.status == 404
    async with anon.get(f"{emu.urls['musescore_static']}/{mine.id}/{secret}/score.pdf") as r:
        assert r.status == 404
    reply = await send(anon, "DELETE", rest(emu, f"/score/{mine.id}.xml"), signer=auth(emu))
    assert reply.status == 404


# --- users and resolve ----------------------------------------------------------------------


async def test_me_and_users(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    site = emu.urls["musescore_site"]
    reply = await send(anon, "GET", rest(emu, "/me.json"), signer=auth(emu))
    assert reply.json() == {
        "id": str(DEMO_USER_ID),
        "name": "demo",
        "permalink": f"{site}/demo",
        "uri": rest(emu, f"/user/{DEMO_USER_ID}"),
    }
    reply = await send(anon, "GET", rest(emu, "/me.json"), key=key(emu))
    assert reply.status == 401
    nicolas = await send(anon, "GET", rest(emu, "/user/5.json"), key=key(emu))
    assert list(nicolas.json()) == USER_KEYS
    assert nicolas.json() == {
        "id": "5",
        "name": "Nicolas",
        "permalink": f"{site}/nicolas",
        "uri": rest(emu, "/user/5"),
    }
    by_name = await send(anon, "GET", rest(emu, "/user/Nicolas.json"), key=key(emu))
    assert by_name.json() == nicolas.json()
    for missing in ("/user/6.json", "/user/nobody.json"):
        reply = await send(anon, "GET", rest(emu, missing), key=key(emu))
        assert (reply.status, reply.error()) == (404, "Not found")


async def test_resolve(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    score = ms.scores[other_public_score(ms)]
    owner = ms.users[score.user_id]
    site = emu.urls["musescore_site"]
    permalink = f"{site}/{owner.slug}/scores/{score.id}"
    reply = await send(
        anon, "GET", rest(emu, "/resolve.json"), key=key(emu), params={"url": permalink}
    )
    assert reply.status == 302
    location = reply.headers["Location"]
    assert location == rest(emu, f"/score/{score.id}.json?oauth_consumer_key={key(emu)}")
    async with anon.get(location) as response:
        assert (await response.json())["id"] == str(score.id)
    # aiohttp follows the redirect by itself when left to.
    async with anon.get(
        rest(emu, "/resolve.xml"), params={"url": permalink, "oauth_consumer_key": key(emu)}
    ) as response:
        assert response.status == 200
        assert ET.fromstring(await response.read()).findtext("id") == str(score.id)

    for url, target in [
        (f"{site}/{owner.slug}", f"/user/{owner.id}.json"),
        (f"http://musescore.com/{owner.slug}/scores/{score.id}", f"/score/{score.id}.json"),
        (f"https://www.musescore.com/{owner.name}/", f"/user/{owner.id}.json"),
        (f"http://musescore.com/score/{score.id}", f"/score/{score.id}.json"),
        (f"{site}/user/{owner.id}", f"/user/{owner.id}.json"),
    ]:
        reply = await send(
            anon, "GET", rest(emu, "/resolve.json"), key=key(emu), params={"url": url}
        )
        assert reply.status == 302, url
        assert urlsplit(reply.headers["Location"]).path.endswith(target)

    hidden = ms.scores[private_score(ms, demo=True)]
    hidden_url = f"{site}/demo/scores/{hidden.id}"
    for url in (
        f"{site}/someoneelse/scores/{score.id}",
        f"{site}/nobody",
        f"{site}/{owner.slug}/scores/999999999",
        "http://example.com/nicolas",
        "not a url",
        hidden_url,
    ):
        reply = await send(
            anon, "GET", rest(emu, "/resolve.json"), key=key(emu), params={"url": url}
        )
        assert (reply.status, reply.error()) == (404, "Not found"), url
    reply = await send(
        anon, "GET", rest(emu, "/resolve.json"), signer=auth(emu), params={"url": hidden_url}
    )
    assert reply.status == 302
    reply = await send(anon, "GET", rest(emu, "/resolve.json"), key=key(emu))
    assert (reply.status, reply.error()) == (400, "url: is required")


# --- oEmbed and site pages ------------------------------------------------------------------


async def test_oembed_json_has_the_reference_shape(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    score = ms.scores[other_public_score(ms)]
    owner = ms.users[score.user_id]
    site = emu.urls["musescore_site"]
    permalink = f"{site}/{owner.slug}/scores/{score.id}"
    async with anon.get(emu.urls["musescore_oembed"], params={"url": permalink}) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        body = await response.json()
    assert list(body) == OEMBED_KEYS
    assert body == {
        "type": "rich",
        "version": "1.0",
        "provider_name": "MuseScore.com",
        "width": "100%",
        "height": 394,
        "provider_url": site,
        "html": f'<iframe width="100%" height="394" src="{site}/node/{score.id}/embed" '
        f'frameborder="0"></iframe><span><a href="{permalink}">{html.escape(score.title)}</a> '
        f'by <a href="{site}/user/{owner.id}">{owner.name}</a></span> ',
        "title": score.title,
        "author_name": owner.name,
        "author_url": f"{site}/{owner.slug}",
        "original_url": permalink,
    }
    async with anon.get(f"{site}/node/{score.id}/embed") as response:
        assert response.status == 200 and "score.mp3" in await response.text()


async def test_oembed_xml_jsonp_and_sizes(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    score = ms.scores[other_public_score(ms)]
    url = f"http://musescore.com/{ms.users[score.user_id].slug}/scores/{score.id}"
    endpoint = emu.urls["musescore_oembed"]
    params = {"url": url, "format": "xml", "maxwidth": "640", "maxheight": "300"}
    async with anon.get(endpoint, params=params) as response:
        assert response.content_type == "application/xml"
        root = ET.fromstring(await response.read())
    assert root.tag == "oembed"
    assert [child.tag for child in root] == OEMBED_KEYS
    assert (root.findtext("width"), root.findtext("height")) == ("640", "300")
    assert 'width="640" height="300"' in (root.findtext("html") or "")
    for fmt in ("jsonp", "js"):
        params = {"url": url, "format": fmt, "callback": "MyCallback", "maxwidth": "500"}
        async with anon.get(endpoint, params=params) as response:
            assert response.content_type == "application/javascript"
            body = jsonp_payload(
                Reply(response.status, "", await response.read(), response.headers), "MyCallback"
            )
        assert (body["width"], body["height"]) == (500, 394)


async def test_oembed_errors(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    endpoint = emu.urls["musescore_oembed"]
    score = ms.scores[private_score(ms, demo=False)]
    private_url = f"{emu.urls['musescore_site']}/{ms.users[score.user_id].slug}/scores/{score.id}"
    public = ms.scores[other_public_score(ms)]
    public_url = f"http://musescore.com/score/{public.id}"
    cases = [
        ({"url": private_url}, 404),
        ({"url": "http://musescore.com/nicolas/scores/1"}, 404),
        ({"url": f"{emu.urls['musescore_site']}/nicolas"}, 404),  # users are not embeddable
        ({}, 400),
        ({"url": public_url, "format": "yaml"}, 501),
        ({"url": public_url, "maxwidth": "wide"}, 400),
        ({"url": public_url, "maxheight": "0"}, 400),
        ({"url": public_url, "format": "jsonp"}, 400),
    ]
    for params, status in cases:
        async with anon.get(endpoint, params=params) as response:
            assert response.status == status, params
            assert (await response.json())["code"] == status


async def test_site_pages(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    score = ms.scores[other_public_score(ms)]
    owner = ms.users[score.user_id]
    site = emu.urls["musescore_site"]
    for path in (f"/{owner.slug}/scores/{score.id}", f"/score/{score.id}"):
        async with anon.get(site + path) as response:
            assert (response.status, response.content_type) == (200, "text/html")
            page = await response.text()
            assert html.escape(score.title) in page and f"/{score.secret}/score.pdf" in page
    for path in (f"/{owner.slug}", f"/user/{owner.id}"):
        async with anon.get(site + path) as response:
            assert f"/scores/{score.id}" in await response.text()
    hidden = ms.scores[private_score(ms, demo=False)]
    for path in (
        f"/{ms.users[hidden.user_id].slug}/scores/{hidden.id}",
        f"/nobody/scores/{score.id}",
        "/nobody",
        "/user/3",
        "/node/1/embed",
    ):
        async with anon.get(site + path) as response:
            assert (response.status, response.content_type) == (404, "text/html"), path


# --- faults and counters --------------------------------------------------------------------


async def test_faults_and_counters_use_musescore_labels(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    score = ms.scores[other_public_score(ms)]
    emu.faults.add("musescore", "GET /score*", status=503, retry_after=2)
    reply = await send(anon, "GET", rest(emu, "/score.json"), key=key(emu))
    assert reply.status == 503 and reply.headers["Retry-After"] == "2"
    assert (await send(anon, "GET", rest(emu, "/score.json"), key=key(emu))).status == 200

    emu.faults.add("musescore", "POST /oauth/request_token", status=500)
    reply = await send(
        anon,
        "POST",
        emu.urls["musescore_oauth"] + "/request_token",
        signer=auth(emu, user=False, redirect_uri="oob"),
    )
    assert reply.status == 500

    static = f"{emu.urls['musescore_static']}/{score.id}/{score.secret}/score.pdf"
    emu.faults.add("musescore", "GET /static/*/score.pdf", truncate=100)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with anon.get(static) as response:
            await response.read()
    emu.faults.add("musescore", "GET /site/oembed/*", status=429)
    async with anon.get(emu.urls["musescore_oembed"], params={"url": "x"}) as response:
        assert response.status == 429

    assert emu.count("musescore", "GET", "/score*") == 2
    assert emu.count("musescore", "POST", "/oauth/*") == 1
    assert emu.count("musescore", "GET", "/static/*") == 1
    assert emu.count("musescore", "GET", "/site/oembed/endpoint") == 1
    logged = [r for r in emu.requests if r.provider == "musescore"]
    assert [r.path for r in logged[:2]] == ["/score.json", "/score.json"]
    assert logged[-1].path == "/site/oembed/endpoint"
    assert logged[0].route == "/score{fmt}"
