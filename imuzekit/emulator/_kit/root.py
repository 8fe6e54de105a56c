"""The root application every emulated provider is mounted on.

`build_root_app` mounts each provider's applications (each a `Mount`: the provider's own at its
base URL, plus those it serves outside it, such as Mureka's CDN) with ``add_subapp`` and wraps
everything in one middleware that

- identifies the provider and the path relative to its base URL,
- applies the first matching `Fault` (delay, reset, injected status, response corruption),
- turns every error, aiohttp's own 404/405/413 included, into the JSON error shape
  ``{"error": "...", "code": N}``,
- records a `LoggedRequest` and bumps the exact per-route counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import math
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping

import attrs
from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from imuzekit.emulator._clock import Clock
from imuzekit.emulator._faults import Fault, Faults

from .http import MAX_BODY_BYTES, json_error, json_response
from .routes import Handler, Mount

__all__ = ["LoggedRequest", "RequestLog", "build_root_app"]

_logger = logging.getLogger("imuzekit.emulator")


@attrs.frozen
class LoggedRequest:
    """One request the emulator answered (or dropped), as recorded in `emu.requests`."""

    provider: str
    """Provider name, or ``""`` for a path outside every provider."""
    method: str
    path: str
    """Path relative to the provider's base URL (``/songs/12``)."""
    query: Mapping[str, str]
    status: int
    """Status sent; 0 when the connection was dropped (a ``reset`` fault) or never answered."""
    at: float
    """Emulator clock time (`Clock.now()`) when the request arrived."""
    wall: float
    """`time.monotonic()` when the request arrived."""
    route: str
    """The route template that matched (``/songs/{id}``), else the literal path."""


@attrs.define
class RequestLog:
    """A bounded log of recent requests plus exact counters that never forget.

    The deque keeps the last `limit` requests; the counters, keyed by (provider, method, route
    template), count every request ever answered, so benchmarks can assert totals on runs far
    longer than the log.
    """

    limit: int = 100_000
    entries: deque[LoggedRequest] = attrs.field(init=False)
    counters: Counter[tuple[str, str, str]] = attrs.field(factory=Counter, init=False)

    def __attrs_post_init__(self) -> None:
        self.entries = deque(maxlen=self.limit)

    def record(self, entry: LoggedRequest) -> None:
        """Append one request and count it."""
        self.entries.append(entry)
        self.counters[entry.provider, entry.method, entry.route] += 1

    def count(self, provider: str, method: str | None = None, path_glob: str | None = None) -> int:
        """How many requests matched: exact, from the counters, whatever the log's limit.

        `path_glob` is an fnmatch glob matched against the route template (``/songs/{id}``,
        so ``"/songs/*"`` counts every song lookup) and, for unrouted requests, the literal path.
        """
        wanted_method = method.upper() if method is not None else None
        return sum(
            n
            for (prov, meth, route), n in self.counters.items()
            if prov == provider
            and (wanted_method is None or meth == wanted_method)
            and (path_glob is None or fnmatch.fnmatchcase(route, path_glob))
        )

    def clear(self) -> None:
        """Forget every logged request and reset the counters."""
        self.entries.clear()
        self.counters.clear()


@attrs.frozen
class _Mount:
    name: str
    prefix: str
    # Replaces `prefix` in the provider-relative path: "" for the provider's own application.
    label: str = ""


_MOUNT = web.AppKey("imuzekit_emulator_mount", _Mount)


# --------------------------------------------------------------------------------------------
# The middleware: provider resolution, faults, JSON errors, the request log


def _http_exception_response(exc: web.HTTPException) -> web.Response:
    # Keep meaningful headers such as Allow (405) but not aiohttp's text/plain framing.
    headers = {
        key: value
        for key, value in exc.headers.items()
        if key.lower() not in ("content-type", "content-length")
    }
    message = "Not found" if exc.status == 404 else exc.reason
    return json_error(exc.status, message, headers=headers)


