"""The search's parameters as the emulated MuseScore.com reads them, and its relevance rule.

Pure: no aiohttp. Each parser takes the value as the query carries it (a string) or as a
Python value and raises `MuseScoreError` (400) when it is invalid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from imuzekit.emulator._files import DRUMSET_PROGRAM

from .models import LICENSE_FILTERS, SORTS, MuseScoreError, MuseScoreScore

__all__ = [
    "blank",
    "parse_int",
    "parse_language",
    "parse_license",
    "parse_programs",
    "parse_sort",
    "parse_text",
    "relevance",
]

_INT = re.compile(r"-?[0-9]{1,9}")


def blank(value: object) -> bool:
    """An absent parameter: None or empty."""
    return value is None or value == ""


def parse_int(value: str | int, name: str, minimum: int | None = None) -> int:
    """An integer parameter, at least `minimum` if given."""
    if isinstance(value, bool):
        raise MuseScoreError(400, f"{name}: must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise MuseScoreError(400, f"{name}: must be an integer")
    if minimum is not None and number < minimum:
        raise MuseScoreError(400, f"{name}: must be >= {minimum}")
    return number


def parse_text(text: str | None) -> str | None:
    """The ``text`` needle, lower-cased and unquoted; None when absent."""
    if blank(text):
        return None
    assert text is not None
    if len(text) >= 2 and text[0] == text[-1] == '"':
        # A quoted phrase matches literally, which a substring match already does.
        text = text[1:-1]
    return text.lower() or None


def parse_programs(value: str | int | Iterable[int] | None) -> tuple[int, ...]:
    """The ``part`` programs, each in [-1, 128]."""
    if blank(value):
        return ()
    assert value is not None
    items: list[str | int]
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, int):
        items = [value]
    else:
        items = list(value)
    programs = []
    for item in items:
        program = parse_int(item, "part")
        if not -1 <= program <= DRUMSET_PROGRAM:
            raise MuseScoreError(400, "part: must be a program number in [-1, 128]")
        programs.append(program)
    return tuple(programs)


def parse_language(value: str | None) -> str | None:
    """A 2-letter language code, lower-cased."""
    if blank(value):
        return None
    assert value is not None
    if not (len(value) == 2 and value.isascii() and value.isalpha()):
        raise MuseScoreError(400, "language: must be a 2-letter language code")
    return value.lower()


def parse_license(value: str | None) -> frozenset[str]:
    """The licences a ``license`` filter admits (all by default)."""
    if blank(value):
        return LICENSE_FILTERS["to_play"]
    assert value is not None
    try:
        return LICENSE_FILTERS[value]
    except KeyError:
        raise MuseScoreError(400, f"license: must be one of {', '.join(LICENSE_FILTERS)}") from None


def parse_sort(value: str | None) -> str:
    """The ``sort`` order (``relevance`` by default)."""
    if blank(value):
        return "relevance"
    if value not in SORTS:
        raise MuseScoreError(400, f"sort: must be one of {', '.join(SORTS)}")
    assert value is not None
    return value


def relevance(score: MuseScoreScore, needle: str) -> int:
    """How many of title, description and composer contain `needle`."""
    fields = (score.title, score.description, score.metadata.composer or "")
    return sum(needle in field.lower() for field in fields)
