"""MuseScore.com's wire rules for the converter, and the salvage of an odd score in a list.

Pure. Numbers often arrive as strings, empty strings mean "not set", ``metadata.parts`` wraps each
part as ``{"part": {...}}``, counts may come fractional (read as the nearest integer) and
``metadata.duration`` may be fractional (kept) and ``tags`` is one comma-separated string: the
hooks registered by `configure_converter` take care of all of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import cattrs
from cattrs.gen import make_dict_structure_fn

from imuzekit import errors
from imuzekit.providers._common import structure
from imuzekit.providers.musescore.models import (
    MeasureBox,
    OEmbed,
    Part,
    Score,
    ScoreDates,
    ScoreMetadata,
    ScoreUser,
    TimeEvent,
    User,
)

__all__ = ["configure_converter", "salvage_score"]

# Leaves first: a generated structure function looks up its fields' hooks when it is made.
_MODELS = (Part, ScoreUser, ScoreDates, ScoreMetadata, Score, User, TimeEvent, MeasureBox, OEmbed)


# Counts that may come fractional ("pages": "9.5"): read as the nearest integer.
_COUNTS: Mapping[type[Any], tuple[str, ...]] = {
    ScoreMetadata: ("pages", "measures", "lyrics", "chordnames", "keysig"),
    Score: ("comment_count", "favoriting_count", "view_count", "playback_count", "download_count"),
}


def _nearest_int(value: Any) -> Any:
    """A fractional number (or numeric string) as the nearest integer; others unchanged."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
    if isinstance(number, float) and math.isfinite(number) and not number.is_integer():
        return math.floor(number + 0.5)
    return value


def _tags(value: Any) -> tuple[str, ...]:
    """A score's tags from the API's comma-separated string (or a list); anything else: none."""
    if isinstance(value, str):
        items: Sequence[Any] = value.split(",")
    elif isinstance(value, list | tuple):
        items = value
    else:
        return ()
    # One odd item (a number, null) is dropped rather than failing the score.
    texts = (
        str(item).strip()
        for item in items
        if isinstance(item, str | int | float) and not isinstance(item, bool)
    )
    return tuple(text for text in texts if text)


def _blank_to_none(converter: cattrs.Converter, cls: type[Any]) -> None:
    inner = make_dict_structure_fn(cls, converter)
    counts = _COUNTS.get(cls, ())

    def structure_blank_as_none(value: Any, tp: Any) -> Any:
        if isinstance(value, Mapping):
            value = {k: (None if v == "" else v) for k, v in value.items()}
            if cls is Part and isinstance(value.get("part"), Mapping):
                value = {k: (None if v == "" else v) for k, v in value["part"].items()}
            for key in counts:
                if value.get(key) is not None:
                    value[key] = _nearest_int(value[key])
            if cls is Score:
                value["tags"] = _tags(value.get("tags"))
        return inner(value, tp)

    converter.register_structure_hook(cls, structure_blank_as_none)


def _int_or_str(value: Any, _: Any) -> int | str:
    # oEmbed's width is "100%" unless a maxwidth was given; then it is a number of pixels.
    if isinstance(value, bool):
        raise TypeError("expected a size")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value) if value.strip().isdigit() else value
    raise TypeError(f"expected a size, got {value!r}")


def _optional_int_or_str(value: Any, tp: Any) -> int | str | None:
    return None if value is None else _int_or_str(value, tp)


def _number(value: Any, _: Any) -> int | float:
    # metadata.duration: seconds, an integer in the reference's example, fractional at times.
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    number: int | float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        number = int(text) if text.lstrip("-").isdigit() else float(text)
    else:
        raise TypeError(f"expected a number, got {value!r}")
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {value!r}")
        if number.is_integer():
            return int(number)
    return number


def _optional_number(value: Any, tp: Any) -> int | float | None:
    return None if value is None else _number(value, tp)


def configure_converter(converter: cattrs.Converter) -> None:
    """Register MuseScore.com's wire rules on the package converter."""
    converter.register_structure_hook(int | str, _int_or_str)
    converter.register_structure_hook(int | str | None, _optional_int_or_str)
    converter.register_structure_hook(int | float, _number)
    converter.register_structure_hook(int | float | None, _optional_number)
    for cls in _MODELS:
        _blank_to_none(converter, cls)


_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_SALVAGE_ROUNDS = 32


def salvage_score(item: Any, where: str) -> Score | None:
    """``item`` as a Score, with each unreadable field set to None; None without a usable id."""
    for _ in range(_SALVAGE_ROUNDS):
        try:
            return structure(item, Score, path=where)
        except errors.ParseError as exc:
            tokens = _PATH_TOKEN.findall(exc.path[len(where) :])
            if not isinstance(item, dict) or not tokens or tokens[0][0] in ("", "id"):
                return None
            item = _without(item, tokens)
    return None


def _without(data: Any, tokens: Sequence[tuple[str, str]]) -> Any:
    """A copy of ``data`` with the value at ``tokens`` (keys and list indices) set to None."""
    key, index = tokens[0]
    if isinstance(data, dict) and key and key not in data and len(data) == 1:
        # A wrapper the hooks look through (``{"part": {...}}``): the path is inside it.
        (wrapper, inner), *_ = data.items()
        if isinstance(inner, dict):
            return {wrapper: _without(inner, tokens)}
    if isinstance(data, dict) and key:
        rest = tokens[1:]
        return {**data, key: _without(data.get(key), rest) if rest else None}
    if isinstance(data, list) and index and int(index) < len(data):
        position = int(index)
        rest = tokens[1:]
        copy = list(data)
        copy[position] = _without(data[position], rest) if rest else None
        return copy
    return None
