"""The one module that sends HTTP.

:class:`Transport` turns :class:`~imuzekit._http.Request` values into
:class:`~imuzekit._http.Response` values over one shared ``aiohttp.ClientSession``. It owns
everything that is about the wire rather than about a provider: authentication hooks (with one
re-login on 401), retries (see :mod:`imuzekit._retry` for the rules that keep paid creations from
being sent twice), timeouts, the shared rate-limit pause after a 429 (never longer than
``RetryPolicy.max_retry_after``, never waited for past a caller's deadline), body size limits,
error mapping and request logging (never a credential; a warning when credentials would travel
over plain ``http://`` to a remote host).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from ssl import SSLContext
from typing import Any

import aiohttp
import attrs

from imuzekit import errors
from imuzekit._gate import RateGate
from imuzekit._http import Auth, Request, Response, Sender, Timeouts, WireTransport, redact_url
from imuzekit._retry import (
    RetryPolicy,
    backoff_delay,
    deadline_left,
    parse_retry_after,
)
from imuzekit._watchdog import Deadlines, Limits, Watch
from imuzekit._wire import (
    BufferedAnswer,
    EnvProxies,
    StreamResponse,
    api_error,
    default_user_agent,
    encode_body,
    has_body,
    log_retry,
    plain_http_host,
    wire_error,
    wire_url,
)

# Protocols re-exported for convenience.
__all__ = [
    "Auth",
    "Sender",
    "StreamResponse",
    "Transport",
    "default_user_agent",
    "plain_http_host",
]

_log = logging.getLogger("imuzekit.http")

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# How long close() from a foreign loop waits for the owning loop to close the pool.
_CROSS_LOOP_CLOSE_TIMEOUT = 5.0


class Transport:
    """Sends requests for every provider of one Client over one connection pool.

    Created lazily by the Client; the aiohttp session itself is opened on first use (it needs
    a running event loop). Once closed it stays closed.
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 100,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        verify_ssl: bool = True,
        user_agent: str | None = None,
        session: aiohttp.ClientSession | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        ssl: SSLContext | bool | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        default_headers: Mapping[str, str] | None = None,
        wire: WireTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        # Another last step instead of aiohttp (imuzekit.testing.MockTransport): no socket.
        self._wire = wire
        self.timeouts = timeouts or Timeouts()
        self.max_body_bytes = max_body_bytes
        # `ssl` wins; `verify_ssl=False` is the older spelling of `ssl=False`.
        self.ssl: SSLContext | bool = verify_ssl if ssl is None else ssl
        self.user_agent = user_agent or default_user_agent()
        self.proxy = proxy
        self.trust_env = trust_env
        self.trace_configs = tuple(trace_configs)
        self.default_headers = dict(default_headers or {})
        # A session the caller owns is used as it is and never closed by us.
        self._own_session = session is None
        self.max_connections = max_connections
        if session is not None and session.connector is not None:
            # Its pool's limit decides when a request may wait for a connection (0: no limit).
            self.max_connections = session.connector.limit or 2**31
        # Headers that must go with every request of a caller's session (ours has them built in).
        self._session_headers: dict[str, str] | None = None
        if session is not None:
            extra = dict(self.default_headers)
            if user_agent is not None or "User-Agent" not in session.headers:
                extra.setdefault("User-Agent", self.user_agent)
            self._session_headers = extra or None
        # Proxies from the environment, decided once per origin (aiohttp would read the
        # environment again on every request).
        self._env_proxies = EnvProxies()
        self._auth: dict[str, Auth] = {}
        self._gates: dict[str, RateGate] = {}
        # Providers whose credentials were checked for plain http:// (one warning each).
        self._cleartext_checked: set[str] = set()
        self._session: aiohttp.ClientSession | None = session
        # The loop the session was opened on: the pool, its sockets and timers belong to it.
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._limits: dict[Timeouts, Limits] = {}
        self._last_limits: tuple[Timeouts, Limits] | None = None
        self._deadlines = Deadlines()
        # Requests holding or about to take a pooled connection. Below max_connections none of
        # them can wait in aiohttp's pool, so a deadline may start counting at once.
        self._in_flight = 0

    @property
    def verify_ssl(self) -> bool:
        """Whether certificates are checked (`ssl` is not False); kept for older callers."""
        return self.ssl is not False

    # -- configuration -------------------------------------------------------------------

    def set_auth(self, provider: str, auth: Auth) -> None:
        """Authenticate every request of ``provider`` (with ``auth=True``) through ``auth``."""
        self._auth[provider] = auth

    def gate(self, key: str) -> RateGate:
        """The shared rate-limit pause for ``key`` (a provider, or ``provider:account``)."""
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = RateGate()
        return gate

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    async def close(self) -> None:
        """Close the connection pool; safe to call more than once."""
        self._closed = True
        self._deadlines.close()
        session, self._session = self._session, None
        if not self._own_session:
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

    def _get_session(self) -> aiohttp.ClientSession:
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
                # Environment proxies are looked up by _proxy_for, once per origin.
                trust_env=False,
                trace_configs=list(self.trace_configs) or None,
            )
        return self._session

    def _limits_for(self, request: Request) -> Limits:
        timeouts = request.timeouts or self.timeouts
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

    def _proxy_for(self, url: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
        """The proxy (and its credentials) for a request to ``url``, or ``(None, None)``.

        ``proxy=`` applies to every request; otherwise, with ``trust_env`` and our own
        session, ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` (and ``.netrc`` credentials)
        decide, exactly as aiohttp reads them, once per origin. A caller's session applies its
        own ``trust_env``.
        """
        if self.proxy is not None:
            return self.proxy, None
        if not self.trust_env or not self._own_session:
            return None, None
        return self._env_proxies.lookup(url)

    def _check_cleartext(self, request: Request) -> None:
        """Warn once per provider when its credentials go over plain http:// to a remote host.

        Decided on the provider's first authenticated request (before a login is sent): all of
        a provider's requests share its configured base URL.
        """
        self._cleartext_checked.add(request.provider)
        host = plain_http_host(request.url)
        if host is not None:
            _log.warning(
                "%s: credentials are sent over plain http:// to %s, readable by anyone on the "
                "way; use an https:// base URL",
                request.provider or "a provider",
                host,
            )

    # -- sending -------------------------------------------------------------------------

    async def send(self, request: Request, *, ok_statuses: Collection[int] = ()) -> Response:
        """Send ``request`` with authentication, retries and error mapping.

        Returns the response for 1xx-3xx statuses and for any status in ``ok_statuses``;
        raises the :class:`~imuzekit.errors.APIError` subclass of the status otherwise, or
        :class:`~imuzekit.errors.TransportError` when no response could be had. While the
        provider is paused after a 429 for longer than the request's ``max_retry_after`` or
        the caller's deadline (`imuzekit._retry.deadline_scope`) allow, it raises
        :class:`~imuzekit.errors.RateLimitError` with the pause left, without sending.
        """
        policy = request.retry or self.retry
        auth = self._auth.get(request.provider) if request.auth else None
        if auth is not None and request.provider not in self._cleartext_checked:
            self._check_cleartext(request)
        key = request.rate_key or request.provider
        gate = self._gates.get(key) or self.gate(key)
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            # Wait out a rate-limit pause first, then sign: a signature or token made before a
            # long pause could be stale when the request finally leaves.
            if gate.until and gate.until > time.monotonic():  # paused after a 429
                await gate.wait(request, policy)
            header = None
            if auth is None:
                prepared = request
            elif not request.headers and (header := auth.ready_header()) is not None:
                # The common case: the header goes out beside the request, without the
                # authenticated copy of the Request that apply() makes.
                prepared = request
            else:
                prepared = await auth.apply(request, self)
            try:
                response = await self._send_once(prepared, attempt, header)
            except errors.TransportError as exc:
                retryable = not exc.sent or request.is_idempotent
                if retryable and attempt < policy.max_attempts:
                    delay = backoff_delay(attempt, policy)
                    log_retry(request, attempt, delay, type(exc).__name__)
                    await asyncio.sleep(delay)
                    continue
                raise
            status = response.status
            if status < 400 or status in ok_statuses:
                return response
            if status == 401 and auth is not None and not relogged:
                relogged = True
                failed = prepared if header is None else prepared.with_header(*header)
                if await auth.refresh(failed, self):
                    _log.info(
                        "%s: 401 on %s, credentials renewed; sending again",
                        request.provider,
                        request.method,
                        extra={"provider": request.provider, "method": request.method},
                    )
                    attempt -= 1  # the re-login is not the server's failure: keep the budget
                    continue
            retry_after = parse_retry_after(response.headers)
            too_long = retry_after is not None and retry_after > policy.max_retry_after
            if status == 429 and too_long and retry_after is not None:
                # The others must not run into the same wall, but one answer must not freeze
                # the provider for a day either: the pause is capped at max_retry_after.
                gate.pause(retry_after, policy.max_retry_after)
            if (
                not too_long
                and attempt < policy.max_attempts
                and policy.should_retry_status(status, idempotent=request.is_idempotent)
            ):
                if status == 429 and retry_after is not None:
                    # Everyone sending through this gate waits, not only this task.
                    gate.pause(retry_after, policy.max_retry_after)
                    _log.info(
                        "%s paused for %.3fs after 429 (every request through it waits)",
                        request.provider,
                        min(retry_after, policy.max_retry_after),
                        extra={"provider": request.provider, "retry_after": retry_after},
                    )
                else:
                    delay = max(backoff_delay(attempt, policy), retry_after or 0.0)
                    left = deadline_left()
                    if left is not None and delay > left:
                        # The caller's deadline comes first: its error now, not a retry later.
                        raise self.error_for(response, retry_after)
                    log_retry(request, attempt, delay, str(status))
                    await asyncio.sleep(delay)
                continue
            raise self.error_for(response, retry_after)

    async def _send_once(
        self, request: Request, attempt: int, auth_header: tuple[str, str] | None = None
    ) -> Response:
        if self._wire is not None:
            return await self._send_wire(request, attempt, auth_header)
        # close() clears _session, so this is _get_session() without the call in the common case
        # (same session, same loop).
        session = self._session
        if session is None or self._session_loop is not asyncio.get_running_loop():
            session = self._get_session()
        started = time.monotonic()
        debug = _log.isEnabledFor(logging.DEBUG)
        # Redacted only when it will be logged: parsing and re-encoding a URL on every request
        # costs more than the rest of this method.
        safe_url = redact_url(request.full_url) if debug else ""
        limits = self._limits_for(request)
        with_body = has_body(request)
        watch: Watch | None = None
        # The watchdog counts from now, so: only when no pool wait can come first; not for a
        # request with a body (upload time is no read time); and only for an idempotent one,
        # because a connect that hangs past the read limit ends as a read timeout, which says
        # the request may have been sent (sent=True); a retry then resends only what may be
        # resent anyway. aiohttp's own timers otherwise, which start once the request is out.
        if (
            limits.tick is not None
            and self._in_flight < self.max_connections
            and not with_body
            and request.is_idempotent
        ):
            task = asyncio.current_task()
            if task is not None:
                watch = self._deadlines.watch(task, limits)
        self._in_flight += 1
        try:
            # Awaited and released by hand rather than `async with`: the context managers add
            # four coroutine frames per request, and the body is read completely right here.
            headers: Any = (auth_header,) if auth_header is not None else request.headers or None
            if self._session_headers is not None:  # a caller's session lacks our defaults
                headers = {**self._session_headers, **dict(headers or ())}
            proxy, proxy_auth = self._proxy_for(request.url)
            raw = await session.request(
                request.method,
                wire_url(request),
                params=request.params or None,
                headers=headers,
                data=encode_body(request) if with_body else None,
                timeout=limits.aiohttp_timeout if watch is None else limits.connect_only,
                allow_redirects=request.allow_redirects,
                proxy=proxy,
                proxy_auth=proxy_auth,
            )
            if watch is not None:
                self._deadlines.answered(watch, raw)
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
                    body = await self._read_body(raw, request)
            finally:
                raw.release()
            response = Response(
                raw.status, raw.headers, body, request, str(raw.url), time.monotonic() - started
            )
        except asyncio.CancelledError:
            # The watchdog's cancellation, unless the task was also cancelled from outside.
            if (
                watch is not None
                and watch.expired is not None
                and watch.task.uncancel() <= watch.cancelling
            ):
                raise errors.RequestTimeout(
                    f"timed out: {watch.expired}",
                    method=request.method,
                    url=redact_url(request.full_url),
                    provider=request.provider,
                ) from None
            raise
        except errors.ImuzekitError:
            raise
        except Exception as exc:
            raise wire_error(exc, request) from exc
        finally:
            self._in_flight -= 1
            if watch is not None:
                self._deadlines.done(watch)
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

    async def _send_wire(
        self, request: Request, attempt: int, auth_header: tuple[str, str] | None
    ) -> Response:
        assert self._wire is not None
        if self._closed:
            raise errors.ClientClosedError(
                "this imuzekit Client is closed; create a new Client to send more requests"
            )
        prepared = request if auth_header is None else request.with_header(*auth_header)
        started = time.monotonic()
        response = await self._wire.handle(prepared)
        if len(response.body) > self.max_body_bytes:
            raise errors.ParseError(
                f"response body exceeds the {self.max_body_bytes}-byte limit", body=None
            )
        return attrs.evolve(response, elapsed=time.monotonic() - started)

    async def _read_body(self, raw: aiohttp.ClientResponse, request: Request) -> bytes:
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

    @asynccontextmanager
    async def stream(
        self, request: Request, *, ok_statuses: Collection[int] = ()
    ) -> AsyncIterator[StreamResponse]:
        """Open ``request`` and yield a :class:`StreamResponse` whose body is read in chunks.

        Connection failures and retryable statuses before the body starts are retried like
        :meth:`send`; failures while reading chunks are left to the caller (the downloader
        resumes with ``Range``).
        """
        policy = request.retry or self.retry
        auth = self._auth.get(request.provider) if request.auth else None
        if auth is not None and request.provider not in self._cleartext_checked:
            self._check_cleartext(request)
        attempt = 0
        relogged = False
        while True:
            attempt += 1
            gate = self.gate(request.rate_key or request.provider)
            await gate.wait(request, policy)
            prepared = await auth.apply(request, self) if auth is not None else request
            session = self._get_session() if self._wire is None else None
            # Counted like send()'s requests: this one holds a pooled connection until the
            # caller is done with the body. aiohttp's own timers apply (per chunk read).
            self._in_flight += 1
            try:
                headers: Any = prepared.headers or None
                if self._session_headers is not None:
                    headers = {**self._session_headers, **dict(headers or ())}
                proxy, proxy_auth = self._proxy_for(prepared.url)
                if session is None:  # another wire (MockTransport): its whole answer, buffered
                    raw: Any = BufferedAnswer(await self._send_wire(prepared, attempt, None))
                else:
                    raw = await session.request(
                        prepared.method,
                        wire_url(prepared),
                        params=prepared.params or None,
                        headers=headers,
                        timeout=self._limits_for(prepared).aiohttp_timeout,
                        allow_redirects=prepared.allow_redirects,
                        proxy=proxy,
                        proxy_auth=proxy_auth,
                    )
            except BaseException as exc:
                self._in_flight -= 1
                if not isinstance(exc, Exception):
                    raise
                error = exc if isinstance(exc, errors.TransportError) else wire_error(exc, prepared)
                if (not error.sent or request.is_idempotent) and attempt < policy.max_attempts:
                    await asyncio.sleep(backoff_delay(attempt, policy))
                    continue
                raise error from exc
            try:
                if raw.status >= 400 and raw.status not in ok_statuses:
                    body = await raw.content.read(64 * 1024)
                    response = Response(
                        raw.status, raw.headers, body, request=prepared, url=str(raw.url)
                    )
                    if raw.status == 401 and auth is not None and not relogged:
                        relogged = True
                        if await auth.refresh(prepared, self):
                            attempt -= 1
                            continue
                    retry_after = parse_retry_after(raw.headers)
                    if raw.status == 429 and retry_after is not None:
                        # The whole provider waits, as in send(), at most max_retry_after.
                        gate.pause(retry_after, policy.max_retry_after)
                    if (
                        attempt < policy.max_attempts
                        and policy.should_retry_status(raw.status, idempotent=request.is_idempotent)
                        and (retry_after is None or retry_after <= policy.max_retry_after)
                    ):
                        # A 503's Retry-After is honoured as in send() (a 429's is the gate's),
                        # and so is the caller's deadline: its error now, not a retry later.
                        delay = max(backoff_delay(attempt, policy), retry_after or 0.0)
                        left = deadline_left()
                        if left is None or delay <= left:
                            await asyncio.sleep(delay)
                            continue
                    raise self.error_for(response, retry_after)
                yield StreamResponse(raw, prepared)
                return
            finally:
                self._in_flight -= 1
                raw.release()

    # -- errors --------------------------------------------------------------------------

    def error_for(self, response: Response, retry_after: float | None = None) -> errors.APIError:
        """The typed error for an error ``response`` (message taken from the provider's body)."""
        return api_error(response, retry_after)
