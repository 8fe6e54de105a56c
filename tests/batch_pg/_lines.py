"""Manifest lines and journal openers shared by the PostgreSQL journal tests."""

from __future__ import annotations

import json
from typing import Any

from imuzekit.batch._manifest import ManifestLine, parse_line
from tests._titles import numbered_title


def mureka_line(number: int, key: str, prompt: str = "piano") -> ManifestLine:
    """A Mureka instrumental line numbered ``number``."""
    text = json.dumps(
        {"provider": "mureka", "key": key, "kind": "create_instrumental", "prompt": prompt}
    )
    return parse_line(number, text)


def imuze_line(number: int, key: str, **extra: Any) -> ManifestLine:
    """An iMuze line (it carries a marker), with a title iMuze accepts."""
    text = json.dumps(
        {
            "provider": "imuze",
            "key": key,
            "title": numbered_title(number, "Morning Song"),
            "arrangement_id": 1,
            "desired_length": 3,
            **extra,
        }
    )
    return parse_line(number, text)


def manifest(n: int, prefix: str = "line") -> list[ManifestLine]:
    """``n`` lines, alternately iMuze and Mureka, keys ``<prefix>-0001``..."""
    return [
        (imuze_line if number % 2 else mureka_line)(number, f"{prefix}-{number:04d}")
        for number in range(1, n + 1)
    ]
