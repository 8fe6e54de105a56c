"""The small HTTP pieces every provider's handlers share, so that their rules are the same.

JSON answers and the error shape ``{"error": "...", "code": N}``, JSON request bodies, byte
serving the way a CDN does it (ETag, If-None-Match, Range, If-Range), and request helpers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import hdrs, web

from .accounts import Accounts, User

__all__ = [
    "MAX_BODY_BYTES",
    "BadJSON",
    "bad_request",
    "bytes_response",
    "dumps",
    "json_error",
    "json_response",
    "login",
    "not_found",
    "origin",
    "parse_id",
    "read_json",
    "read_json_object",
    "unauthorized",
]

MAX_BODY_BYTES = 2 * 1024 * 1024
"""Largest request body any emulated endpoint accepts (aiohttp answers 413 beyond it)."""


def dumps(data: Any) -> str:
    """Compact JSON text, non-ASCII kept as is (what every JSON answer carries)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response (``application/json; charset=utf-8``)."""
    return web.Response(
        text=dumps(data), status=status, content_type="application/json", headers=headers
    )


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """The providers' error shape: ``{"error": message, "code": status}``."""
    return json_response({"error": message, "code": status}, status=status, headers=headers)


def bad_request(message: str) -> web.Response:
    """A 400 in the error shape."""
    return json_error(400, message)


def unauthorized(message: str = "Unauthorized") -> web.Response:
    """A 401 in the error shape."""
    return json_error(401, message)


def not_found(message: str = "Not found") -> web.Response:
    """A 404 in the error shape."""
    return json_error(404, message)


def origin(request: web.Request) -> str:
    """``scheme://host[:port]`` as the client reached the server, for absolute URLs."""
    return f"{request.scheme}://{request.host}"


def parse_id(text: str) -> int | None:
    """A plain decimal id, or None; a length cap keeps absurd values cheap and out of int()."""
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


class BadJSON(ValueError):
    """The request body is not valid JSON (its message says why, for a 400)."""


async def read_json(request: web.Request) -> Any:
    """Parse the request body as JSON whatever its Content-Type, raising `BadJSON` if invalid.

    Bodies beyond `MAX_BODY_BYTES` raise aiohttp's 413, which the middleware renders as JSON.
    """
    raw = await request.read()
    if not raw:
        raise BadJSON("Request body is empty; expected a JSON object")
    try:
        return json.loads(raw)
    # ValueError covers bad syntax, bad UTF-8 and integers past Python's digit limit;
    # RecursionError a pathologically nested document.
    except (ValueError, RecursionError):
        raise BadJSON("Request body is not valid JSON") from None


async def read_json_object(
    request: web.Request, *, not_object: str = "Request body must be a JSON object"
) -> dict[str, Any]:
    """The request body as a JSON object; `BadJSON` otherwise (`not_object` for another value)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadJSON(not_object)
    return body


def login(
    accounts: Accounts,
    email: object,
    password: object,
    *,
    email_problem: str,
    password_problem: str,
) -> User | web.Response:
    """The account a login body opens, else the answer: a 400 naming the field, or a 401."""
    if not isinstance(email, str) or not email:
        return bad_request(email_problem)
    if not isinstance(password, str) or not password:
        return bad_request(password_problem)
    user = accounts.login(email, password)
    if user is None:
        return json_error(401, "Invalid email or password")
    return user


def _parse_byte_range(header: str, size: int) -> tuple[int, int] | None:
    """Return (first, last) inclusive, None to ignore the header, or raise `_Unsatisfiable`.

    Following RFC 9110, a header we cannot read (other unit, bad syntax, several ranges) is
    ignored and the full body is sent.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not (dash and (first_text or last_text) and _digits(first_text) and _digits(last_text)):
        return None
    if not first_text:
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise _Unsatisfiable
    last = min(int(last_text), size - 1) if last_text else size - 1
    return first, last


def _digits(text: str) -> bool:
    """Empty, or plain ASCII digits short enough for a cheap int()."""
    return not text or (len(text) <= 20 and text.isascii() and text.isdigit())


class _Unsatisfiable(Exception):
    pass


def bytes_response(
    request: web.Request,
    data: bytes,
    *,
    content_type: str,
    etag: str,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Serve `data` the way a CDN does: ETag, If-None-Match, Range and If-Range.

    `etag` is the quoted strong validator. ``Range: bytes=a-b`` / ``a-`` / ``-n`` answer 206 with
    ``Content-Range``; an unsatisfiable range answers 416 with ``Content-Range: bytes */size``.
    HEAD is handled by aiohttp (same headers, no body).
    """
    size = len(data)
    base: dict[str, str] = {"Accept-Ranges": "bytes", "ETag": etag}
    if headers:
        base.update(headers)
    if request.headers.get(hdrs.IF_NONE_MATCH) == etag:
        return web.Response(status=304, headers=base)
    range_header = request.headers.get(hdrs.RANGE)
    if range_header is not None:
        if_range = request.headers.get(hdrs.IF_RANGE)
        if if_range is None or if_range == etag:
            try:
                span = _parse_byte_range(range_header, size)
            except _Unsatisfiable:
                return json_error(
                    416,
                    "Range not satisfiable",
                    headers={**base, "Content-Range": f"bytes */{size}"},
                )
            if span is not None:
                first, last = span
                base["Content-Range"] = f"bytes {first}-{last}/{size}"
                return web.Response(
                    body=data[first : last + 1],
                    status=206,
                    content_type=content_type,
                    headers=base,
                )
    return web.Response(body=data, content_type=content_type, headers=base)
