"""Turn reST cross-reference roles in docstrings into Markdown code spans.

The API reference renders docstrings as Markdown, where a role such as
``:class:`~imuzekit.errors.JobTimeout``` shows as literal text. This rewrites it as
`` `JobTimeout` `` (a leading `~` keeps the last dotted part, as Sphinx does; an explicit
title, ``:class:`the job <imuzekit.Job>```, keeps the title; methods and functions get
`()`, as Sphinx shows them). A paragraph that ends with the literal-block marker `::`
before an indented block ends with `:` instead (the indented block is a code block in
Markdown too).

Usage: `python tests/docs/_roles.py FILE...` rewrites the files in place and prints how
many roles each had; `--check` only reports them and exits 1 when any is left.
"""

from __future__ import annotations

import pathlib
import re
import sys

__all__ = ["LITERAL_MARKER", "ROLE", "convert"]

ROLE = re.compile(r":(?:py:)?(class|meth|func|data|attr|exc|mod|obj|const):`([^`]+)`")
"""A reST role with its target, e.g. ``:meth:`~Job.wait```."""

LITERAL_MARKER = re.compile(r"(?<=[\w)\]\"'`])::$(?=\n\s*\n([ \t]+)\S)", re.MULTILINE)
"""A line ending in the reST literal-block marker `::`, followed by a blank and an indented line."""

_TITLED = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.DOTALL)


def _replace(match: re.Match[str]) -> str:
    role, target = match.group(1), match.group(2).strip()
    titled = _TITLED.match(target)
    if titled:
        return f"`{titled.group(1)}`"
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    target = target.lstrip("!.")
    if role in ("meth", "func") and not target.endswith(")"):
        target += "()"
    return f"`{target}`"


def _indented_more(text: str, match: re.Match[str]) -> bool:
    line_start = text.rfind("\n", 0, match.start()) + 1
    indent = len(text[line_start:]) - len(text[line_start:].lstrip(" "))
    return len(match.group(1)) > indent


def convert(text: str) -> tuple[str, int]:
    """Return `text` with every role and literal-block marker rewritten, and how many."""
    text, roles = ROLE.subn(_replace, text)
    markers = [m for m in LITERAL_MARKER.finditer(text) if _indented_more(text, m)]
    for match in reversed(markers):
        text = text[: match.start()] + ":" + text[match.end() :]
    return text, roles + len(markers)


def main(argv: list[str]) -> int:
    """Rewrite (or, with `--check`, only count) the roles in the files named in `argv`."""
    check = "--check" in argv
    left = 0
    for name in (a for a in argv if a != "--check"):
        path = pathlib.Path(name)
        text = path.read_text(encoding="utf-8")
        new, count = convert(text)
        if count:
            left += count
            print(f"{path}: {count}")
            if not check:
                path.write_text(new, encoding="utf-8")
    return 1 if check and left else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
