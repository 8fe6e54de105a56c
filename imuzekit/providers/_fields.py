"""Config field checks: credentials are strings, base URLs absolute http(s) URLs.

attrs validators raising `ValidationError` that names the field as `<provider>.<field>`
(`imuze.base_url`), the provider being the config class's `PROVIDER` or its name without
`Config`. A credential's value is never shown in the error; a URL's is, unless it carries
credentials (`user:pass@host`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import attrs

from imuzekit import errors

__all__ = ["check_http_url", "check_text", "text_field", "url_field"]


def _field_path(instance: object, attribute: attrs.Attribute[Any]) -> str:
    """`imuze.base_url`: the provider (the class's `PROVIDER`, else its name without
    `Config`, lower-cased) and the field."""
    cls = type(instance)
    provider = getattr(cls, "PROVIDER", None) or cls.__name__.removesuffix("Config").lower()
    return f"{provider}.{attribute.name}"


def check_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: `value` is a string or None (a credential given as a number or a
    list is refused, naming the field and the type, never the value)."""
    if value is not None and not isinstance(value, str):
        raise errors.ValidationError(
            _field_path(instance, attribute), f"must be a string, got {type(value).__name__}"
        )


def check_http_url(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: `value` is an absolute `http` or `https` URL with a host."""
    path = _field_path(instance, attribute)
    if not isinstance(value, str):
        raise errors.ValidationError(path, f"must be a URL string, got {type(value).__name__}")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # an invalid port or IPv6 literal
        host = None
        parts = urlsplit("")
    if parts.scheme.lower() not in ("http", "https") or not host or value != value.strip():
        shown = value if "@" not in value else "<a URL with credentials>"
        raise errors.ValidationError(
            path, f"must be an absolute http(s) URL such as https://host/path, got {shown!r}"
        )


def text_field(default: str | None = None) -> Any:
    """An attrs field holding a string or None (`check_text`)."""
    return attrs.field(default=default, validator=check_text)


def url_field(default: str) -> Any:
    """An attrs field holding an absolute http(s) URL (`check_http_url`), such as a `base_url`."""
    return attrs.field(default=default, validator=check_http_url)
