"""How the emulated MuseScore.com writes its answers: JSON, XML (the reference's), JSONP, HTML.

`render` writes a REST answer in the format its path asks for; `page` an HTML page of the site.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs
from aiohttp import web

from imuzekit.emulator._kit.http import dumps

from .models import MuseScoreError

__all__ = ["Rendering", "page", "page_not_found", "render", "render_error", "rendering_for"]

_Format = Literal["json", "xml", "jsonp"]
_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*", re.ASCII)
# Characters XML 1.0 cannot carry, even escaped: user text loses them in XML answers.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_ITEM_NAMES: Final[Mapping[str, str]] = {
    "scores": "score", "events": "event", "elements": "element", "parts": "part",
    "users": "user",
}  # fmt: skip


def _xml_text(value: str) -> str:
    return html.escape(_XML_INVALID.sub("", value), quote=False)


def _xml_element(name: str, value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for key, child in value.items():
            _xml_element(key, child, out)
        out.append(f"</{name}>")
    elif isinstance(value, list):
        item_name = _XML_ITEM_NAMES.get(name, "item")
        out.append(f'<{name} is_array="true">')
        for item in value:
            # {"part": {...}} wrappers (metadata parts) are already the item element.
            if isinstance(item, dict) and len(item) == 1 and item_name in item:
                _xml_element(item_name, item[item_name], out)
            else:
                _xml_element(item_name, item, out)
        out.append(f"</{name}>")
    elif value is None:
        out.append(f"<{name}/>")
    elif isinstance(value, bool):
        out.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    else:
        out.append(f"<{name}>{_xml_text(str(value))}</{name}>")


def _to_xml(value: Any, root: str) -> str:
    """The reference's XML: an element per key, arrays marked ``is_array="true"``."""
    out = ['<?xml version="1.0" encoding="utf-8"?>\n']
    _xml_element(root, value, out)
    out.append("\n")
    return "".join(out)


@attrs.frozen
class Rendering:
    """How a REST answer is written: JSON, XML, or JSONP with its callback."""

    format: _Format
    callback: str | None = None


def rendering_for(fmt: str, callback: str | None) -> Rendering:
    """The rendering a format suffix asks for; `MuseScoreError` (400) if unsupported."""
    if fmt in ("", "json"):
        return Rendering("json")
    if fmt == "xml":
        return Rendering("xml")
    if fmt == "jsonp":
        if not callback or len(callback) > 128 or not _CALLBACK.fullmatch(callback):
            raise MuseScoreError(400, "callback: a JavaScript function name is required")
        return Rendering("jsonp", callback)
    raise MuseScoreError(400, f"Unsupported format {fmt[:16]!r}: use json, xml or jsonp")


def render(
    rendering: Rendering,
    data: Any,
    root: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """`data` in the requested format, rooted at `root` in XML."""
    if rendering.format == "xml":
        return web.Response(
            text=_to_xml(data, root),
            status=status,
            content_type="application/xml",
            headers=headers,
        )
    if rendering.format == "jsonp":
        return web.Response(
            text=f"{rendering.callback}({dumps(data)});",
            status=status,
            content_type="application/javascript",
            headers=headers,
        )
    return web.Response(
        text=dumps(data), status=status, content_type="application/json", headers=headers
    )


def render_error(rendering: Rendering, exc: MuseScoreError, origin: str) -> web.Response:
    """An error in the requested format (401s name the OAuth realm)."""
    headers = None
    if exc.status == 401:
        headers = {"WWW-Authenticate": f'OAuth realm="{origin}"'}
    return render(
        rendering, {"error": exc.message, "code": exc.status}, "result", exc.status, headers
    )


def page(title: str, body: str, status: int = 200) -> web.Response:
    """An HTML page of the emulated site."""
    text = (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}'
        f" - MuseScore.com (emulated)</title></head>\n<body>\n{body}\n</body></html>\n"
    )
    return web.Response(text=text, status=status, content_type="text/html")


def page_not_found() -> web.Response:
    """The site's 404 page."""
    return page("Page not found", "<h1>Page not found</h1>", status=404)
