"""Plain values that cross the line between the pure providers and the one transport.

Providers build `Request` values and parse `Response` values; only
``imuzekit._transport`` turns one into the other. Nothing here performs I/O, and this module
imports from the rest of the package only the argument checks, which import only the errors
(an import-linter contract checks that it imports nothing else).
"""

from __future__ import annotations

import enum
import functools
import operator
from collections.abc import AsyncIterator, Callable, Collection, Generator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from imuzekit._checks import checked, seconds

__all__ = [
    "Auth",
    "AuthFlow",
    "Body",
    "FilePart",
    "Request",
    "Response",
    "Sender",
    "StreamSender",
    "StreamingResponse",
    "Timeouts",
    "WireTransport",
    "redact_url",
]

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Query keys whose values are credentials; they are masked wherever a URL is logged or reported.
_SENSITIVE_KEY_PARTS = (
    "token",
    "password",
    "secret",
    "signature",
    "api_key",
    "apikey",
    "jwt",
    "credential",
)
# Whole keys that are credentials although they contain none of the parts above.
_SENSITIVE_KEYS = frozenset({"sig", "auth", "authorization"})


@attrs.frozen
class Timeouts:
    """Per-request time limits in seconds (None: no limit).

    ``connect``: establishing the connection (10 s: a healthy API host answers in well under a
    second; longer means it is down or unreachable). ``read``: the wait for the response and
    then for each chunk of it (60 s: generation endpoints may think before answering).
    ``total``: each attempt as a whole, connection to last byte (300 s); retries get a fresh
    budget each, and the waits between them are not counted. Waiting for a free pooled
    connection is not read time.

    For API calls, ``read`` and ``total`` are checked by one watchdog per Client rather than a
    timer per request (cheaper by about 10 µs a call), so they expire up to a quarter of the
    smallest limit in flight late, and never more than a second late.

    Each limit is a number of seconds above 0, or None; anything else (a negative, 0, NaN,
    infinity, a string) raises `ValidationError` naming the field.
    """

    connect: float | None = attrs.field(
        default=10.0, validator=checked(seconds, positive=True, optional=True)
    )
    read: float | None = attrs.field(
        default=60.0, validator=checked(seconds, positive=True, optional=True)
    )
    total: float | None = attrs.field(
        default=300.0, validator=checked(seconds, positive=True, optional=True)
    )


class Body(enum.Enum):
    """How a request's body is encoded."""

    NONE = "none"
    JSON = "json"
    FORM = "form"
    MULTIPART = "multipart"


@attrs.frozen
class FilePart:
    """One file field of a multipart body (the file content is held in memory: scores are small)."""

    name: str
    filename: str
    content: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    content_type: str = "application/octet-stream"


def _pairs(
    value: Mapping[str, Any] | tuple[tuple[str, str], ...] | None,
) -> tuple[tuple[str, str], ...]:
    if type(value) is tuple:  # already converted: every copy of a Request passes here
        return value
    if value is None:
        return ()
    if isinstance(value, tuple):
        return value
    return tuple((str(k), _scalar(v)) for k, v in value.items() if v is not None)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sensitive(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SENSITIVE_KEYS or any(part in lowered for part in _SENSITIVE_KEY_PARTS)


def _redacted_params(params: tuple[tuple[str, str], ...]) -> str:
    return repr(tuple((k, "***" if _sensitive(k) else v) for k, v in params))


def _redacted_url(url: str) -> str:
    return repr(redact_url(url))


@attrs.frozen
class Request:
    """An HTTP request described as data.

    ``provider`` selects the authentication and rate-limit gate the transport applies;
    ``auth=False`` skips authentication (logins, public endpoints, CDN downloads).
    ``idempotent`` overrides the method's default (GET/HEAD/PUT/DELETE are, POST is not); only
    idempotent requests are retried after the server may have received them. ``retry`` and
    ``rate_key`` override the retry policy and the rate-limit gate for this request.
    """

    method: str
    url: str = attrs.field(repr=_redacted_url)
    provider: str = ""
    params: tuple[tuple[str, str], ...] = attrs.field(
        default=(), converter=_pairs, repr=_redacted_params
    )
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs, repr=False)
    json: Any = attrs.field(default=None, repr=False)
    form: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs, repr=False)
    files: tuple[FilePart, ...] = ()
    auth: bool = True
    idempotent: bool | None = None
    timeouts: Timeouts | None = None
    allow_redirects: bool = True
    retry: Any = None
    """A RetryPolicy for this request only (None: the Client's)."""
    url_encoded: bool = False
    """The URL is already percent-encoded and must be sent byte for byte (a signed URL)."""
    rate_key: str | None = None
    """The rate-limit gate this request waits on and pauses after a 429 (default: provider);
    Mureka uses ``mureka:<account>`` so one busy account does not stall the others."""

    @property
    def is_idempotent(self) -> bool:
        """Whether sending this request twice has the same effect as sending it once."""
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in _IDEMPOTENT_METHODS

    @property
    def body_kind(self) -> Body:
        """Which body encoding this request uses."""
        if self.files:
            return Body.MULTIPART
        if self.form:
            return Body.FORM
        if self.json is not None:
            return Body.JSON
        return Body.NONE

    def with_header(self, name: str, value: str) -> Request:
        """A copy with header ``name`` set to ``value`` (replacing any previous value)."""
        headers = self.headers
        if headers:
            lowered = name.lower()
            headers = tuple(pair for pair in headers if pair[0].lower() != lowered)
        return _replace(self, "headers", (*headers, (name, value)))

    def with_params(self, **params: str) -> Request:
        """A copy with query parameters added (replacing same-named ones)."""
        kept = tuple((k, v) for k, v in self.params if k not in params)
        return _replace(self, "params", (*kept, *params.items()))

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def full_url(self) -> str:
        """The URL with the query parameters appended."""
        if not self.params:
            return self.url
        joiner = "&" if urlsplit(self.url).query else "?"
        # RFC 3986 encoding (%20 for a space), the form OAuth 1.0 signatures are computed on.
        return f"{self.url}{joiner}{urlencode(self.params, quote_via=quote)}"


