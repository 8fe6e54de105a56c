"""The transport on the wire: retries, Retry-After, timeouts, auth renewal, limits, logging."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from imuzekit import errors
from imuzekit._http import Request, Response, Timeouts
from imuzekit._retry import RetryPolicy, deadline_scope
from imuzekit._transport import Transport
from imuzekit.auth import LoginResult, TokenLogin
from tests.transport.conftest import Server

FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.02)


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport(retry=FAST, timeouts=Timeouts(connect=2, read=2, total=5))
    yield t
    await t.close()


async def test_get_retried_on_503_then_succeeds(server: Server, transport: Transport) -> None:
    server.script("GET", "/x", (503, {}, {"error": "busy"}), (503, {}, {}), (200, {}, {"ok": 1}))
    await server.start()
    response = await transport.send(Request("GET", server.url + "/x", provider="p"))
    assert response.status == 200
    assert server.hits["GET /x"] == 3


async def test_get_gives_up_after_max_attempts_with_typed_error(
    server: Server, transport: Transport
) -> None:
    server.script("GET", "/x", (502, {"x-request-id": "rid-9"}, {"error": "upstream down"}))
    await server.start()
    with pytest.raises(errors.ServerError) as info:
        await transport.send(Request("GET", server.url + "/x", provider="p"))
    assert server.hits["GET /x"] == FAST.max_attempts
    assert info.value.status == 502
    assert info.value.message == "upstream down"
    assert info.value.request_id == "rid-9"
    assert info.value.provider == "p"


async def test_post_500_is_not_retried(server: Server, transport: Transport) -> None:
    server.script("POST", "/create", (500, {}, {"error": "boom"}))
    await server.start()
    with pytest.raises(errors.ServerError):
        await transport.send(Request("POST", server.url + "/create", json={"a": 1}))
    assert server.hits["POST /create"] == 1


async def test_post_429_is_retried_after_retry_after(server: Server, transport: Transport) -> None:
    server.script(
        "POST",
        "/create",
        (429, {"retry-after-ms": "150"}, {"error": "slow"}),
        (201, {}, {"id": 1}),
    )
    await server.start()
    response = await transport.send(Request("POST", server.url + "/create", json={}))
    assert response.status == 201
    assert server.hits["POST /create"] == 2
    assert server.times[1] - server.times[0] >= 0.14


async def test_retry_after_beyond_cap_raises_at_once(server: Server) -> None:
    server.script("GET", "/x", (429, {"Retry-After": "3600"}, {"error": "quota"}))
    await server.start()
    transport = Transport(retry=RetryPolicy(max_retry_after=5))
    try:
        with pytest.raises(errors.RateLimitError) as info:
            await transport.send(Request("GET", server.url + "/x"))
    finally:
        await transport.close()
    assert info.value.retry_after == 3600
    assert server.hits["GET /x"] == 1


async def test_429_pauses_every_request_to_the_provider(
    server: Server, transport: Transport
) -> None:
    server.script("GET", "/a", (429, {"retry-after-ms": "300"}, {}), (200, {}, {}))
    server.script("GET", "/b", (200, {}, {}))
    await server.start()
    first = asyncio.create_task(transport.send(Request("GET", server.url + "/a", provider="p")))
    await asyncio.sleep(0.05)  # /a got its 429; the pause is in force
    started = time.monotonic()
    await transport.send(Request("GET", server.url + "/b", provider="p"))
    assert time.monotonic() - started >= 0.2
    await first
    assert server.hits["GET /a"] == 2


async def test_connection_refused_post_is_retried_then_reports_unsent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = Transport(retry=FAST)
    try:
        with pytest.raises(errors.TransportError) as info:
            await transport.send(Request("POST", f"http://127.0.0.1:{port}/create", json={}))
    finally:
        await transport.close()
    assert info.value.sent is False
    assert not isinstance(info.value, errors.RequestTimeout)


async def test_disconnect_after_sending_a_post_is_not_retried() -> None:
    transport = Transport(retry=FAST)
    try:
        with aioresponses() as mocked:
            url = "http://127.0.0.1:9/create"
            mocked.post(url, exception=aiohttp.ServerDisconnectedError())
            mocked.post(url, status=201, payload={"id": 1})
            with pytest.raises(errors.TransportError) as info:
                await transport.send(Request("POST", url, json={}))
            assert info.value.sent is True
            assert len(mocked.requests[("POST", aiohttp.client.URL(url))]) == 1
    finally:
        await transport.close()


async def test_read_timeout_raises_request_timeout(server: Server) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({})

    server.route("GET", "/slow", slow)
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.1))
    started = time.monotonic()
    try:
        with pytest.raises(errors.RequestTimeout):
            await transport.send(Request("GET", server.url + "/slow"))
    finally:
        await transport.close()
    assert time.monotonic() - started < 0.8


async def test_per_request_timeout_override(server: Server, transport: Transport) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({})

    server.route("GET", "/slow", slow)
    await server.start()
    request = Request("GET", server.url + "/slow", timeouts=Timeouts(read=0.05, total=0.1))
    started = time.monotonic()
    with pytest.raises(errors.RequestTimeout):
        await transport.send(request)
    # FAST allows 4 attempts of at most 0.1 s each, plus tiny backoffs.
    assert time.monotonic() - started < 0.5


async def test_oversized_body_is_refused(server: Server) -> None:
    server.script("GET", "/big", (200, {}, {"data": "x" * 5000}))
    await server.start()
    transport = Transport(max_body_bytes=1000)
    try:
        with pytest.raises(errors.ParseError, match="limit"):
            await transport.send(Request("GET", server.url + "/big"))
    finally:
        await transport.close()


def _login_hook(server: Server, logins: list[str]) -> TokenLogin:
    def login() -> Request:
        return Request("POST", server.url + "/login", provider="p", auth=False)

    def parse(response: Response) -> LoginResult:
        token = f"tok{len(logins) + 1}"
        logins.append(token)
        return LoginResult(token=token)

    return TokenLogin(provider="p", login=login, parse=parse)


async def test_401_triggers_exactly_one_relogin(server: Server, transport: Transport) -> None:
    server.script("POST", "/login", (200, {}, {}))

    def me(request: web.Request) -> web.Response:
        ok = request.headers.get("Authorization") == "tok2"
        return web.json_response({}, status=200 if ok else 401)

    server.route("GET", "/me", me)
    await server.start()
    logins: list[str] = []
    transport.set_auth("p", _login_hook(server, logins))
    response = await transport.send(Request("GET", server.url + "/me", provider="p"))
    assert response.status == 200
    assert logins == ["tok1", "tok2"]  # first use, then one re-login after the 401


async def test_persistent_401_raises_after_one_relogin(
    server: Server, transport: Transport
) -> None:
    server.script("POST", "/login", (200, {}, {}))
    server.script("GET", "/me", (401, {}, {"error": "Unauthorized"}))
    await server.start()
    logins: list[str] = []
    transport.set_auth("p", _login_hook(server, logins))
    with pytest.raises(errors.AuthenticationError):
        await transport.send(Request("GET", server.url + "/me", provider="p"))
    assert len(logins) == 2
    assert server.hits["GET /me"] == 2


async def test_concurrent_401s_share_one_relogin(server: Server, transport: Transport) -> None:
    server.script("POST", "/login", (200, {}, {}))

    def me(request: web.Request) -> web.Response:
        ok = request.headers.get("Authorization") != "tok1"
        return web.json_response({}, status=200 if ok else 401)

    server.route("GET", "/me", me)
    await server.start()
    logins: list[str] = []
    transport.set_auth("p", _login_hook(server, logins))
    await transport.send(Request("GET", server.url + "/me", provider="p"))  # logs in as tok1
    results = await asyncio.gather(
        *(transport.send(Request("GET", server.url + "/me", provider="p")) for _ in range(10))
    )
    assert all(r.status == 200 for r in results)
    assert logins == ["tok1", "tok2"]


async def test_html_error_page_gives_typed_error_without_html(
    server: Server, transport: Transport
) -> None:
    def html(_: web.Request) -> web.Response:
        return web.Response(
            status=404, text="<html><body>Not here</body></html>", content_type="text/html"
        )

    server.route("GET", "/h", html)
    await server.start()
    with pytest.raises(errors.NotFoundError) as info:
        await transport.send(Request("GET", server.url + "/h"))
    assert "<html>" not in info.value.message


async def test_closed_transport_refuses(transport: Transport) -> None:
    await transport.close()
    await transport.close()
    with pytest.raises(errors.ClientClosedError):
        await transport.send(Request("GET", "http://127.0.0.1:9/"))


async def test_debug_log_has_method_url_status_but_no_secrets(
    server: Server, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("GET", "/x", (200, {}, {}))
    await server.start()
    transport.set_auth("p", TokenLogin(provider="p", token="SECRET-TOKEN"))
    with caplog.at_level(logging.DEBUG, logger="imuzekit"):
        await transport.send(
            Request(
                "GET", server.url + "/x", provider="p", params={"q": "a", "api_key": "SECRET-K"}
            )
        )
    text = caplog.text
    assert "GET" in text and "/x" in text and "200" in text and "attempt 1" in text
    assert "SECRET" not in text
    assert server.seen[0].headers["Authorization"] == "SECRET-TOKEN"


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_retry_after_past_the_callers_deadline_raises_at_once(
    server: Server, transport: Transport, how: str
) -> None:
    """A 503 asking for 5 s, under a 0.5 s deadline: the error now, not a retry after 5 s."""
    server.script("GET", "/x", (503, {"Retry-After": "5"}, {"error": "busy"}), (200, {}, {}))
    await server.start()
    request = Request("GET", server.url + "/x", provider="p")
    loop = asyncio.get_running_loop()
    started = time.monotonic()

    async def call() -> None:
        if how == "send":
            await transport.send(request)
        else:
            async with transport.stream(request):
                pass

    with deadline_scope(loop.time() + 0.5), pytest.raises(errors.ServerError) as info:
        await call()
    assert time.monotonic() - started < 0.4
    assert info.value.status == 503
    assert server.hits["GET /x"] == 1
