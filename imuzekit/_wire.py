"""What the transport needs to know about the wire, as small functions.

Encoding a request's body and URL for aiohttp, mapping aiohttp's and the OS's exceptions to
imuzekit's tree (with every credential scrubbed from what gets chained), reading an error
answer's body and message, and telling when credentials would cross a network unencrypted.
"""

from __future__ import annotations

import functools
import importlib.metadata
import ipaddress
import json
import logging
import platform
import re
from collections.abc import AsyncIterator, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from imuzekit import errors
from imuzekit._convert import loads_json
from imuzekit._http import Body, Request, Response, redact_url
from imuzekit._retry import parse_retry_after

__all__ = [
    "BufferedAnswer",
    "EnvProxies",
    "StreamResponse",
    "api_error",
    "decode_error_body",
    "default_user_agent",
    "describe",
    "encode_body",
    "error_message",
    "has_body",
    "log_retry",
    "plain_http_host",
    "reason_phrase",
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


class _BufferedContent:
    """The part of aiohttp's `StreamReader` a stream reads, over a body already in memory."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._offset = 0

    async def read(self, size: int = -1) -> bytes:
        end = len(self._body) if size < 0 else self._offset + size
        chunk = self._body[self._offset : end]
        self._offset += len(chunk)
        return chunk

    async def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
        while chunk := await self.read(size):
            yield chunk


class BufferedAnswer:
    """A `Response` dressed as the part of `aiohttp.ClientResponse` that streams read.

    So that a wire other than aiohttp (`imuzekit.testing.MockTransport`) goes through the same
    stream loop (retries, re-login, error mapping) and the same `StreamResponse`.
    """

    def __init__(self, response: Response) -> None:
        self.status = response.status
        self.headers = response.headers
        self.url = URL(response.url or response.request.full_url)
        self.content_length: int | None = len(response.body)
        self.content = _BufferedContent(response.body)

    def release(self) -> None:
        """Nothing to give back: there is no connection."""


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
    """A response whose body is read incrementally (downloads); see :meth:`Transport.stream`."""

    def __init__(self, raw: aiohttp.ClientResponse, request: Request) -> None:
        self._raw = raw
        self.request = request
        self.status = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.url = str(raw.url)

    @property
    def content_length(self) -> int | None:
        """The declared body length, or None."""
        value = self._raw.content_length
        return int(value) if value is not None else None

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """Yield the body in chunks of at most ``size`` bytes (wire failures: TransportError)."""
        try:
            async for chunk in self._raw.content.iter_chunked(size):
                yield chunk
        except TimeoutError as exc:  # before OSError: TimeoutError is one of them
            raise errors.RequestTimeout(
                "timed out while reading the body",
                method=self.request.method,
                url=redact_url(self.url),
                provider=self.request.provider,
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.TransportError(
                f"connection broken while reading the body: {describe(exc)}",
                method=self.request.method,
                url=redact_url(self.url),
                provider=self.request.provider,
            ) from scrubbed(exc)


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


def plain_http_host(url: str) -> str | None:
    """The host of ``url`` when credentials sent there would cross a network unencrypted.

    That is an ``http://`` URL to a host other than loopback (``localhost`` and its
    subdomains, 127.0.0.0/8, ``::1``); None for ``https://``, loopback and unparsable URLs.
    """
    if url[:7].lower() != "http://":
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a host name other than localhost: it may resolve anywhere
    return host


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


# The transport's logger: retry lines are the send pipeline's.
_http_log = logging.getLogger("imuzekit.http")

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "cf-ray")


def api_error(response: Response, retry_after: float | None = None) -> errors.APIError:
    """The typed error for an error ``response`` (message taken from the provider's body)."""
    body = decode_error_body(response)
    message = error_message(body) or reason_phrase(response.status)
    request = response.request
    kwargs: dict[str, Any] = {
        "status": response.status,
        "provider": request.provider,
        "body": body,
        "request_id": next(
            (response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers), None
        ),
        "method": request.method,
        "url": redact_url(request.full_url),
    }
    cls = errors.error_for_status(response.status)
    if cls is errors.RateLimitError:
        if retry_after is None:
            retry_after = parse_retry_after(response.headers)
        return errors.RateLimitError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)


def decode_error_body(response: Response) -> Any:
    if not response.body:
        return None
    try:
        # Bounded nesting: a hostile body stays an APIError of its status, never RecursionError.
        return loads_json(response.body)
    except (ValueError, UnicodeDecodeError):
        return response.text()[:2000]


def error_message(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("error", "message", "detail", "errorDetails"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                nested = error_message(value)
                if nested:
                    return nested
        return None
    if isinstance(body, str):
        text = " ".join(body.split())
        if text.lstrip().startswith("<"):
            return None  # an HTML error page says nothing a caller can act on
        return text[:300] or None
    return None


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def log_retry(request: Request, attempt: int, delay: float, why: str) -> None:
    """One INFO line per retry: what failed, which attempt, and the wait before the next."""
    if _http_log.isEnabledFor(logging.INFO):
        url = redact_url(request.full_url)
        _http_log.info(
            "%s %s failed (%s) on attempt %d; retrying in %.2fs",
            request.method,
            url,
            why,
            attempt,
            delay,
            extra={
                "provider": request.provider,
                "method": request.method,
                "url": url,
                "attempt": attempt,
                "delay": delay,
            },
        )
