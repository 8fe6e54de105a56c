"""What every provider shares: the converter, JSON decoding, structuring and request checks.

Pure code: no I/O, no aiohttp. Parse failures become `ParseError` with
the path of the offending value; request checks raise `ValidationError`
naming the field, before anything is sent.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import cattrs
from cattrs import transform_error

from imuzekit import errors
from imuzekit._convert import JSONTooDeepError, loads_json, make_converter
from imuzekit._http import Response
from imuzekit.providers._registry import registry

__all__ = [
    "check_int",
    "check_str",
    "check_str_list",
    "converter",
    "decode_json",
    "join_url",
    "structure",
]

T = TypeVar("T")

# RFC 3986 unreserved characters: exactly what ``quote(text, safe="")`` leaves alone.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def converter() -> cattrs.Converter:
    """The package's converter with every registered provider's wire hooks.

    The hooks come from the provider specs in the registry (`ProviderSpec.converter_hooks`), so
    this module imports no provider: the converter is built once per set of providers, on
    first use, and again only after a provider is registered.
    """
    return _parsing_with(registry().converter_hooks()).converter


class _Parsing:
    """A converter with the structure hook of each class it was asked for, looked up once."""

    __slots__ = ("converter", "hooks")

    def __init__(self, converter: cattrs.Converter) -> None:
        self.converter = converter
        self.hooks: dict[Any, Callable[[Any, Any], Any]] = {}

    def hook(self, cls: Any) -> Callable[[Any, Any], Any]:
        found = self.hooks.get(cls)
        if found is None:
            found = self.hooks[cls] = self.converter.get_structure_hook(cls)
        return found


@functools.lru_cache(maxsize=8)
def _parsing_with(hooks: tuple[Callable[[cattrs.Converter], None], ...]) -> _Parsing:
    conv = make_converter()
    for hook in hooks:
        hook(conv)
    return _Parsing(conv)


def decode_json(response: Response, *, secret: bool = False) -> Any:
    """The response body as JSON; ParseError when it is not JSON (an HTML error page, say).

    With ``secret`` (a login answer, which may hold a token) nothing of the body is quoted.
    """
    body = response.body
    try:
        if body[:1] in (b"{", b"[") and body[1:2] != b"\x00":
            # An object or array in UTF-8 (which RFC 8259 requires of JSON between systems):
            # decoded directly, without json.loads's guess at UTF-16/32, as aiohttp does.
            return loads_json(body.decode("utf-8", "surrogatepass"))
        return loads_json(body)
    except JSONTooDeepError as exc:
        raise errors.ParseError(
            f"{response.request.provider or 'provider'} answered {response.status} with {exc}",
            body=None,
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        if not secret:
            raise _not_json(response, response.text()[:200]) from exc
    # A login answer: raised outside the except block, since the decode error's `.doc` is the
    # whole answer (a token, an echoed password) and would stay reachable as the context.
    raise _not_json(response, None)


def _not_json(response: Response, snippet: str | None) -> errors.ParseError:
    """The error of an answer that is not JSON; ``snippet`` None withholds the body."""
    quoted = "<login answer withheld>" if snippet is None else repr(snippet)
    return errors.ParseError(
        f"{response.request.provider or 'provider'} answered {response.status} with a body "
        f"that is not JSON ({response.content_type or 'no content type'}): {quoted}",
        body=snippet,
    )


def structure(data: Any, cls: type[T], *, path: str = "$") -> T:
    """Structure ``data`` into ``cls``; ParseError naming the first bad path otherwise."""
    # converter().structure(data, cls) without its dispatch: the class's hook, remembered.
    parsing = _parsing_with(registry().converter_hooks())
    hook = parsing.hooks.get(cls) or parsing.hook(cls)
    try:
        value: T = hook(data, cls)
        return value
    except RecursionError:
        # Decoded answers nest at most MAX_JSON_DEPTH levels; this guards other callers.
        raise errors.ParseError(
            f"cannot read {cls.__name__}: nested too deeply", path=path
        ) from None
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        messages = transform_error(exc, path=path)
        first = messages[0] if messages else str(exc)
        description, _, where = first.rpartition(" @ ")
        raise errors.ParseError(
            f"cannot read {cls.__name__}: {description or first}", path=where or path, body=data
        ) from exc


def expect_object(data: Any, what: str, *, path: str = "$", secret: bool = False) -> dict[str, Any]:
    """``data`` as a JSON object, or ParseError (without the body when it is ``secret``)."""
    if not isinstance(data, dict):
        raise errors.ParseError(
            f"expected {what} as a JSON object, got {type(data).__name__}",
            path=path,
            body=None if secret else data,
        )
    return data


@functools.lru_cache(maxsize=1024)
def _encoded_segment(text: str) -> str:
    # Route words and ids repeat from request to request: remembered rather than checked each
    # time. They are nearly always unreserved characters, which quote() returns unchanged.
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


def join_url(base: str, *segments: str | int) -> str:
    """``base`` followed by URL-encoded path ``segments`` (ids may contain ``:`` or ``/``)."""
    if base[-1:] == "/":
        base = base.rstrip("/")
    if not segments:
        return base
    # An int is digits and "-": nothing to encode.
    path = "/".join([str(s) if type(s) is int else _encoded_segment(str(s)) for s in segments])
    return f"{base}/{path}" if path else base


# -- request checks ----------------------------------------------------------------------


def check_str(
    field: str, value: Any, *, max_length: int | None = None, allow_empty: bool = False
) -> str:
    """A string (non-empty unless allowed, at most ``max_length`` characters)."""
    if not isinstance(value, str):
        raise errors.ValidationError(field, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise errors.ValidationError(field, "must not be empty")
    if max_length is not None and len(value) > max_length:
        raise errors.ValidationError(
            field, f"must be at most {max_length} characters, got {len(value)}"
        )
    return value


def check_int(
    field: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An int (not a bool, not a float) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        if not (isinstance(value, float) and math.isfinite(value) and value.is_integer()):
            raise errors.ValidationError(field, f"must be an integer, got {value!r}")
        value = int(value)
    number: int = value
    if minimum is not None and number < minimum:
        raise errors.ValidationError(field, f"must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise errors.ValidationError(field, f"must be <= {maximum}, got {number}")
    return number


def check_str_list(field: str, value: Any, *, max_length: int | None = None) -> tuple[str, ...]:
    """A collection of strings (a lone string is refused: it is not a list of tags)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Collection):
        raise errors.ValidationError(
            field, f"must be a list of strings, got {type(value).__name__}"
        )
    for index, item in enumerate(value):
        check_str(f"{field}[{index}]", item, max_length=max_length)
    return tuple(value)
