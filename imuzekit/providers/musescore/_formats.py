"""MuseScore.com's three answer formats (seed 004: "XML, JSON and JSONP") read into one shape.

Pure: no I/O. `decode` turns any of the three into the data the JSON would have carried, so one
set of converter hooks reads them all:

* JSON as is;
* JSONP (``callback({...});``) by taking the JSON between the parentheses;
* XML the way the reference writes it: an element per key, a list where the element says
  ``is_array="true"`` (or where a tag repeats), text for leaves (``<x/>`` is None). The oEmbed
  ``<html>`` element carries the player's markup unescaped in the reference's example: an element
  listed in `MARKUP_TAGS` is read back as the markup it contains.
"""

from __future__ import annotations

import re
from typing import Any, Final

import attrs
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from imuzekit import errors
from imuzekit._http import Response
from imuzekit.providers._common import decode_json

__all__ = [
    "DEFAULT_CALLBACK",
    "FORMATS",
    "MARKUP_TAGS",
    "check_format",
    "decode",
    "format_params",
    "items_of",
]

FORMATS: Final = ("json", "xml", "jsonp")
"""The answer formats every GET endpoint offers."""
DEFAULT_CALLBACK: Final = "callback"
"""The JSONP function name sent when ``format="jsonp"`` is asked for without one."""
MARKUP_TAGS: Final = frozenset({"html"})
"""XML elements whose content is markup to keep as text (oEmbed's player)."""

_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*", re.ASCII)
# ``name(...)`` with an optional ``;``, and the ``/**/`` some servers put first against
# content sniffing.
_JSONP = re.compile(rb"\s*(?:/\*\*/\s*)?[A-Za-z_$][\w$.]*\s*\((.*)\)\s*;?\s*", re.DOTALL)


def check_format(fmt: str, callback: str | None) -> tuple[str, str | None]:
    """``(format, callback)`` to send; ValidationError naming ``format`` or ``callback``.

    A callback only goes with ``jsonp`` (which gets `DEFAULT_CALLBACK` when none is given) and
    must be a JavaScript function name (dots allowed: ``my.handler``).
    """
    if fmt not in FORMATS:
        raise errors.ValidationError("format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if callback is None:
        return fmt, DEFAULT_CALLBACK if fmt == "jsonp" else None
    if fmt != "jsonp":
        raise errors.ValidationError("callback", "goes only with format='jsonp'")
    if not isinstance(callback, str) or len(callback) > 128 or not _CALLBACK.fullmatch(callback):
        raise errors.ValidationError(
            "callback", f"must be a JavaScript function name, got {callback!r}"
        )
    return fmt, callback


def format_params(callback: str | None) -> dict[str, str]:
    """The ``callback`` query parameter of a JSONP request (nothing otherwise)."""
    return {} if callback is None else {"callback": callback}


def _is_xml(response: Response) -> bool:
    return response.content_type.endswith("xml") or response.body.lstrip()[:1] == b"<"


def decode(response: Response) -> Any:
    """The answer's data, whichever of JSON, XML or JSONP it came in; ParseError otherwise."""
    if _is_xml(response):
        return _decode_xml(response.body)
    body = response.body.lstrip()
    if body[:1] not in (b"{", b"[") and (match := _JSONP.fullmatch(body)) is not None:
        return decode_json(attrs.evolve(response, body=match.group(1).strip()))
    return decode_json(response)


def _decode_xml(body: bytes) -> Any:
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise errors.ParseError(f"not valid XML: {exc}", body=body[:200]) from exc
    return _xml_value(root)


def _xml_value(element: Any) -> Any:
    children = list(element)
    if element.get("is_array") == "true":
        return [_xml_value(child) for child in children]
    if element.tag in MARKUP_TAGS and children:
        inner = (element.text or "") + "".join(
            ElementTree.tostring(child, encoding="unicode") for child in children
        )
        return inner.strip()
    if not children:
        return None if element.text is None else element.text.strip()
    data: dict[str, Any] = {}
    repeated: set[str] = set()
    for child in children:
        value = _xml_value(child)
        if child.tag not in data:
            data[child.tag] = value
        elif child.tag in repeated:
            data[child.tag].append(value)
        else:
            # A tag that repeats without is_array is a list all the same.
            data[child.tag] = [data[child.tag], value]
            repeated.add(child.tag)
    return data


def items_of(data: Any, tag: str) -> Any:
    """The list inside a wrapper: ``{"score": [...]}`` or XML's ``<scores><score>`` (a single
    ``{"score": {...}}`` is a list of one); anything else is returned as it is."""
    if isinstance(data, dict) and set(data) == {tag}:
        inner = data[tag]
        return [inner] if isinstance(inner, dict) else inner
    return data
