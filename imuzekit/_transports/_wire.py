"""What the aiohttp adapter needs to know about the wire, as small functions.

Encoding a request's body and URL for aiohttp, mapping aiohttp's and the OS's exceptions to
imuzekit's tree (with every credential scrubbed from what gets chained), the environment's
proxies and the streamed body. Reading an error answer is `imuzekit._answers`'s (pure).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import platform
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from aiohttp.streams import EofStream
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from imuzekit import errors
from imuzekit._http import Body, Request, redact_url
from imuzekit._transports._watchdog import Stall

__all__ = [
    "EnvProxies",
    "StreamResponse",
    "default_user_agent",
    "describe",
    "encode_body",
    "has_body",
    "scrubbed",
    "wire_error",
    "wire_url",
]


@functools.cache
def default_user_agent() -> str:
    """``imuzekit/<version> python/<x.y> aiohttp/<version>``: what a server's logs should say."""
    try:
        version = importlib.metadata.version("imuzekit")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        version = "0+unknown"
    python = ".".join(platform.python_version_tuple()[:2])
    return f"imuzekit/{version} python/{python} aiohttp/{aiohttp.__version__}"


class EnvProxies:
    """``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` (and ``.netrc``) decided once per origin.

    aiohttp's ``trust_env`` reads the environment again on every request; the decision is the
    same aiohttp helper's, cached by ``scheme://host:port``.
    """

    __slots__ = ("_found",)

    def __init__(self) -> None:
        self._found: dict[str, tuple[str | None, aiohttp.BasicAuth | None]] = {}

    def lookup(self, url: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
        """The proxy and its credentials for a request to ``url``, or ``(None, None)``."""
        end = url.find("/", url.find("//") + 2)
        origin = url if end < 0 else url[:end]
        found = self._found.get(origin)
        if found is None:
            try:
                proxy, auth = get_env_proxy_for_url(URL(origin))
            except LookupError:  # no proxy for this origin (or NO_PROXY names it)
                found = (None, None)
            else:
                found = (str(proxy), auth)
            self._found[origin] = found
        return found


class StreamResponse:
    """A response whose body is read incrementally (downloads); see ``Transport.stream``.

    ``release()`` gives the connection back (the pipeline calls it when the caller is done).
    """

    __slots__ = ("_on_release", "_raw", "_stall", "headers", "request", "status", "url")

    def __init__(
        self,
        raw: aiohttp.ClientResponse,
        request: Request,
        on_release: Callable[[], None] | None = None,
        stall: Stall | None = None,
    ) -> None:
        self._raw = raw
        self._on_release = on_release
        # The read limit of the body when aiohttp's per-chunk timer is off (see Stall).
        self._stall = stall
        self.request = request
        self.status = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.url = str(raw.url)

    @property
    def content_length(self) -> int | None:
        """The declared body length, or None."""
        value = self._raw.content_length
        return int(value) if value is not None else None

    async def head(self, limit: int) -> bytes:
        """At most ``limit`` bytes of the body (an error answer's, for its message)."""
        stall = self._stall
        if stall is not None:
            stall.waiting()
        try:
            return await self._raw.content.read(limit)
        finally:
            if stall is not None:
                stall.done_waiting()

    def release(self) -> None:
        """Give the connection back; safe to call more than once."""
        on_release, self._on_release = self._on_release, None
        if on_release is not None:
            on_release()
        if self._stall is not None:
            self._stall.close()
        self._raw.release()

    def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body in chunks of at most ``size`` bytes (wire failures: TransportError)."""
        return _Chunks(self, size)

    def _read_failed(self, exc: Exception) -> errors.TransportError:
        """The error of a body read that failed with ``exc`` (aiohttp's or the OS's)."""
        if isinstance(exc, TimeoutError):  # before OSError: TimeoutError is one of them
            return errors.RequestTimeout(
                "timed out while reading the body",
                method=self.request.method,
                url=redact_url(self.url),
                provider=self.request.provider,
            )
        return errors.TransportError(
            f"connection broken while reading the body: {describe(exc)}",
            method=self.request.method,
            url=redact_url(self.url),
            provider=self.request.provider,
        )


class _Chunks:
    """`StreamResponse.chunks`: one ``content.read(size)`` a step.

    A class rather than an async generator over aiohttp's ``iter_chunked``: that was two
    iterator layers resumed for every chunk of every download, on the event loop.
    """

    __slots__ = ("_read", "_response", "_size", "_stall")

    def __init__(self, response: StreamResponse, size: int) -> None:
        self._response = response
        self._read = response._raw.content.read
        self._size = size
        self._stall = response._stall

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        stall = self._stall
        if stall is not None:
            stall.waiting()
        try:
            chunk = await self._read(self._size)
        except (aiohttp.ClientError, OSError) as exc:
            failure = self._response._read_failed(exc)
            if isinstance(failure, errors.RequestTimeout):
                raise failure from exc
            raise failure from scrubbed(exc)
        except EofStream:
            raise StopAsyncIteration from None
        finally:
            if stall is not None:
                stall.done_waiting()
        if not chunk:
            raise StopAsyncIteration
        return chunk


_URL_IN_TEXT = re.compile(r"""https?://[^\s'"<>)]+""")


def describe(exc: BaseException) -> str:
    # aiohttp puts whole URLs (query strings included) into some messages: redact them.
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def wire_url(request: Request) -> str | URL:
    # A signed URL must go out exactly as it was signed: no re-encoding by yarl.
    return URL(request.url, encoded=True) if request.url_encoded else request.url


def has_body(request: Request) -> bool:
    # Most requests are GETs: decide that without computing body_kind.
    return request.json is not None or bool(request.form) or bool(request.files)


def encode_body(request: Request) -> Any:
    kind = request.body_kind
    if kind is Body.NONE:
        return None
    if kind is Body.JSON:
        return aiohttp.payload.BytesPayload(
            json.dumps(request.json, separators=(",", ":")).encode(),
            content_type="application/json",
        )
    if kind is Body.FORM:
        return aiohttp.FormData(list(request.form))
    form = aiohttp.FormData()
    for name, value in request.form:
        form.add_field(name, value)
    for part in request.files:
        form.add_field(
            part.name, part.content, filename=part.filename, content_type=part.content_type
        )
    return form


_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


def scrubbed(exc: BaseException) -> BaseException:
    """``exc`` with what aiohttp keeps of the request removed, before it is chained to ours.

    aiohttp's response errors (``TooManyRedirects``, ``ClientResponseError``...) keep the
    request's headers (the ``Authorization`` token) and URL (signed query values) in
    ``request_info``, and the redirect responses in ``history``: all of which would show in
    the ``repr`` and ``args`` of the chained cause. The headers and history go; the URLs stay,
    redacted.
    """
    if isinstance(exc, aiohttp.ClientResponseError):
        info = exc.request_info
        safe = aiohttp.RequestInfo(
            URL(redact_url(str(info.url))),
            info.method,
            _NO_HEADERS,
            URL(redact_url(str(info.real_url))),
        )
        exc.request_info = safe
        exc.history = ()
        exc.args = (safe, ())
    elif isinstance(exc, aiohttp.InvalidURL):
        url = redact_url(str(exc.url))
        exc._url = url
        exc.args = (url, exc.description) if exc.description else (url,)
    return exc


def wire_error(exc: BaseException, request: Request) -> errors.TransportError:
    """Map an aiohttp/OS exception to our tree, noting whether the server may have received it.

    ``exc`` is scrubbed of request headers and signed URLs (see `scrubbed`), since the
    caller chains it as the cause.
    """
    scrubbed(exc)
    error: type[errors.TransportError] = errors.TransportError
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        error, what, sent = errors.RequestTimeout, "connect timed out", False
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientConnectorSSLError):
        what, sent = "TLS failure", False
    elif isinstance(exc, aiohttp.ClientConnectorError):
        what, sent = "could not connect", False
    elif isinstance(exc, TimeoutError):
        error, what, sent = errors.RequestTimeout, "timed out", True
    else:
        what, sent = "connection failed", True
    return error(
        f"{what}: {describe(exc)}",
        method=request.method,
        url=redact_url(request.full_url),
        provider=request.provider,
        sent=sent,
    )
