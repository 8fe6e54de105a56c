"""Reading an answer, as pure functions: the typed error of an error status, and the log line
of a retry. Shared by the send pipeline and every transport; no I/O, no aiohttp.
"""

from __future__ import annotations

import ipaddress
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from imuzekit import errors
from imuzekit._convert import loads_json
from imuzekit._http import Request, Response, redact_url
from imuzekit._retry import parse_retry_after

__all__ = [
    "api_error",
    "decode_error_body",
    "error_message",
    "log_retry",
    "plain_http_host",
    "reason_phrase",
]


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
