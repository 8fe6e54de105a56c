"""Manifest lines every worker test uses: only providers whose creates can be looked up (a
line killed mid-create is reconciled, never left uncertain)."""

from __future__ import annotations

import json
from typing import Any

from tests._titles import numbered_title


def line(number: int, prefix: str = "line") -> dict[str, Any]:
    """Line ``number``: two iMuze songs, then a Mureka advanced song (titled: searchable)."""
    key = f"{prefix}-{number:04d}"
    if number % 3:
        return {
            "provider": "imuze",
            "key": key,
            "title": numbered_title(number, "Morning Song"),
            "arrangement_id": 1 + number % 3,
            "desired_length": 2,
        }
    return {
        "provider": "mureka",
        "kind": "create_advanced",
        "key": key,
        "lyrics": f"verse {number}\nchorus {number}",
        "title": numbered_title(number, "Evening Tune"),
    }


def manifest_text(n: int, prefix: str = "line") -> str:
    """``n`` lines as JSONL."""
    return "".join(json.dumps(line(number, prefix)) + "\n" for number in range(1, n + 1))
