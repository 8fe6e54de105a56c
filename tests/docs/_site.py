"""Read a built documentation site: pages, the reference's objects, and the public classes.

Used by `tests/docs/test_site.py`, which builds the site once (`mkdocs build --strict`) and
checks what a reader sees: signatures and fields, no reST left, no maintainer vocabulary on
user pages, code blocks that fit the column.
"""

from __future__ import annotations

import enum
import html
import importlib
import inspect
import pathlib
import re
from collections.abc import Iterator

import attrs

__all__ = [
    "MAINTAINER_PAGES",
    "PUBLIC_MODULES",
    "ROLE_IN_HTML",
    "VOCABULARY",
    "WIDTH",
    "DocObject",
    "init_fields",
    "objects",
    "page_text",
    "pages",
    "public_async_methods",
    "public_classes",
    "resolve",
    "wide_lines",
    "without_constructor",
]

WIDTH = 88
"""The longest line a code block may have (the column of the page at 1280 px)."""

MAINTAINER_PAGES = frozenset({"architecture", "conformance", "performance", "reliability"})
"""Pages for contributors (under "For contributors" in the nav): maintainer words allowed."""

PUBLIC_MODULES = (
    "imuzekit",
    "imuzekit.errors",
    "imuzekit.http",
    "imuzekit.testing",
    "imuzekit.webhooks",
    "imuzekit.emulator",
    "imuzekit.pytest_plugin",
    "imuzekit.providers",
    "imuzekit.providers.imuze",
    "imuzekit.providers.joplin",
    "imuzekit.providers.mureka",
    "imuzekit.providers.musescore",
    "imuzekit.jobs",
    "imuzekit.auth",
    "imuzekit.downloads",
    "imuzekit.client",
    "imuzekit.batch",
)
"""Modules whose `__all__` is the public surface the reference must show."""

ROLE_IN_HTML = re.compile(
    r":(?:py:)?(?:class|meth|func|data|attr|exc|mod|obj|const):(?:<code>|`)"
    r"|::</p>"  # a reST literal-block marker left at the end of a paragraph
)
"""A reST role (or literal-block marker) that reached the page as text."""

VOCABULARY = re.compile(
    r"\bseeds? \d{3}\b"  # "seed 001", "seeds 002 and 003"
    r"|\bseed(?:'s|s')? (?:examples?|documents?|files?|rows?)\b"
    r"|\(the seeds\)|\bshared/seeds\b|\b\d{3}_[0-9a-f]{16}\b"  # seed file names
    r"|(?<![\w/.~])imuzekit/[\w/*.]*\.py\b"  # repository paths
    r"|(?<![\w/.~])imuzekit/(?:providers|cli|batch|jobs|emulator|webhooks|_\w+)/"
    r"|(?<![\w/.~])(?:tests|benchmarks)/[\w/*.]+"
    r"|\b[Hh]elper [A-Z]\d?\b|\b[Ii]ssues? \d+\b"  # who built it, and when
)
"""Words for the people who build imuzekit, not for the people who use it."""


@attrs.frozen
class DocObject:
    """One object of the reference page: its anchor, kind, signature text and contents.

    `raises` holds the anchors the rows of its own "Raises" table link to
    (`imuzekit.errors.NotFoundError`, ...), in order; an unlinked type is kept as its text.
    """

    id: str
    kind: str
    signature: str | None
    members: tuple[str, ...]
    raises: tuple[str, ...] = ()


def pages(site: pathlib.Path) -> Iterator[tuple[str, str]]:
    """Each page of `site` as (name, HTML of its article), e.g. ("quickstart", "<article ...")."""
    for path in [*sorted(site.glob("*/index.html")), site / "index.html"]:
        name = "index" if path.parent == site else path.parent.name
        if name in {"search", "404"}:
            continue
        raw = path.read_text(encoding="utf-8")
        start, end = raw.find("<article"), raw.find("</article>")
        if start >= 0:
            yield name, raw[start:end]


