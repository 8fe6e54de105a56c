"""One send pipeline: buffered calls and streams go through the same loop and decisions.

Each test runs the same scenario through ``send`` and ``stream`` where it applies: what the
server saw (hits, times, headers) and what the caller got must match.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from imuzekit import errors
from imuzekit._http import Request, Timeouts
from imuzekit._retry import RetryPolicy, deadline_scope
from imuzekit._transport import Transport
from tests.transport.conftest import Server

FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.02)


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport(retry=FAST, timeouts=Timeouts(connect=2, read=2, total=5), trust_env=False)
    yield t
    await t.close()


async def _call(transport: Transport, request: Request, how: str) -> int:
    if how == "send":
        return (await transport.send(request)).status
    async with transport.stream(request) as response:
        body = b"".join([chunk async for chunk in response.chunks(1024)])
        assert body == b'{"ok": 1}'
        return response.status


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_5xx_retry_after_is_honoured_alike(
    server: Server, transport: Transport, how: str
) -> None:
    server.script(
        "GET", "/x", (503, {"Retry-After": "0.3"}, {"error": "busy"}), (200, {}, {"ok": 1})
    )
    await server.start()
    assert await _call(transport, Request("GET", server.url + "/x", provider="p"), how) == 200
    assert server.hits["GET /x"] == 2
    assert server.times[1] - server.times[0] >= 0.28


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_429_pauses_the_gate_alike(server: Server, transport: Transport, how: str) -> None:
    server.script("GET", "/x", (429, {"retry-after-ms": "300"}, {}), (200, {}, {"ok": 1}))
    await server.start()
    assert await _call(transport, Request("GET", server.url + "/x", provider="p"), how) == 200
    assert server.times[1] - server.times[0] >= 0.28
    assert transport.gate("p").until > 0


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_429_on_the_last_attempt_still_pauses_the_others(server: Server, how: str) -> None:
    """The server said when to come back: the next call waits even though this one gave up."""
    server.script("GET", "/a", (429, {"retry-after-ms": "300"}, {"error": "slow down"}))
    server.script("GET", "/b", (200, {}, {"ok": 1}))
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), trust_env=False)
    try:
        with pytest.raises(errors.RateLimitError) as info:
            await _call(transport, Request("GET", server.url + "/a", provider="p"), how)
        assert info.value.retry_after == pytest.approx(0.3)
        started = time.monotonic()
        await _call(transport, Request("GET", server.url + "/b", provider="p"), how)
    finally:
        await transport.close()
    assert time.monotonic() - started >= 0.25


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_one_info_line_per_retry_alike(
    server: Server, transport: Transport, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    server.script("GET", "/x", (503, {}, {}), (502, {}, {}), (200, {}, {"ok": 1}))
    await server.start()
    with caplog.at_level(logging.INFO, logger="imuzekit"):
        await _call(transport, Request("GET", server.url + "/x", provider="p"), how)
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.getMessage().split(" (")[1][:4] for r in infos] == ["503)", "502)"]


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_refused_connection_is_retried_and_logged_alike(
    caplog: pytest.LogCaptureFixture, how: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = Transport(retry=FAST, trust_env=False)
    try:
        with (
            caplog.at_level(logging.INFO, logger="imuzekit"),
            pytest.raises(errors.TransportError) as info,
        ):
            await _call(transport, Request("GET", f"http://127.0.0.1:{port}/x"), how)
    finally:
        await transport.close()
    assert info.value.sent is False
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == FAST.max_attempts - 1


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_paid_create_answered_500_is_sent_once_alike(
    server: Server, transport: Transport, how: str
) -> None:
    server.script("POST", "/songs", (500, {}, {"error": "boom"}))
    await server.start()
    request = Request("POST", server.url + "/songs", provider="p", json={"title": "Morning Song"})
    with pytest.raises(errors.ServerError):
        await _call(transport, request, how)
    assert server.hits["POST /songs"] == 1


async def test_a_views_timeout_applies_to_its_calls_only(server: Server) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.4)
        return web.json_response({"ok": 1})

    server.route("GET", "/slow", slow)
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(total=5), trust_env=False)
    try:
        hurried = transport.with_options(timeout=0.1)
        started = time.monotonic()
        with pytest.raises(errors.RequestTimeout):
            await hurried.send(Request("GET", server.url + "/slow"))
        assert time.monotonic() - started < 0.35
        assert (await transport.send(Request("GET", server.url + "/slow"))).status == 200
    finally:
        await transport.close()


@pytest.mark.parametrize("how", ["send", "stream"])
async def test_a_connection_retry_is_not_waited_for_past_the_deadline(how: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Backoffs of up to 5 s, a deadline 0.2 s away: no wait may outlast the deadline.
    transport = Transport(retry=RetryPolicy(backoff_base=5, backoff_max=5), trust_env=False)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        with deadline_scope(loop.time() + 0.2), pytest.raises(errors.TransportError) as info:
            await _call(transport, Request("GET", f"http://127.0.0.1:{port}/x"), how)
    finally:
        await transport.close()
    assert info.value.sent is False
    assert time.monotonic() - started < 0.6
