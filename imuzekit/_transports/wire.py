"""`WireAdapter`: any ``handle(request) -> Response`` transport as the pipeline's `Adapter`.

`imuzekit.testing.MockTransport` is one: with it the whole pipeline (gate, logins, retries,
error mapping, streams) runs and no socket is opened. Streams get the buffered answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping

import attrs

from imuzekit import errors
from imuzekit._http import Request, Response, Timeouts, WireTransport

__all__ = ["BufferedStream", "WireAdapter"]


class BufferedStream:
    """A whole `Response` served as an `imuzekit._transports.OpenStream`."""

    __slots__ = ("_body", "_offset", "headers", "request", "status", "url")

    def __init__(self, response: Response, request: Request) -> None:
        self.request = request
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self.url = response.url or request.full_url
        self._body = response.body
        self._offset = 0

    @property
    def content_length(self) -> int | None:
        """The length of the buffered body."""
        return len(self._body)

    async def head(self, limit: int) -> bytes:
        """The next ``limit`` bytes at most."""
        chunk = self._body[self._offset : self._offset + limit]
        self._offset += len(chunk)
        return chunk

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The rest of the body in chunks of at most ``size`` bytes."""
        while chunk := await self.head(size):
            yield chunk

    def release(self) -> None:
        """Nothing to give back: there is no connection."""


class WireAdapter:
    """Adapts a `WireTransport` (``handle``) to the pipeline, with the body size limit."""

    def __init__(self, wire: WireTransport, *, max_body_bytes: int) -> None:
        self.wire = wire
        self.max_body_bytes = max_body_bytes
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    async def send(
        self,
        request: Request,
        attempt: int,
        auth_header: tuple[str, str] | None,
        timeouts: Timeouts,
    ) -> Response:
        """Hand ``request`` (its auth header added) to the wire; refuse an oversized answer."""
        if self._closed:
            raise errors.ClientClosedError(
                "this imuzekit Client is closed; create a new Client to send more requests"
            )
        prepared = request if auth_header is None else request.with_header(*auth_header)
        started = time.monotonic()
        response = await self.wire.handle(prepared)
        if len(response.body) > self.max_body_bytes:
            raise errors.ParseError(
                f"response body exceeds the {self.max_body_bytes}-byte limit", body=None
            )
        return attrs.evolve(response, elapsed=time.monotonic() - started)

    async def open(
        self,
        request: Request,
        attempt: int,
        auth_header: tuple[str, str] | None,
        timeouts: Timeouts,
    ) -> BufferedStream:
        """The wire's whole answer, served as a stream."""
        prepared = request if auth_header is None else request.with_header(*auth_header)
        return BufferedStream(await self.send(prepared, attempt, None, timeouts), prepared)

    async def close(self) -> None:
        """Refuse further requests (the wire itself has nothing to close)."""
        self._closed = True