def page_text(article: str) -> str:
    """The text a reader sees in an article (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", article))


_WIDE_MARK = re.compile(r"^\s*<!--\s*wide:\s*\S.*-->\s*$")


def wide_lines(page: pathlib.Path) -> list[tuple[int, str]]:
    """The lines of `page`'s fenced code blocks longer than `WIDTH`, as (line number, line).

    A block that cannot be wrapped (one JSON object per line, a program's one-line output)
    is exempt when one of the two lines before its fence is `<!-- wide: why -->`.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[tuple[int, str]] = []
    fence: str | None = None
    exempt = False
    for number, line in enumerate(lines, 1):
        stripped = line.lstrip()
        if fence is None and stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            before = [t for t in lines[max(0, number - 3) : number - 1] if t.strip()]
            exempt = any(_WIDE_MARK.match(t) for t in before)
        elif fence is not None and stripped.startswith(fence):
            fence = None
        elif fence is not None and not exempt and len(line) > WIDTH:
            found.append((number, line))
    return found


_RAISES = re.compile(
    r'<span class="doc-section-title">Raises:</span>.*?<tbody>(.*?)</tbody>', re.DOTALL
)
_RAISES_ROW = re.compile(r'<tr class="doc-section-item">\s*<td>(.*?)</td>', re.DOTALL)
_HREF = re.compile(r'href="#([\w.]+)"')


def _raised(chunk: str) -> tuple[str, ...]:
    """The types in the "Raises" table of one object's own part of the page."""
    table = _RAISES.search(chunk)
    if table is None:
        return ()
    found: list[str] = []
    for row in _RAISES_ROW.finditer(table.group(1)):
        link = _HREF.search(row.group(1))
        found.append(link.group(1) if link else page_text(row.group(1)).strip())
    return tuple(found)


_OBJECT = re.compile(
    r'<div class="doc doc-object doc-(class|function|attribute|module)">\s*'
    r'<h\d id="([\w.]+)"'
)


def objects(reference: str) -> dict[str, DocObject]:
    """The documented objects of the reference page, by anchor id."""
    found: dict[str, DocObject] = {}
    starts = list(_OBJECT.finditer(reference))
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(reference)
        chunk = reference[match.end() : end]
        heading_end = chunk.find("</h")
        after = chunk[heading_end:]
        signature = None
        contents = after.find('<div class="doc doc-contents')
        sig = re.search(r'<div class="doc-signature[^"]*">(.*?)</div>', after, re.DOTALL)
        if sig and (contents < 0 or sig.start() < contents):
            signature = page_text(sig.group(1))
        prefix = match.group(2) + "."
        members = tuple(
            m.group(2)
            for m in starts[i + 1 :]
            if m.group(2).startswith(prefix) and "." not in m.group(2)[len(prefix) :]
        )
        found[match.group(2)] = DocObject(
            match.group(2), match.group(1), signature, members, _raised(after)
        )
    return found


def resolve(dotted: str) -> object:
    """The object a dotted path names (`imuzekit.errors.APIError.status` ...)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise LookupError(dotted)


def public_classes() -> dict[str, type]:
    """Every class in a public module's `__all__`, by the path it is exported under."""
    found: dict[str, type] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if inspect.isclass(obj):
                found[f"{module_name}.{name}"] = obj
    return found


def public_async_methods(cls: type) -> list[str]:
    """The names of `cls`'s public coroutine and async-generator methods, in source order."""
    return [
        name
        for name, member in vars(cls).items()
        if not name.startswith("_")
        and (inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member))
    ]


def without_constructor(cls: type) -> bool:
    """Whether a reader expects members rather than a call: an enum or a protocol."""
    return issubclass(cls, enum.Enum) or bool(getattr(cls, "_is_protocol", False))


def init_fields(cls: type) -> list[str]:
    """The keyword names of an attrs class's constructor, or [] for another class."""
    if not attrs.has(cls):
        return []
    return [f.alias for f in attrs.fields(cls) if f.init]
