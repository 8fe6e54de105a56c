"""Authentication hooks the transport applies to each request.

* :class:`TokenLogin`: a token in a header (iMuze v4's raw ``Authorization`` value, joplin's JWT,
  useapi.net's ``Bearer``), optionally obtained by logging in with email and password, renewed
  once on a 401 and, when the token says when it expires, shortly before it does.

Credentials are held privately and never appear in reprs, logs or error messages; the answer to
a refused login is withheld from the error (``APIError.body`` is None), since it may echo them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from http import HTTPStatus

import attrs

from imuzekit import errors
from imuzekit._http import Request, Response, Sender

__all__ = ["LoginResult", "TokenLogin", "withhold_login_answer"]


@attrs.frozen
class LoginResult:
    """What a login returned: the token and, when known, when it expires (unix seconds)."""

    token: str = attrs.field(repr=False)
    expires_at: float | None = None


class TokenLogin:
    """A token sent in a header, with an optional login to get (and renew) it.

    ``login`` builds the login request; ``parse`` reads a :class:`LoginResult` from its response.
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
        self._lock = asyncio.Lock()
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

    async def apply(self, request: Request, sender: Sender) -> Request:
        """Add the token header; log in first when there is no token or it is about to expire."""
        header = self.ready_header()
        if header is None:
            token = await self._renew(stale=self._token, sender=sender)
            header = (self._header, self._value(token))
        return request.with_header(*header)

    def ready_header(self) -> tuple[str, str] | None:
        """The token's header, or None when there is no token yet or it is about to expire."""
        token = self._token
        if token is None or (self._login is not None and self._expiring()):
            return None
        ready = self._ready
        if ready is None or ready[0] is not token:  # formatted once per token, not per request
            ready = self._ready = (token, (self._header, self._value(token)))
        return ready[1]

    async def refresh(self, failed: Request, sender: Sender) -> bool:
        """Log in again after a 401, unless another task already did; False when we cannot."""
        used = failed.header(self._header)
        if self._token is not None and used != self._value(self._token):
            return True  # the token was replaced while this request was in flight
        if self._login is None:
            return False
        stale = self._token
        await self._renew(stale=stale, sender=sender)
        return True

    async def login(self, sender: Sender) -> str:
        """Log in unconditionally (an explicit ``kit.<provider>.login()``) and return the token."""
        if self._login is None:
            raise errors.ConfigurationError(
                f"{self.provider}: logging in needs an email and a password in the config"
            )
        return await self._renew(stale=self._token, sender=sender, force=True)

    async def _renew(self, *, stale: str | None, sender: Sender, force: bool = False) -> str:
        async with self._lock:
            renewed_meanwhile = self._token is not None and self._token != stale
            if not force and renewed_meanwhile and not self._expiring():
                assert self._token is not None
                return self._token  # another task renewed it while we waited for the lock
            if self._login is None or self._parse is None:
                raise errors.ConfigurationError(
                    f"{self.provider}: the token expired and no email/password is configured"
                )
            try:
                response = await sender.send(self._login())
                result = self._parse(response)
            except errors.APIError as exc:
                withhold_login_answer(exc)
                raise
            except errors.ParseError as exc:
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
