"""The read and total limits of buffered requests, enforced by the transport's watchdog.

The watchdog replaces aiohttp's per-request timers (see ``_Deadlines`` in ``_transport.py``);
these tests pin the behaviour callers rely on: a stalled server is given up on, a slow but
steady body is not, an outside cancellation stays a cancellation, and waiting for a pooled
connection never counts as read time.
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
from tests.transport.conftest import Server, dripping


@pytest.fixture
async def release(server: Server) -> AsyncIterator[asyncio.Event]:
    """Routes ``GET /stalled``, which answers only once this event is set; set at teardown
    (before the server stops) so that no handler is left waiting."""
    event = asyncio.Event()

    async def stalled(_: web.Request) -> web.Response:
        await event.wait()
        return web.json_response({})

    server.route("GET", "/stalled", stalled)
    yield event
    event.set()


async def test_a_stalled_response_ends_in_request_timeout_naming_the_read_limit(
    server: Server, release: asyncio.Event
) -> None:
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.1, total=5))
    started = time.monotonic()
    try:
        with pytest.raises(errors.RequestTimeout, match=r"Timeouts\.read") as info:
            await transport.send(Request("GET", server.url + "/stalled"))
        # The task is not left cancelled: the next await runs normally.
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        await asyncio.sleep(0)
    finally:
        await transport.close()
    elapsed = time.monotonic() - started
    # Given up on between the limit and the limit plus one tick (a quarter of it).
    assert 0.1 <= elapsed < 0.6
    assert info.value.sent is True  # the server may have acted on it: creates are not resent


async def test_a_slow_but_steady_body_outlasts_the_read_limit(server: Server) -> None:
    # 8 bytes, 0.06 s apart: 0.48 s in all, each gap well under the 0.2 s read limit.
    server.route("GET", "/drip", dripping(8, 0.06))
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.2, total=5))
    try:
        response = await transport.send(Request("GET", server.url + "/drip"))
    finally:
        await transport.close()
    assert response.body == b"x" * 8
    assert response.elapsed >= 0.4


async def test_the_total_limit_ends_a_body_that_keepsdripping(server: Server) -> None:
    server.route("GET", "/drip", dripping(40, 0.05))  # 2 s in all
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=1.0, total=0.3))
    started = time.monotonic()
    try:
        with pytest.raises(errors.RequestTimeout, match=r"Timeouts\.total"):
            await transport.send(Request("GET", server.url + "/drip"))
    finally:
        await transport.close()
    assert 0.3 <= time.monotonic() - started < 1.0


async def test_an_outside_cancellation_stays_a_cancellation(
    server: Server, release: asyncio.Event
) -> None:
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.2, total=5))
    try:
        task = asyncio.ensure_future(transport.send(Request("GET", server.url + "/stalled")))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Nothing stays watched, and the watchdog does not touch the finished task later.
        assert not transport._deadlines._watched
        await asyncio.sleep(0.3)
    finally:
        await transport.close()


async def test_an_outside_timeout_that_coincides_with_the_watchdog_still_propagates(
    server: Server, release: asyncio.Event
) -> None:
    await server.start()
    # The watchdog and asyncio.timeout both fire around 0.1-0.125 s; whichever wins, the
    # caller sees one of the two timeouts and the task is not left cancelled.
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.1, total=5))
    try:
        with pytest.raises((TimeoutError, errors.RequestTimeout)):
            async with asyncio.timeout(0.11):
                await transport.send(Request("GET", server.url + "/stalled"))
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
    finally:
        await transport.close()


async def test_waiting_for_a_pooled_connection_is_not_read_time(server: Server) -> None:
    async def answer_later(_: web.Request) -> web.Response:
        await asyncio.sleep(0.15)
        return web.json_response({"ok": True})

    server.route("GET", "/later", answer_later)
    await server.start()
    # One connection, four requests: the last waits about 0.45 s for the pool, more than the
    # 0.25 s read limit, yet each answer comes 0.15 s after its request leaves.
    transport = Transport(
        retry=RetryPolicy.none(), timeouts=Timeouts(read=0.25, total=5), max_connections=1
    )
    try:
        responses = await asyncio.gather(
            *(transport.send(Request("GET", server.url + "/later")) for _ in range(4))
        )
    finally:
        await transport.close()
    assert [r.status for r in responses] == [200] * 4
    assert server.hits["GET /later"] == 4


async def test_the_watchdog_stops_when_nothing_is_in_flight(server: Server) -> None:
    server.script("GET", "/x", (200, {}, {"ok": 1}))
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.04, total=5))
    try:
        await transport.send(Request("GET", server.url + "/x"))
        assert transport._deadlines._timer is not None  # checks until it sees nothing left
        await asyncio.sleep(0.05)
        assert transport._deadlines._timer is None
        await transport.send(Request("GET", server.url + "/x"))  # and starts again
        assert transport._deadlines._timer is not None
    finally:
        await transport.close()
    assert transport._deadlines._timer is None


async def test_a_timeout_in_cleanup_code_of_a_cancelled_task_is_still_a_request_timeout(
    server: Server, release: asyncio.Event
) -> None:
    # Cleanup that sends a request from `except CancelledError` runs with cancelling() == 1;
    # the watchdog's own cancellation must still become a RequestTimeout there.
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.1, total=5))
    outcome: list[BaseException] = []

    async def worker() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            try:
                await transport.send(Request("GET", server.url + "/stalled"))
            except errors.RequestTimeout as exc:
                outcome.append(exc)
            raise

    try:
        task = asyncio.ensure_future(worker())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await transport.close()
    assert len(outcome) == 1 and isinstance(outcome[0], errors.RequestTimeout)


async def test_read_time_restarts_when_the_headers_arrive(server: Server) -> None:
    # Headers after 0.12 s, the body 0.13 s later: no single wait reaches the 0.2 s limit,
    # though the whole answer takes longer than it.
    async def headers_first(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.12)
        response = web.StreamResponse(headers={"Content-Length": "2"})
        await response.prepare(request)
        await asyncio.sleep(0.13)
        await response.write(b"ok")
        await response.write_eof()
        return response

    server.route("GET", "/h", headers_first)
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.2, total=5))
    try:
        response = await transport.send(Request("GET", server.url + "/h"))
    finally:
        await transport.close()
    assert response.body == b"ok"


async def test_the_check_slows_down_again_once_a_tight_limit_is_no_longer_in_flight(
    server: Server, release: asyncio.Event
) -> None:
    server.script("GET", "/x", (200, {}, {"ok": 1}))
    await server.start()
    transport = Transport(retry=RetryPolicy.none(), timeouts=Timeouts(read=0.4, total=5))
    try:
        long_wait = asyncio.ensure_future(transport.send(Request("GET", server.url + "/stalled")))
        await asyncio.sleep(0.01)
        tight = Request("GET", server.url + "/x", timeouts=Timeouts(read=0.02, total=5))
        await transport.send(tight)
        assert transport._deadlines._tick == pytest.approx(0.005)
        await asyncio.sleep(0.05)  # a check runs with only the 0.4 s request left
        assert transport._deadlines._tick == pytest.approx(0.1)
        release.set()
        assert (await long_wait).status == 200
    finally:
        await transport.close()
