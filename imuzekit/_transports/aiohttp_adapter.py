"""`AiohttpAdapter`: the one piece of imuzekit that does HTTP, over one ``aiohttp.ClientSession``.

Only the mechanics of one attempt live here: the pool (opened on first use, on the loop it
belongs to), proxies, TLS, timeouts (the watchdog of `imuzekit._transports._watchdog`), body
size limits, aiohttp's exceptions mapped to imuzekit's (`_wire.wire_error`) and a DEBUG line per
request. Retries, authentication and the rate-limit gate are the pipeline's
(`imuzekit._pipeline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from ssl import SSLContext
from typing import Any

import aiohttp
from aiohttp.helpers import proxies_from_env

from imuzekit import errors
from imuzekit._checks import flag
from imuzekit._http import Request, Response, Timeouts, redact_url
from imuzekit._transports._watchdog import Deadlines, Limits, Stall, Watch
from imuzekit._transports._wire import (
    EnvProxies,
    StreamResponse,
    encode_body,
    has_body,
    wire_error,
    wire_url,
)

__all__ = ["AiohttpAdapter", "check_http_setup"]

_log = logging.getLogger("imuzekit.http")

# How long close() from a foreign loop waits for the owning loop to close the pool.
_CROSS_LOOP_CLOSE_TIMEOUT = 5.0
_NO_PROXY: tuple[None, None] = (None, None)


def check_http_setup(
    session: object,
    proxy: object,
    trust_env: object,
    ssl: object,
    verify_ssl: bool,
    trace_configs: object,
) -> None:
    """Refuse a wrong ``Client(session=, proxy=, trust_env=, ssl=, verify_ssl=, trace_configs=)``
    with `ValidationError` naming the argument, before anything is built."""
    if session is not None and not isinstance(session, aiohttp.ClientSession):
        raise errors.ValidationError(
            "session", f"must be an aiohttp.ClientSession, got {type(session).__name__}"
        )
    if proxy is not None and (
        not isinstance(proxy, str) or not proxy.lower().startswith(("http://", "https://"))
    ):
        raise errors.ValidationError("proxy", "must be an http:// or https:// URL")
    flag("trust_env", trust_env)
    if ssl is not None and not isinstance(ssl, SSLContext | bool):
        raise errors.ValidationError(
            "ssl", f"must be an ssl.SSLContext or a bool, got {type(ssl).__name__}"
        )
    if ssl is not None and ssl is not False and not verify_ssl:
        raise errors.ValidationError("ssl", "verify_ssl=False contradicts ssl=...; give one")
    if isinstance(trace_configs, str | bytes) or not all(
        isinstance(config, aiohttp.TraceConfig)
        for config in trace_configs  # type: ignore[attr-defined]
    ):
        raise errors.ValidationError("trace_configs", "must be a sequence of aiohttp.TraceConfig")
    if session is not None and trace_configs:
        raise errors.ValidationError(
            "trace_configs", "give them to your own session (session=...) instead"
        )


class AiohttpAdapter:
    """One attempt at a time over one connection pool (see the module docstring).

    A session the caller passes is used as it is and never closed here. Once closed, the
    adapter stays closed (`imuzekit.errors.ClientClosedError`).
    """

    def __init__(
        self,
        *,
        max_connections: int,
        max_body_bytes: int,
        ssl: SSLContext | bool,
        user_agent: str,
        user_agent_given: bool,
        session: aiohttp.ClientSession | None,
        proxy: str | None,
        trust_env: bool,
        trace_configs: Sequence[aiohttp.TraceConfig],
        default_headers: Mapping[str, str],
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.ssl = ssl
        self.user_agent = user_agent
        self.proxy = proxy
        self.trust_env = trust_env
        self.trace_configs = tuple(trace_configs)
        self.default_headers = dict(default_headers)
        self.own_session = session is None
        self.max_connections = max_connections
        if session is not None and session.connector is not None:
            # Its pool's limit decides when a request may wait for a connection (0: no limit).
            self.max_connections = session.connector.limit or 2**31
        # Headers that must go with every request of a caller's session (ours has them built in).
        self._session_headers: dict[str, str] | None = None
        if session is not None:
            extra = dict(self.default_headers)
            if user_agent_given or "User-Agent" not in session.headers:
                extra.setdefault("User-Agent", self.user_agent)
            self._session_headers = extra or None
        # The proxy of every request, or the environment's per origin (decided when the pool
        # opens: no environment proxy at all, the common case, costs nothing per request).
        self._fixed_proxy: tuple[str | None, None] = (proxy, None) if proxy else _NO_PROXY
        self._env_proxies: EnvProxies | None = None
        self._session: aiohttp.ClientSession | None = session
        # The loop the session was opened on: the pool, its sockets and timers belong to it.
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._limits: dict[Timeouts, Limits] = {}
        self._last_limits: tuple[Timeouts, Limits] | None = None
        self.deadlines = Deadlines()
        # Requests holding or about to take a pooled connection. Below max_connections none of
        # them can wait in aiohttp's pool, so a deadline may start counting at once.
        self._in_flight = 0

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The pool in use (None before the first request, and after close)."""
        return self._session

    async def close(self) -> None:
        """Close the connection pool (unless it is the caller's); safe to call more than once."""
        self._closed = True
        self.deadlines.close()
        session, self._session = self._session, None
        if not self.own_session:
            return  # the caller's session: the caller closes it
        if session is not None and not session.closed:
            owner = self._session_loop
            if owner is None or owner is asyncio.get_running_loop():
                await session.close()
            elif owner.is_running():
                # Closed from another loop (after a LoopMismatchError): the pool is closed on
                # the loop it belongs to, which runs in another thread.
                closing = asyncio.run_coroutine_threadsafe(session.close(), owner)
                # Bounded: a loop that stops running before it gets to the close never answers.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.wrap_future(closing), _CROSS_LOOP_CLOSE_TIMEOUT)
            elif not owner.is_closed():
                self._session = session  # a later close() on its own loop can still close it

    def get_session(self) -> aiohttp.ClientSession:
        """The pool, opened on first use; refused when closed or used from another loop."""
        if self._closed:
            raise errors.ClientClosedError(
                "this imuzekit Client is closed; create a new Client to send more requests"
            )
        loop = asyncio.get_running_loop()
        if self._session_loop is None and self._session is not None:
            self._session_loop = loop  # the caller's session, first used now
        if self._session is not None and loop is not self._session_loop:
            # Without this check aiohttp fails deep inside (often "Event loop is closed"), which
            # reads as a connection failure and is retried for a second before surfacing.
            raise errors.LoopMismatchError(
                "this imuzekit Client belongs to the event loop it first sent on; create one "
                "Client per event loop (per asyncio.run) instead of sharing one"
            )
        if self._session is None:
            self._session_loop = loop
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                ssl=self.ssl,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.user_agent, **self.default_headers},
                raise_for_status=False,
                # Environment proxies are looked up by _request, once per origin.
                trust_env=False,
                trace_configs=list(self.trace_configs) or None,
            )
            if self.proxy is None and self.trust_env and proxies_from_env():
                self._env_proxies = EnvProxies()
        return self._session

    def _limits_for(self, timeouts: Timeouts) -> Limits:
        # Nearly every request uses the Client's timeouts: an identity check is cheaper than
        # hashing the attrs value for the dict look-up below.
        last = self._last_limits
        if last is not None and last[0] is timeouts:
            return last[1]
        cached = self._limits.get(timeouts)
        if cached is None:
            cached = self._limits[timeouts] = Limits(timeouts)
        self._last_limits = (timeouts, cached)
        return cached

    def _headers(self, request: Request, auth_header: tuple[str, str] | None) -> Any:
        headers: Any = (auth_header,) if auth_header is not None else request.headers or None
        if auth_header is not None and request.headers:
            headers = (*request.headers, auth_header)
        if self._session_headers is not None:  # a caller's session lacks our defaults
            headers = {**self._session_headers, **dict(headers or ())}
        return headers

    def _request(
        self,
        session: aiohttp.ClientSession,
        request: Request,
        headers: Any,
        data: Any,
        timeout: aiohttp.ClientTimeout,
    ) -> Any:
        """aiohttp's request, not awaited (a plain call: no coroutine frame of its own)."""
        # ``proxy=`` applies to every request; otherwise, with ``trust_env`` and our own session,
        # HTTP_PROXY/HTTPS_PROXY/NO_PROXY (and .netrc credentials) decide, exactly as aiohttp
        # reads them, once per origin; with none set (the common case) nothing is looked up. A
        # caller's session applies its own ``trust_env``.
        env = self._env_proxies
        proxy, proxy_auth = self._fixed_proxy if env is None else env.lookup(request.url)
        return session.request(
            request.method,
            wire_url(request),
            params=request.params or None,
            headers=headers,
            data=data,
            timeout=timeout,
            allow_redirects=request.allow_redirects,
            proxy=proxy,
            proxy_auth=proxy_auth,
        )

    async def send(
        self,
        request: Request,
        attempt: int,
        auth_header: tuple[str, str] | None,
        timeouts: Timeouts,
    ) -> Response:
        """Send ``request`` and read its whole answer, within ``timeouts``."""
        # close() clears _session, so this is get_session() without the call in the common case
        # (same session, same loop).
        session = self._session
        if session is None or self._session_loop is not asyncio.get_running_loop():
            session = self.get_session()
        started = time.monotonic()
        debug = _log.isEnabledFor(logging.DEBUG)
        # Redacted only when it will be logged: parsing and re-encoding a URL on every request
        # costs more than the rest of this method.
        safe_url = redact_url(request.full_url) if debug else ""
        limits = self._limits_for(timeouts)
        with_body = has_body(request)
        watch = self._watch(request, limits, with_body)
        self._in_flight += 1
        try:
            # Awaited and released by hand rather than `async with`: the context managers add
            # four coroutine frames per request, and the body is read completely right here.
            raw = await self._request(
                session,
                request,
                self._headers(request, auth_header),
                encode_body(request) if with_body else None,
                limits.aiohttp_timeout if watch is None else limits.connect_only,
            )
            if watch is not None:
                self.deadlines.answered(watch, raw)
            try:
                declared = raw.content_length
                if (
                    declared is not None
                    and declared <= self.max_body_bytes
                    and "Content-Encoding" not in raw.headers
                ):
                    # The common case, without the extra coroutine. With a Content-Encoding
                    # the declared length is the compressed one: _read_body counts instead.
                    body = await raw.read()
                else:
                    body = await self._read_body(raw)
            finally:
                raw.release()
            response = Response(
                raw.status, raw.headers, body, request, str(raw.url), time.monotonic() - started
            )
        except asyncio.CancelledError:
            timed_out = self._timed_out(watch, request)
            if timed_out is not None:
                raise timed_out from None
            raise
        except errors.ImuzekitError:
            raise
        except Exception as exc:
            raise wire_error(exc, request) from exc
        finally:
            self._in_flight -= 1
            if watch is not None:
                self.deadlines.done(watch)
        if debug:
            _log.debug(
                "%s %s -> %d (attempt %d, %.3fs)",
                request.method,
                safe_url,
                response.status,
                attempt,
                response.elapsed,
                extra={
                    "provider": request.provider,
                    "method": request.method,
                    "url": safe_url,
                    "status": response.status,
                    "elapsed": response.elapsed,
                    "attempt": attempt,
                },
            )
        return response

    async def _read_body(self, raw: aiohttp.ClientResponse) -> bytes:
        limit = self.max_body_bytes
        declared = raw.content_length
        # With a Content-Encoding, the declared length is the compressed one: count what
        # decompression produces instead (a small gzip can expand to gigabytes).
        if declared is not None and declared > limit:
            raise errors.ParseError(
                f"response body of {declared} bytes exceeds the {limit}-byte limit",
                body=None,
            )
        encoded = raw.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        if declared is not None and not encoded:
            return await raw.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in raw.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise errors.ParseError(f"response body exceeds the {limit}-byte limit", body=None)
            chunks.append(chunk)
        return b"".join(chunks)

    async def open(
        self,
        request: Request,
        attempt: int,
        auth_header: tuple[str, str] | None,
        timeouts: Timeouts,
    ) -> StreamResponse:
        """Send ``request`` and return the answer with its body unread; the connection is held
        until the stream is released.

        ``Timeouts.read`` bounds the wait for the headers (the watchdog) and then every read of
        the body (a `Stall` check), ``total`` the whole transfer; where the watchdog cannot
        count (see `_watch`), aiohttp's own timers do all of it.
        """
        session = self.get_session()
        prepared = request if auth_header is None else request.with_header(*auth_header)
        limits = self._limits_for(timeouts)
        watch = self._watch(prepared, limits, has_body(prepared))
        # Counted like send()'s requests: this one holds a pooled connection until the
        # caller is done with the body.
        self._in_flight += 1
        try:
            raw = await self._request(
                session,
                prepared,
                self._headers(prepared, None),
                None,
                limits.aiohttp_timeout if watch is None else limits.stream_timeout,
            )
        except BaseException as exc:
            self._in_flight -= 1
            if isinstance(exc, asyncio.CancelledError):
                timed_out = self._timed_out(watch, prepared)
                if timed_out is not None:
                    raise timed_out from None
            if isinstance(exc, errors.ImuzekitError) or not isinstance(exc, Exception):
                raise
            raise wire_error(exc, prepared) from exc
        finally:
            if watch is not None:
                self.deadlines.done(watch)
        stall = None
        if watch is not None and limits.read is not None:
            stall = Stall(raw.content, limits.read)
        return StreamResponse(raw, prepared, self._released, stall)

    def _watch(self, request: Request, limits: Limits, with_body: bool) -> Watch | None:
        """Start the watchdog on ``request`` when it can enforce its limits, else None.

        The watchdog counts from now, so: only when no pool wait can come first; not for a
        request with a body (upload time is no read time); and only for an idempotent one,
        because a connect that hangs past the read limit ends as a read timeout, which says
        the request may have been sent (sent=True); a retry then resends only what may be
        resent anyway. aiohttp's own timers otherwise, which start once the request is out.
        """
        if (
            limits.tick is None
            or self._in_flight >= self.max_connections
            or with_body
            or not request.is_idempotent
        ):
            return None
        task = asyncio.current_task()
        return None if task is None else self.deadlines.watch(task, limits)

    @staticmethod
    def _timed_out(watch: Watch | None, request: Request) -> errors.RequestTimeout | None:
        """The timeout a cancellation stands for when it is the watchdog's, else None (the
        task was cancelled from outside as well: that cancellation goes on)."""
        if watch is None or watch.expired is None or watch.task.uncancel() > watch.cancelling:
            return None
        return errors.RequestTimeout(
            f"timed out: {watch.expired}",
            method=request.method,
            url=redact_url(request.full_url),
            provider=request.provider,
        )

    def _released(self) -> None:
        self._in_flight -= 1
