"""Shared fixtures of the transport tests: a scripted aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web


class Server:
    """A scripted aiohttp server: each route answers from a queue of (status, headers, body)."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.hits: dict[str, int] = {}
        self.seen: list[web.Request] = []
        self.times: list[float] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    def route(self, method: str, path: str, handler: Callable[[web.Request], Any]) -> None:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            key = f"{method} {path}"
            self.hits[key] = self.hits.get(key, 0) + 1
            self.seen.append(request)
            self.times.append(time.monotonic())
            result = handler(request)
            if asyncio.iscoroutine(result):
                result = await result
            return result  # type: ignore[no-any-return]

        self.app.router.add_route(method, path, wrapped)

    def script(self, method: str, path: str, *answers: tuple[int, dict[str, str], Any]) -> None:
        queue = list(answers)

        def handler(_: web.Request) -> web.Response:
            status, headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
            return web.json_response(body, status=status, headers=headers)

        self.route(method, path, handler)

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    yield srv
    await srv.stop()


def dripping(chunks: int, pause: float) -> web.RequestHandler:  # type: ignore[type-arg]
    """A handler that sends ``chunks`` bytes one at a time, ``pause`` seconds apart."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(chunks)})
        await response.prepare(request)
        for _ in range(chunks):
            await asyncio.sleep(pause)
            await response.write(b"x")
        await response.write_eof()
        return response

    return handler


def stalling(first: bytes, length: int, release: asyncio.Event) -> web.RequestHandler:  # type: ignore[type-arg]
    """A handler that declares ``length`` bytes, sends ``first`` and then nothing until
    ``release`` is set (a transfer in flight for as long as a test needs)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = length
        await response.prepare(request)
        await response.write(first)
        await release.wait()
        return response

    return handler
