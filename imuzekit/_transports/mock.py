"""`MockTransport`: a transport that answers from a function, and `respond` to build answers.

Public as `imuzekit.testing.MockTransport` and `imuzekit.testing.respond`.
"""

from __future__ import annotations

import inspect
import json as jsonlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from imuzekit._http import Request, Response

__all__ = ["Handler", "MockTransport", "respond"]

Handler = Callable[[Request], "Response | Awaitable[Response]"]
"""A function (plain or async) from the `Request` sent to the `Response` to answer."""

_NO_JSON = object()


def respond(
    request: Request,
    status: int = 200,
    *,
    json: Any = _NO_JSON,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A `Response` to ``request``: ``json=`` (encoded, with its content type) or raw ``body``."""
    answer_headers = dict(headers or {})
    if json is not _NO_JSON:
        body = jsonlib.dumps(json).encode()
        answer_headers.setdefault("Content-Type", "application/json")
    return Response(status, answer_headers, body, request=request, url=request.full_url)


class MockTransport:
    """A `WireTransport` that answers every request with ``handler(request)``, and records them.

    ``requests`` lists what was sent, authentication included, in order.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []

    async def handle(self, request: Request) -> Response:
        """Answer ``request`` with the handler's `Response` (awaited when it is a coroutine)."""
        self.requests.append(request)
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, Response):
            raise TypeError(
                f"a MockTransport handler must return an imuzekit.http.Response, "
                f"got {type(answer).__name__} (imuzekit.testing.respond builds one)"
            )
        return answer
