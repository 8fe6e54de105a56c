"""The one send loop of every request: gate -> auth flow -> attempt -> decide.

`Pipeline.send` (a buffered answer) and `Pipeline.stream` (a body read in chunks) run the same
loop over an `imuzekit._transports.Adapter`:

1. **gate**: wait out the provider's (or account's) rate-limit pause after a 429, or raise
   `RateLimitError` at once when it outlasts what the call may wait (`imuzekit._gate`);
2. **auth**: the provider's auth flow (`imuzekit.auth`) authenticates the request, logging in
   first when needed, single-flight (one lock per provider);
3. **attempt**: the adapter sends it once;
4. **decide**: `imuzekit._retry.decide`, a pure function of (policy, attempt, request, outcome),
   says done, retry after a wait, re-login once, or raise the typed error.

`Pipeline.with_options` returns a view that shares the pool, the gates and the logins and
applies its own timeouts, retry policy and extra headers to the calls made through it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, Self

import attrs

from imuzekit import errors
from imuzekit._answers import api_error, log_retry, plain_http_host
from imuzekit._checks import seconds
from imuzekit._gate import RateGate
from imuzekit._http import Auth, Request, Response, Timeouts
from imuzekit._retry import (
    Action,
    Decision,
    Outcome,
    RetryPolicy,
    deadline_left,
    decide,
    parse_retry_after,
)
from imuzekit._transports.protocol import Adapter, OpenStream
from imuzekit.auth import run_single_flight

__all__ = ["Pipeline"]

_log = logging.getLogger("imuzekit.http")

# How much of a streamed error answer is read for its message.
_ERROR_HEAD = 64 * 1024


class Pipeline:
    """Sends requests for every provider of one Client through one `Adapter`.

    Holds what all calls share: the auth flow and login lock of each provider, the rate-limit
    gates, and the defaults (``retry``, ``timeouts``) a request does not override.
    """

    def __init__(
        self,
        adapter: Adapter,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.adapter = adapter
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        # Shared with every view (with_options): mutated in place, never replaced.
        self._auth: dict[str, Auth] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._gates: dict[str, RateGate] = {}
        # Providers whose credentials were checked for plain http:// (one warning each).
        self._cleartext_checked: set[str] = set()
        # A view's extra headers (a request's own headers win); () for the Client itself.
        self._headers: tuple[tuple[str, str], ...] = ()

    # -- configuration -------------------------------------------------------------------

    def set_auth(self, provider: str, auth: Auth) -> None:
        """Authenticate every request of ``provider`` (with ``auth=True``) through ``auth``.

        Its logins are single-flight under ``auth.lock`` when it has one (so an explicit
        ``login()`` and the pipeline's share it), else under a lock of the pipeline's.
        """
        lock = getattr(auth, "lock", None)
        self._locks[provider] = lock if isinstance(lock, asyncio.Lock) else asyncio.Lock()
        self._auth[provider] = auth

    def get_auth(self, provider: str) -> Auth | None:
        """The auth flow set for ``provider`` (shared with every view), or None."""
        return self._auth.get(provider)

    def gate(self, key: str) -> RateGate:
        """The shared rate-limit pause for ``key`` (a provider, or ``provider:account``)."""
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = RateGate()
        return gate

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self.adapter.closed

    async def close(self) -> None:
        """Close the connection pool; safe to call more than once."""
        await self.adapter.close()

    def with_options(
        self,
        *,
        timeout: Timeouts | float | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Self:
        """A view of this pipeline with other defaults for the calls made through it.

        It shares the pool, the rate-limit gates, the auth flows and their logins (closing
        either closes both). ``timeout``: a `Timeouts`, or a number of seconds for each
        attempt as a whole (``total``; ``connect`` and ``read`` are capped at it). ``retry``:
        a `RetryPolicy`. ``headers``: sent with every request (added to this view's; a
        request's own headers and its credentials win). A request's own ``timeouts`` and
        ``retry`` still win. Omitted options keep this pipeline's. A wrong value raises
        `imuzekit.errors.ValidationError` naming the option.
        """
        view = copy.copy(self)
        if timeout is not None:
            view.timeouts = _timeouts(timeout, self.timeouts)
        if retry is not None:
            if not isinstance(retry, RetryPolicy):
                raise errors.ValidationError(
                    "retry", f"must be a RetryPolicy, got {type(retry).__name__}"
                )
            view.retry = retry
        if headers is not None:
            view._headers = _merge_headers(self._headers, _header_pairs(headers))
        return view

    # -- sending -------------------------------------------------------------------------

    def send(
        self, request: Request, *, ok_statuses: Collection[int] = ()
    ) -> Coroutine[Any, Any, Response]:
        """Send ``request`` with authentication, retries and error mapping.

        Returns the response for 1xx-3xx statuses and for any status in ``ok_statuses``;
        raises the `APIError` subclass of the status otherwise, or
        `TransportError` when no response could be had. While the
        provider is paused after a 429 for longer than the request's ``max_retry_after`` or
        the caller's deadline (`imuzekit._retry.deadline_scope`) allow, it raises
        `RateLimitError` with the pause left, without sending.
        """
        # The loop's coroutine itself, not one awaiting it: a frame less on every request.
        return self._run(request, ok_statuses, False)

    @asynccontextmanager
    async def stream(
        self, request: Request, *, ok_statuses: Collection[int] = ()
    ) -> AsyncIterator[OpenStream]:
        """Open ``request`` and yield the answer with its body unread, to read in chunks.

        Decided like `send()` (the same loop): connection failures and retryable statuses
        before the body starts are retried; failures while reading chunks are left to the
        caller (the downloader resumes with ``Range``).
        """
        answer: OpenStream = await self._run(request, ok_statuses, True)
        try:
            yield answer
        finally:
            answer.release()

    async def _run(self, request: Request, ok_statuses: Collection[int], streaming: bool) -> Any:
        """The loop (see the module docstring); the answer is a `Response` or an `OpenStream`."""
        if self._headers:
            request = _with_headers(request, self._headers)
        policy = request.retry or self.retry
        timeouts = request.timeouts or self.timeouts
        auth = self._auth.get(request.provider) if request.auth else None
        if auth is not None and request.provider not in self._cleartext_checked:
            self._check_cleartext(request)
        key = request.rate_key or request.provider
        gate = self._gates.get(key) or self.gate(key)
        adapter = self.adapter
        attempt_once: Callable[..., Awaitable[Any]] = adapter.open if streaming else adapter.send
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
                # authenticated copy of the Request that the flow makes.
                prepared = request
            else:
                prepared = await run_single_flight(
                    auth.auth_flow, request, self, self._locks[request.provider]
                )
            try:
                answer = await attempt_once(prepared, attempt, header, timeouts)
            except errors.TransportError as exc:
                decision = decide(
                    policy,
                    attempt,
                    request,
                    Outcome(sent=exc.sent, failure=type(exc).__name__),
                    deadline_left=deadline_left(),
                )
                if decision.action is not Action.RETRY:
                    raise
                log_retry(request, attempt, decision.delay, decision.reason)
                await asyncio.sleep(decision.delay)
                continue
            status = answer.status
            if status < 400 or status in ok_statuses:
                return answer
            if streaming:
                try:
                    body = await answer.head(_ERROR_HEAD)
                finally:
                    answer.release()
                response = Response(status, answer.headers, body, request=prepared, url=answer.url)
            else:
                response = answer
            retry_after = parse_retry_after(response.headers)
            outcome = Outcome(status, retry_after)
            decision = decide(
                policy,
                attempt,
                request,
                outcome,
                ok_statuses=ok_statuses,
                can_relogin=auth is not None and not relogged,
                deadline_left=deadline_left(),
            )
            if decision.action is Action.RELOGIN:
                assert auth is not None
                relogged = True
                if await self._relogin(auth, prepared, header):
                    attempt -= 1  # the re-login is not the server's failure: keep the budget
                    continue
                # Nothing to renew: decided again as a plain 401.
                decision = decide(policy, attempt, request, outcome, deadline_left=deadline_left())
            self._pause(gate, decision, request, retry_after)
            if decision.action is not Action.RETRY:
                raise api_error(response, retry_after)
            if decision.pause is None:  # a 429's pause is waited for at the gate
                log_retry(request, attempt, decision.delay, decision.reason)
                await asyncio.sleep(decision.delay)

    async def _relogin(self, auth: Auth, prepared: Request, header: tuple[str, str] | None) -> bool:
        """Renew the credentials after a 401 (single-flight); True when a retry may succeed."""
        failed = prepared if header is None else prepared.with_header(*header)
        provider = prepared.provider
        if not await run_single_flight(auth.refresh_flow, failed, self, self._locks[provider]):
            return False
        _log.info(
            "%s: 401 on %s, credentials renewed; sending again",
            provider,
            prepared.method,
            extra={"provider": provider, "method": prepared.method},
        )
        return True

    @staticmethod
    def _pause(
        gate: RateGate, decision: Decision, request: Request, retry_after: float | None
    ) -> None:
        """Pause the whole gate after a 429 that asked for a wait (one INFO line)."""
        if decision.pause is None:
            return
        gate.pause(decision.pause, decision.pause)
        if decision.action is Action.RETRY:
            _log.info(
                "%s paused for %.3fs after 429 (every request through it waits)",
                request.provider,
                decision.pause,
                extra={"provider": request.provider, "retry_after": retry_after},
            )

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

    # -- errors --------------------------------------------------------------------------

    def error_for(self, response: Response, retry_after: float | None = None) -> errors.APIError:
        """The typed error for an error ``response`` (message taken from the provider's body)."""
        return api_error(response, retry_after)


def _timeouts(value: object, base: Timeouts) -> Timeouts:
    if isinstance(value, Timeouts):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.ValidationError(
            "timeout", f"must be a Timeouts or a number of seconds, got {type(value).__name__}"
        )
    total: float = seconds("timeout", value, positive=True)

    def capped(limit: float | None) -> float:
        return total if limit is None else min(limit, total)

    return Timeouts(connect=capped(base.connect), read=capped(base.read), total=total)


def _header_pairs(headers: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(headers, Mapping) or not all(
        isinstance(name, str) and name and isinstance(value, str) for name, value in headers.items()
    ):
        raise errors.ValidationError("headers", "must map header names to strings")
    return tuple(headers.items())


def _merge_headers(
    base: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    names = {name.lower() for name, _ in extra}
    return (*(pair for pair in base if pair[0].lower() not in names), *extra)


def _with_headers(request: Request, headers: tuple[tuple[str, str], ...]) -> Request:
    own = {name.lower() for name, _ in request.headers}
    extra = tuple(pair for pair in headers if pair[0].lower() not in own)
    if not extra:
        return request
    return attrs.evolve(request, headers=(*request.headers, *extra))