async def _call(handler: Handler, request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.empty_body or exc.status < 400:
            raise
        return _http_exception_response(exc)


def _drop_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # A zero linger turns close() into a TCP RST, which is what a crashed proxy or a
        # load balancer killing the connection looks like to a client.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _injected_response(fault: Fault, status: int) -> web.Response:
    body = fault.body
    if body is None:
        return json_error(status, "injected fault")
    if isinstance(body, str):
        return web.Response(text=body, status=status, content_type="text/plain")
    if isinstance(body, bytes):
        return web.Response(body=body, status=status, content_type="application/octet-stream")
    return json_response(body, status=status)


def _fault_headers(fault: Fault) -> dict[str, str]:
    headers = dict(fault.headers or {})
    if fault.retry_after is not None:
        headers["Retry-After"] = str(math.ceil(fault.retry_after))
        headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
    return headers


async def _corrupt_body(
    request: web.Request, response: web.StreamResponse, fault: Fault, faults: Faults
) -> web.StreamResponse:
    if request.method == hdrs.METH_HEAD or not isinstance(response, web.Response):
        return response
    body = response.body
    if not isinstance(body, (bytes, bytearray)):
        return response
    data = faults.garbage(len(body)) if fault.garbage else bytes(body)
    if fault.truncate is None and fault.content_length is None:
        response.body = data
        return response

    declared = fault.content_length if fault.content_length is not None else len(data)
    sent = min(declared, len(data))
    if fault.truncate is not None:
        sent = min(sent, fault.truncate)
    lying = web.StreamResponse(status=response.status, reason=response.reason)
    for key, value in response.headers.items():
        if key.lower() not in ("content-length", "transfer-encoding"):
            lying.headers.add(key, value)
    lying.content_length = declared
    # Closing after the body is what makes the lie observable: the client is left waiting for
    # bytes that never come (a payload error) instead of reading them from the next response.
    lying.force_close()
    await lying.prepare(request)
    await lying.write(data[:sent])
    return lying


async def _respond_with_fault(
    request: web.Request, handler: Handler, fault: Fault, faults: Faults
) -> tuple[web.StreamResponse, int]:
    if fault.read_first:
        # The whole request is received (aiohttp keeps the body), so the handler still acts
        # when the client is gone by the time the delay ends.
        await request.read()
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.after_handler:
        # The handler's side effects stay; its answer is replaced below (add() guarantees a
        # status or a reset follows, so the handler never runs twice).
        await _call(handler, request)
    if fault.reset:
        _drop_connection(request)
        # aiohttp fails to write this to the aborted transport and closes quietly.
        return web.Response(status=204), 0
    extra_headers = _fault_headers(fault)
    if fault.status is not None:
        injected = _injected_response(fault, fault.status)
        injected.headers.update(extra_headers)
        return injected, injected.status

    target = request
    if fault.ignore_range and hdrs.RANGE in request.headers:
        headers = CIMultiDict(request.headers)
        headers.popall(hdrs.RANGE)
        target = request.clone(headers=headers)
    response = await _call(handler, target)
    response.headers.update(extra_headers)
    if fault.touches_response:
        response = await _corrupt_body(request, response, fault, faults)
    return response, response.status


def _make_middleware(clock: Clock, faults: Faults, log: RequestLog) -> Middleware:
    @web.middleware
    async def emulate(request: web.Request, handler: Handler) -> web.StreamResponse:
        at = clock.now()
        wall = time.monotonic()
        match_info = request.match_info
        apps = match_info.apps
        mount = apps[-1].get(_MOUNT) if apps else None
        path = request.path
        if mount is None:
            provider, relative = "", path
        else:
            provider, relative = mount.name, mount.label + (path[len(mount.prefix) :] or "/")
        resource = match_info.route.resource
        route = relative
        if resource is not None and mount is not None:
            route = mount.label + (resource.canonical[len(mount.prefix) :] or "/")

        status = 0
        try:
            fault = faults.take(provider, request.method, relative) if mount else None
            if fault is None:
                response = await _call(handler, request)
                status = response.status
            else:
                response, status = await _respond_with_fault(request, handler, fault, faults)
            return response
        except ConnectionError:
            # The client left mid-response (e.g. during a lying Content-Length): nobody to
            # answer, and aiohttp drops this placeholder quietly.
            status = 0
            return web.Response(status=204)
        except Exception:
            # Never let a handler bug surface as aiohttp's HTML 500: clients parse JSON.
            _logger.exception("emulator handler failed on %s %s", request.method, path)
            status = 500
            return json_error(500, "Internal server error")
        finally:
            log.record(
                LoggedRequest(
                    provider=provider,
                    method=request.method,
                    path=relative,
                    query=dict(request.query),
                    status=status,
                    at=at,
                    wall=wall,
                    route=route,
                )
            )

    return emulate


def build_root_app(
    mounts: Iterable[Mount], *, clock: Clock, faults: Faults, log: RequestLog
) -> web.Application:
    """Build the application the emulator serves: every provider application at its prefix."""
    root = web.Application(
        middlewares=[_make_middleware(clock, faults, log)], client_max_size=MAX_BODY_BYTES
    )
    for mount in mounts:
        mount.app[_MOUNT] = _Mount(mount.name, mount.prefix, mount.label)
        root.add_subapp(mount.prefix, mount.app)
    return root
