"""Authentication as flows the send pipeline drives (httpx's ``auth_flow`` is the model).

A flow is a generator: it yields a login request when it needs one, receives the answer (or,
thrown in, the typed error) and returns the authenticated request. It does no I/O itself: the
pipeline (`imuzekit._pipeline`) sends what it yields, through the same gate, retries and error
mapping as every call, and keeps logins single-flight with one lock per provider.

* `TokenLogin`: a token in a header (iMuze v4's raw ``Authorization`` value, joplin's JWT,
  useapi.net's ``Bearer``), optionally obtained by logging in with email and password, renewed
  once on a 401 and, when the token says when it expires, shortly before it does.
* `FlowAuth`: the base both TokenLogin and MuseScore's OAuth 1.0 signing build on; its
  `apply()` and `refresh()` drive the flows through any `Sender`
  (for code that authenticates a request by hand).

Credentials are held privately and never appear in reprs, logs or error messages; the answer to
a refused login is withheld from the error (``APIError.body`` is None), since it may echo them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from http import HTTPStatus
from typing import TypeVar

import attrs

from imuzekit import errors
from imuzekit._http import Request, Response, Sender

__all__ = [
    "FlowAuth",
    "LoginResult",
    "TokenLogin",
    "drive",
    "run_single_flight",
    "withhold_login_answer",
]

T = TypeVar("T")
A = TypeVar("A")


async def drive(flow: Generator[Request, Response, T], sender: Sender) -> T:
    """Run ``flow`` to its end: send each request it yields and send the answer back in.

    A typed error of a send (`errors.ImuzekitError`) is thrown into the flow, so that the flow
    can withhold what a refused login echoed before it propagates.
    """
    try:
        request = next(flow)
        while True:
            error: errors.ImuzekitError | None = None
            try:
                response = await sender.send(request)
            except errors.ImuzekitError as exc:
                error = exc
            # Outside the except block: nothing gets chained to what the flow raises.
            request = flow.send(response) if error is None else flow.throw(error)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_single_flight(
    make: Callable[[A], Generator[Request, Response, T]],
    argument: A,
    sender: Sender,
    lock: asyncio.Lock,
) -> T:
    """Run the flow ``make(argument)``; when it needs to send anything, run it under ``lock``.

    Double-checked: a flow that needs no request (a valid token, a signature) completes at
    once without the lock; one that would log in is dropped and run again holding the lock,
    where it finds the token that a task before it in the queue just got. So N concurrent
    calls that find the token expired make exactly one login.
    """
    flow = make(argument)
    try:
        next(flow)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    flow.close()
    async with lock:
        return await drive(make(argument), sender)


class FlowAuth:
    """The base of imuzekit's auth flows: one login lock and the flows driven by hand.

    Subclasses implement `auth_flow()` and, when credentials can be renewed,
    `refresh_flow()` and `ready_header()`.
    """

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        """Held while a login runs: the pipeline and `apply()` share it."""

    def ready_header(self) -> tuple[str, str] | None:
        """None: every request goes through `auth_flow()` (see `imuzekit._http.Auth`)."""
        return None

    def auth_flow(self, request: Request) -> Generator[Request, Response, Request]:
        """Yield login requests as needed; return ``request`` with its credentials."""
        raise NotImplementedError

    def refresh_flow(self, failed: Request) -> Generator[Request, Response, bool]:
        """After a 401: False (nothing to renew) unless a subclass can log in again."""
        yield from ()
        return False

    async def apply(self, request: Request, sender: Sender) -> Request:
        """``request`` authenticated, logging in through ``sender`` first if needed."""
        header = self.ready_header()
        if header is not None:
            return request.with_header(*header)
        return await run_single_flight(self.auth_flow, request, sender, self.lock)

    async def refresh(self, failed: Request, sender: Sender) -> bool:
        """After a 401 on ``failed``: renew through ``sender``; True when a retry may succeed."""
        return await run_single_flight(self.refresh_flow, failed, sender, self.lock)


@attrs.frozen
class LoginResult:
    """What a login returned: the token and, when known, when it expires (unix seconds)."""

    token: str = attrs.field(repr=False)
    expires_at: float | None = None


class TokenLogin(FlowAuth):
    """A token sent in a header, with an optional login to get (and renew) it.

    ``login`` builds the login request; ``parse`` reads a `LoginResult` from its response.
    With a given ``token`` and no login, a 401 is final. With both, the given token is used first
    and a 401 triggers one login. Concurrent 401s share a single login: a request that failed
    with a token that was already replaced is simply retried with the new one.
    """

    def __init__(
        self,
        *,
        provider: str,
        token: str | None = None,
        login: Callable[[], Request] | None = None,
        parse: Callable[[Response], LoginResult] | None = None,
        header: str = "Authorization",
        scheme: str | None = None,
        expires_at: float | None = None,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if token is None and login is None:
            raise errors.ConfigurationError(f"{provider}: a token or a login is required")
        if (login is None) != (parse is None):
            raise errors.ConfigurationError(f"{provider}: login and parse go together")
        super().__init__()
        self.provider = provider
        self._token = token
        self._expires_at = expires_at
        self._issued_at = clock()
        self._login = login
        self._parse = parse
        self._header = header
        self._scheme = scheme
        self._margin = refresh_margin
        self._clock = clock
        self.logins = 0
        """How many logins this hook performed (observable in tests and metrics)."""
        self._ready: tuple[str, tuple[str, str]] | None = None  # (token, its header)

    def __repr__(self) -> str:
        state = "token set" if self._token else "no token yet"
        return f"<TokenLogin {self.provider}: {state}, login={'yes' if self._login else 'no'}>"

    def _value(self, token: str) -> str:
        return f"{self._scheme} {token}" if self._scheme else token

    def _expiring(self) -> bool:
        if self._expires_at is None:
            return False
        # A token living less than the margin (or a clock running ahead) must not make every
        # request log in again: renew within the last quarter of its life at the earliest.
        lifetime = self._expires_at - self._issued_at
        margin = min(self._margin, max(0.0, lifetime / 4))
        return self._clock() >= self._expires_at - margin

    def ready_header(self) -> tuple[str, str] | None:
        """The token's header, or None when there is no token yet or it is about to expire."""
        token = self._token
        if token is None or (self._login is not None and self._expiring()):
            return None
        ready = self._ready
        if ready is None or ready[0] is not token:  # formatted once per token, not per request
            ready = self._ready = (token, (self._header, self._value(token)))
        return ready[1]

    def auth_flow(self, request: Request) -> Generator[Request, Response, Request]:
        """Add the token header; log in first when there is no token or it is about to expire."""
        header = self.ready_header()
        if header is None:
            token = yield from self._login_flow()
            header = (self._header, self._value(token))
        return request.with_header(*header)

    def refresh_flow(self, failed: Request) -> Generator[Request, Response, bool]:
        """Log in again after a 401, unless the token was replaced meanwhile; False: cannot."""
        used = failed.header(self._header)
        if self._token is not None and used != self._value(self._token):
            return True  # the token was replaced while this request was in flight
        if self._login is None:
            return False
        yield from self._login_flow()
        return True

    async def login(self, sender: Sender) -> str:
        """Log in unconditionally (an explicit ``kit.<provider>.login()``) and return the token."""
        if self._login is None:
            raise errors.ConfigurationError(
                f"{self.provider}: logging in needs an email and a password in the config"
            )
        async with self.lock:
            return await drive(self._login_flow(), sender)

    def _login_flow(self) -> Generator[Request, Response, str]:
        """Send the login request, keep the token it returns (the answer withheld on failure)."""
        if self._login is None or self._parse is None:
            raise errors.ConfigurationError(
                f"{self.provider}: the token expired and no email/password is configured"
            )
        try:
            response = yield self._login()
            result = self._parse(response)
        except (errors.APIError, errors.ParseError) as exc:
            withhold_login_answer(exc)
            raise
        self._token = result.token
        self._expires_at = result.expires_at
        self._issued_at = self._clock()
        self.logins += 1
        return result.token


def withhold_login_answer(exc: errors.APIError | errors.ParseError) -> None:
    """Strip from ``exc`` what the provider answered to a failed login (it may echo credentials).

    Used for every answer that carries or may echo a credential: token logins, JWT logins and
    MuseScore's OAuth token steps. The status, request id, method and (redacted) URL stay;
    ``body`` becomes None and an `APIError`'s message no longer quotes the provider. A
    `ParseError` keeps its message (it names the path, never the value).
    """
    exc.body = None
    # The chained cause (a JSONDecodeError's `.doc`, say) would carry the whole answer.
    exc.__cause__ = None
    exc.__context__ = None
    exc.__suppress_context__ = True
    if isinstance(exc, errors.ParseError):
        return
    exc.message = (
        f"the login failed ({_reason(exc.status)}); the answer is withheld because it "
        "may echo credentials"
    )
    exc.args = (exc.message,)


def _reason(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"
