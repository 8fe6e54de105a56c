"""What the send pipeline needs from a transport: one attempt, buffered or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from imuzekit._http import Request, Response, Timeouts

__all__ = ["Adapter", "OpenStream"]


class OpenStream(Protocol):
    """An answer whose body is still to be read, holding its connection until released."""

    request: Request
    status: int
    headers: Mapping[str, str]
    url: str

    @property
    def content_length(self) -> int | None:
        """The declared body length, or None."""
        ...

    def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body in chunks of at most ``size`` bytes."""
        ...

    async def head(self, limit: int) -> bytes:
        """At most ``limit`` bytes of the body (an error answer's, for its message)."""
        ...

    def release(self) -> None:
        """Give the connection back (idempotent)."""
        ...


class Adapter(Protocol):
    """One attempt on the wire. Raises `imuzekit.errors.TransportError` (with ``sent``) when no
    answer could be had and `imuzekit.errors.ClientClosedError` once closed; never retries."""

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        ...

    async def send(
        self,
        request: Request,
        attempt: int,
        auth_header: tuple[str, str] | None,
        timeouts: Timeouts,
    ) -> Response:
        """Send ``request`` (plus ``auth_header``, when given) and read the whole answer."""
        ...

    async def open(
        self,
        request: Request,
        attempt: int,
        auth_header: tuple[str, str] | None,
        timeouts: Timeouts,
    ) -> OpenStream:
        """Send ``request`` and return the answer with its body unread."""
        ...

    async def close(self) -> None:
        """Close the connections; safe to call more than once."""
        ...
