"""The read limit of streamed bodies (downloads): the watchdog until the headers, then `Stall`.

A streamed read that waits ``Timeouts.read`` without a byte fails with `RequestTimeout`; a slow
but steady body does not; a caller that stops reading for a while (its buffer full) is never
taken for a silent server; the header wait is bounded as for buffered calls; and the one timer
per stream stops with the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from imuzekit import errors
from imuzekit._http import Request, Timeouts
from imuzekit._retry import RetryPolicy
from imuzekit._transport import Transport
from tests.transport.conftest import Server, dripping, stalling


@pytest.fixture
async def release(server: Server) -> AsyncIterator[asyncio.Event]:
    """Set at teardown (before the server stops) so that no handler is left waiting."""
    event = asyncio.Event()
    yield event
    event.set()


async def _read_all(transport: Transport, url: str) -> bytes:
    received = bytearray()
    async with transport.stream(Request("GET", url)) as answer:
        async for chunk in answer.chunks(1024):
            received += chunk
    return bytes(received)


async def test_a_body_that_stalls_mid_way_ends_in_request_timeout(
    server: Server, release: asyncio.Event
) -> None:
    server.route("GET", "/half", stalling(b"a" * 100, 200, release))
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.15, total=5))
    received = bytearray()

    async def read() -> None:
        async with transport.stream(Request("GET", server.url + "/half")) as answer:
            async for chunk in answer.chunks(1024):
                received.extend(chunk)

    started = time.monotonic()
    try:
        with pytest.raises(errors.RequestTimeout, match="reading the body"):
            await read()
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # a failed read, not a cancellation
    finally:
        await transport.close()
    assert bytes(received) == b"a" * 100
    # Given up on once a read has waited the limit (the timer fires exactly then).
    assert 0.15 <= time.monotonic() - started < 0.6


async def test_a_slow_but_steady_streamed_body_outlasts_the_read_limit(server: Server) -> None:
    # 8 bytes, 0.06 s apart: 0.48 s in all, each gap well under the 0.2 s read limit.
    server.route("GET", "/drip", dripping(8, 0.06))
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.2, total=5))
    started = time.monotonic()
    try:
        body = await _read_all(transport, server.url + "/drip")
    finally:
        await transport.close()
    assert body == b"x" * 8
    assert time.monotonic() - started >= 0.4


async def test_a_caller_that_pauses_between_reads_is_not_taken_for_a_silent_server(
    server: Server,
) -> None:
    # The whole body arrives at once; the caller then takes longer than the read limit
    # before each of its reads (busy elsewhere): no byte is late on the wire.
    server.route("GET", "/all", lambda _: web.Response(body=b"z" * 3000))
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.1, total=5))
    received = bytearray()
    try:
        async with transport.stream(Request("GET", server.url + "/all")) as answer:
            async for chunk in answer.chunks(1000):
                received += chunk
                await asyncio.sleep(0.25)
    finally:
        await transport.close()
    assert bytes(received) == b"z" * 3000


async def test_the_header_wait_of_a_stream_is_bounded_by_the_read_limit(
    server: Server, release: asyncio.Event
) -> None:
    async def no_headers(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=b"late")

    server.route("GET", "/silent", no_headers)
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.1, total=5))
    started = time.monotonic()
    try:
        with pytest.raises(errors.RequestTimeout, match=r"Timeouts\.read"):
            await _read_all(transport, server.url + "/silent")
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        assert transport.adapter._in_flight == 0  # the failed open gave its count back
    finally:
        await transport.close()
    assert 0.1 <= time.monotonic() - started < 0.6


async def test_an_outside_cancellation_of_a_stream_stays_a_cancellation(
    server: Server, release: asyncio.Event
) -> None:
    server.route("GET", "/half", stalling(b"a" * 10, 20, release))
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.3, total=5))
    try:
        task = asyncio.ensure_future(_read_all(transport, server.url + "/half"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert transport.adapter._in_flight == 0
    finally:
        await transport.close()


async def test_a_stream_behind_a_full_pool_keeps_aiohttps_own_read_timer(
    server: Server, release: asyncio.Event
) -> None:
    # With every pooled connection taken, the watchdog could count pool waiting as read
    # time: aiohttp's own timers apply, and a stalled body still ends in RequestTimeout.
    server.route("GET", "/half", stalling(b"a" * 10, 20, release))
    await server.start()
    transport = Transport(
        retry=RetryPolicy.none(), timeouts=Timeouts(read=0.15, total=5), max_connections=1
    )
    try:
        transport.adapter._in_flight = 1  # as if another request held the one connection
        async with transport.stream(Request("GET", server.url + "/half")) as answer:
            assert answer._stall is None
            chunks = answer.chunks(1024)
            assert await chunks.__anext__() == b"a" * 10
            with pytest.raises(errors.RequestTimeout, match="reading the body"):
                await chunks.__anext__()  # then nothing: aiohttp's own timer ends it
        transport.adapter._in_flight -= 1
    finally:
        await transport.close()


async def test_the_stall_timer_stops_with_the_stream(server: Server) -> None:
    server.route("GET", "/all", lambda _: web.Response(body=b"z" * 10))
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=30, total=60))
    try:
        async with transport.stream(Request("GET", server.url + "/all")) as answer:
            stall = answer._stall
            assert stall is not None and stall._timer is not None
            assert b"".join([chunk async for chunk in answer.chunks(4)]) == b"z" * 10
        assert stall._timer is None  # released: nothing left scheduled for 30 s from now
    finally:
        await transport.close()
