"""The aiohttp side of the receiver: `build_app` (mount it anywhere) and `serve` (standalone).

The only module of `imuzekit.webhooks` that imports aiohttp; `Webhooks` loads it on demand.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from imuzekit.webhooks._receiver import Listener

if TYPE_CHECKING:
    import socket

    from imuzekit.webhooks._receiver import Webhooks

__all__ = ["build_app", "serve"]

_CHUNK = 64 * 1024
_ANSWERS = {
    200: "ok",
    202: "accepted",
    400: "malformed callback",
    401: "unauthenticated callback",
    403: "callback of another job",
    404: "unknown job",
    413: "callback too large",
    415: "unsupported content type",
}


def _answer(status: int, *, close: bool = False) -> web.Response:
    # A fixed, short body: nothing from the callback (nor any secret) is echoed back.
    response = web.json_response({"status": _ANSWERS.get(status, "refused")}, status=status)
    if close:
        response.force_close()
    return response


async def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(_CHUNK):
        yield chunk


def build_app(webhooks: Webhooks) -> web.Application:
    """An application answering ``POST`` at its root (where it is mounted) with `receive`."""

    async def on_post(request: web.Request) -> web.Response:
        declared = request.content_length
        if declared is not None and declared > webhooks.max_body_bytes:
            # Refused before a byte of the body is read; the connection is closed rather
            # than drained.
            return _answer(await webhooks.receive(request.headers, b""), close=True)
        status = await webhooks.receive(request.headers, _chunks(request))
        return _answer(status, close=status == 413)

    # aiohttp reads at most this much itself; the receiver's own limit is stricter.
    app = web.Application(client_max_size=webhooks.max_body_bytes + 1)
    app.router.add_post("", on_post)
    app.router.add_post("/", on_post)
    return app


@contextlib.asynccontextmanager
async def serve(
    webhooks: Webhooks, host: str, port: int | None, sock: socket.socket | None
) -> AsyncIterator[Listener]:
    """Serve `build_app` at the path of ``public_url`` until the block exits."""
    if webhooks.path == "/":
        root = build_app(webhooks)
    else:
        root = web.Application()
        root.add_subapp(webhooks.path, build_app(webhooks))
    runner = web.AppRunner(root, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site: web.BaseSite
        if sock is not None:
            site = web.SockSite(runner, sock)
        else:
            if port is None:
                parts = urlsplit(webhooks.public_url)
                port = parts.port or (443 if parts.scheme == "https" else 80)
            site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
        yield Listener(
            host=str(bound_host),
            port=int(bound_port),
            url=f"http://{shown}:{bound_port}{webhooks.path}",
        )
    finally:
        await runner.cleanup()
