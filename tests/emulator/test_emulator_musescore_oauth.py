"""The emulated MuseScore.com: wiring, OAuth 1.0 verified for real (authlib signs), and the
three-legged flow. Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import parse_qs

import aiohttp
import pytest
from authlib.oauth1.rfc5849 import client_auth

from imuzekit.emulator import Emulator
from imuzekit.emulator.musescore import DEMO_USER_ID, MuseScoreState

from ._musescore_helpers import (
    Reply,
    auth,
    jsonp_payload,
    key,
    rest,
    send,
)

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