@functools.cache
def _request_fields() -> tuple[dict[str, int], Callable[[Request], tuple[Any, ...]]] | None:
    """Field positions and one getter for all of them, or None if they cannot be passed by
    position (a keyword-only or non-init field): then `_replace()` uses attrs.evolve."""
    fields = attrs.fields(Request)
    if any(field.kw_only or not field.init for field in fields):
        return None
    names = tuple(field.name for field in fields)
    return {name: i for i, name in enumerate(names)}, operator.attrgetter(*names)


def _replace(request: Request, name: str, value: Any) -> Request:
    """``attrs.evolve(request, **{name: value})`` at a fraction of the cost.

    Every authenticated request is copied once to add its credentials; ``evolve`` looks the
    fields up and calls ``getattr`` per field on every call, this reads them all in one C call.
    """
    layout = _request_fields()
    if layout is None:
        return attrs.evolve(request, **{name: value})
    positions, get_all = layout
    values = list(get_all(request))
    values[positions[name]] = value
    return Request(*values)


def _ci_headers(value: Mapping[str, str]) -> Mapping[str, str]:
    if isinstance(value, (CIMultiDictProxy, CIMultiDict)):  # a tuple: faster than a union
        return value
    return CIMultiDictProxy(CIMultiDict(value))


@attrs.frozen
class Response:
    """A complete HTTP response: status, case-insensitive headers and the whole body."""

    status: int
    headers: Mapping[str, str] = attrs.field(converter=_ci_headers, repr=False)
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    request: Request
    url: str = ""
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """True for 2xx statuses."""
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``application/json``)."""
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")


def redact_url(url: str) -> str:
    """``url`` with the values of credential-like query parameters replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    masked = [(k, "***" if _sensitive(k) else v) for k, v in pairs]
    return urlunsplit(parts._replace(query=urlencode(masked, safe="*")))


class WireTransport(Protocol):
    """What sends one request over the wire, for the send pipeline to wrap.

    The pipeline (rate-limit gate, authentication, retries, error mapping) stays imuzekit's;
    this is only the last step. imuzekit's own is aiohttp; `imuzekit.testing.MockTransport`
    answers from a function instead. Raising `imuzekit.errors.TransportError` (with `sent`)
    stands for a connection that failed.
    """

    async def handle(self, request: Request) -> Response:
        """Send ``request`` (its authentication already applied) and return the answer."""
        ...


class Sender(Protocol):
    """What providers, auth hooks and jobs need from the transport: send one request."""

    async def send(self, request: Request, *, ok_statuses: Collection[int] = ()) -> Response:
        """Send ``request`` and return the response (raising the typed error for error statuses)."""
        ...


AuthFlow = Generator[Request, Response, Any]
"""An authentication flow: a generator that yields the requests it needs sent (logins), gets
each one's `Response` back (or, thrown in, its typed error) and returns its result."""


class Auth(Protocol):
    """Authentication for one provider, as flows the send pipeline drives (httpx's ``auth_flow``).

    A flow is pure: it yields a login request when it needs one, the pipeline sends it (with
    ``auth=False``, through the same retries and error mapping) and sends the answer back in;
    errors are thrown into the flow, which may scrub them before they propagate. The pipeline
    keeps logins single-flight: a flow that yields is run again under one lock per provider
    (the auth's ``lock`` attribute when it has one), where it finds the token another task got.
    """

    def ready_header(self) -> tuple[str, str] | None:
        """The one header that authenticates a request when it is at hand without I/O, or None.

        The pipeline's fast path: it sends this header beside a header-less request instead
        of running `auth_flow()` for an authenticated copy. None (a login is due, or the
        credentials depend on the request, like a signature) means the flow is run.
        """
        ...

    def auth_flow(self, request: Request) -> Generator[Request, Response, Request]:
        """Yield login requests as needed; return ``request`` with its credentials."""
        ...

    def refresh_flow(self, failed: Request) -> Generator[Request, Response, bool]:
        """After a 401 on ``failed``: renew the credentials; True when a retry may succeed."""
        ...


class StreamingResponse(Protocol):
    """A response whose body is read in chunks (see ``Transport.stream``)."""

    status: int
    headers: Mapping[str, str]

    @property
    def content_length(self) -> int | None:
        """The declared body length, or None."""
        ...

    def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body in chunks of at most ``size`` bytes."""
        ...


class StreamSender(Sender, Protocol):
    """A sender that can also stream response bodies."""

    def stream(
        self, request: Request, *, ok_statuses: Collection[int] = ()
    ) -> AbstractAsyncContextManager[StreamingResponse]:
        """Open ``request`` and yield the response with its body unread."""
        ...
