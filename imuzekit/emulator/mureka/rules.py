"""The emulated Mureka's rules on what a creation may hold, and the lyrics it writes.

Pure: no aiohttp.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .models import CREATE_ROUTES, MODELS

__all__ = [
    "creation_problems",
    "is_int",
    "lyrics_from_prompt",
    "lyrics_from_text",
    "reply_problems",
    "timed_lyrics",
    "title_from",
    "words",
]

# Optional identifiers each route accepts (strings; numbers are tolerated).
_ID_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "create": (),
    "create-advanced": ("vocal_id", "ref_id", "motif_id"),
    "create-instrumental": ("ref_id",),
}
_MAX_ID_CHARS = 128
# useapi.net documents no limits for these; the emulator accepts what a sane client sends.
_MAX_REPLY_URL = 2048
_MAX_REPLY_REF = 256
_REPLY_URL = re.compile(r"^https?://[^/?#\s]+[^\s]*$", re.IGNORECASE)
# Lyrics rows are spread over this part of the song (an intro and an outro without vocals).
_VOCALS = (0.08, 0.92)
_DANGLING = frozenset(("a", "an", "the", "of", "for", "about", "to", "in", "on", "and", "with"))
_STOCK_LINES = (
    "Lights are falling on the open road",
    "Every step a story to be told",
    "Hold the moment, never let it go",
    "Sing it louder than the radio",
)


def is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def creation_problems(route: str, body: Mapping[str, Any]) -> list[str]:
    """Everything wrong with a creation body, each as ``"<field>: <problem>"``."""
    problems: list[str] = []
    for field, limit in CREATE_ROUTES[route].items():
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(f"{field}: must be a string")
        elif len(value) > limit:
            problems.append(f"{field}: must be at most {limit} characters, got {len(value)}")
    if route == "create-advanced":
        lyrics = body.get("lyrics")
        if lyrics is None or (isinstance(lyrics, str) and not lyrics.strip()):
            problems.insert(0, "lyrics: is required")
    for field in _ID_FIELDS[route]:
        value = body.get(field)
        if value is None:
            continue
        if not (isinstance(value, str) or is_int(value)):
            problems.append(f"{field}: must be a string")
        elif len(str(value)) > _MAX_ID_CHARS:
            problems.append(f"{field}: must be at most {_MAX_ID_CHARS} characters")
    model = body.get("model")
    if model is not None and model not in MODELS:
        problems.append(f"model: must be one of {', '.join(MODELS)}")
    is_async = body.get("async")
    if is_async is not None and not isinstance(is_async, bool):
        problems.append("async: must be a boolean")
    problems.extend(reply_problems(body))
    return problems


def reply_problems(body: Mapping[str, Any]) -> list[str]:
    """What is wrong with a creation's ``replyUrl`` (an http(s) URL) and ``replyRef``."""
    problems: list[str] = []
    url = body.get("replyUrl")
    if url is not None:
        if not isinstance(url, str):
            problems.append("replyUrl: must be a string")
        elif len(url) > _MAX_REPLY_URL or not _REPLY_URL.match(url):
            problems.append("replyUrl: must be an http(s) URL")
    ref = body.get("replyRef")
    if ref is not None:
        if not isinstance(ref, str):
            problems.append("replyRef: must be a string")
        elif len(ref) > _MAX_REPLY_REF:
            problems.append(f"replyRef: must be at most {_MAX_REPLY_REF} characters")
    return problems


def words(text: str) -> list[str]:
    """The words of `text`, punctuation around them stripped."""
    stripped = (word.strip(".,;:!?\"'()[]") for word in text.split())
    return [word for word in stripped if word]


def lyrics_from_prompt(prompt: str) -> tuple[tuple[str, ...], ...]:
    """A verse made of the prompt's words and a chorus about its subject."""
    tokens = words(prompt)[:40]
    lines = [" ".join(tokens[i : i + 5]).capitalize() for i in range(0, len(tokens), 5)][:4]
    verse = (*lines, *_STOCK_LINES[len(lines) :])
    subject = tokens[:3]
    # "rock anthem for" reads badly: a chorus names the subject without a dangling word.
    while len(subject) > 1 and subject[-1].lower() in _DANGLING:
        subject.pop()
    return verse, (f"Oh, {' '.join(subject) or 'the night'}", "We sing it all night long")


def lyrics_from_text(lyrics: str) -> tuple[tuple[str, ...], ...]:
    """Sections of the given lyrics: split on blank lines and ``[Verse]``-style tags."""
    sections: list[tuple[str, ...]] = []
    current: list[str] = []
    for raw in lyrics.splitlines():
        line = raw.strip()
        if not line or (line.startswith("[") and line.endswith("]")):
            if current:
                sections.append(tuple(current))
                current = []
            continue
        current.append(line)
    if current:
        sections.append(tuple(current))
    return tuple(sections)


def timed_lyrics(
    sections: Sequence[Sequence[str]], duration_ms: int, *, model_fields: bool = False
) -> list[dict[str, Any]]:
    """``[{"rows": [{"start", "end", "text"}]}]``: rows in equal slots (ms) over the vocals.

    With `model_fields` each section also has the model's ``seg_type`` (1 verse, 2 chorus,
    alternating), ``user_input_tag`` (``"[Verse]"``/``"[Chorus]"``), ``start`` and ``end``.
    """
    count = sum(len(section) for section in sections)
    if not count:
        return []
    first = duration_ms * _VOCALS[0]
    slot = duration_ms * (_VOCALS[1] - _VOCALS[0]) / count
    index = itertools.count()
    timed: list[dict[str, Any]] = []
    for section in sections:
        rows = []
        for text in section:
            i = next(index)
            # Each row is sung for 90 % of its slot: a breath between lines.
            start, end = round(first + i * slot), round(first + (i + 0.9) * slot)
            rows.append({"start": start, "end": end, "text": text})
        section_json: dict[str, Any] = {"rows": rows}
        if model_fields and rows:
            kind = len(timed) % 2
            section_json = {
                "seg_type": kind + 1,
                "user_input_tag": ("[Verse]", "[Chorus]")[kind],
                "start": rows[0]["start"],
                "end": rows[-1]["end"],
                "rows": rows,
            }
        timed.append(section_json)
    return timed


def title_from(text: str) -> str:
    """A title made of the first words of `text` (``"Untitled"`` without any)."""
    tokens = words(text)[:4]
    return " ".join(tokens).title()[:50] if tokens else "Untitled"
