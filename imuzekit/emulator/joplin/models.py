"""The emulated joplin engine's catalogue, records and composition rules.

Pure: no aiohttp. `music_problems` says what is wrong with a ``POST /musics`` body and
`compose_schema` lays out what the engine answers for a valid one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import attrs

__all__ = [
    "ENERGIES",
    "ENGINE_VERSION",
    "MAX_DURATION_MS",
    "MAX_REPORTED_PROBLEMS",
    "MIN_DURATION_MS",
    "MOVEMENTS",
    "Genre",
    "InvalidMusic",
    "MusicRecord",
    "Subgenre",
    "compose_schema",
    "genre_catalogue",
    "music_problems",
]

ENGINE_VERSION = "joplin-2.4.1"
"""``music_engine_version`` of every schema (`JoplinState.engine_version` changes it)."""

MIN_DURATION_MS = 1_000
"""Shortest ``duration_ms`` a music may be requested with."""
MAX_DURATION_MS = 1_200_000
"""Longest ``duration_ms`` a music may be requested with (20 minutes)."""

ENERGIES = ("calm", "medium", "dynamic")
"""Values of a movement's ``energy``."""
MOVEMENTS = ("intro", "verse", "refrain", "chorus", "bridge", "outro", "break", "drop")
"""Values of a movement's ``movement`` (its type)."""

# The energy a movement type implies, so that typed movements also weigh on the tempo.
_MOVEMENT_ENERGY = {
    "intro": "calm",
    "verse": "medium",
    "refrain": "medium",
    "chorus": "dynamic",
    "bridge": "medium",
    "outro": "calm",
    "break": "calm",
    "drop": "dynamic",
}
_ENERGY_SCORE = {"calm": -1.0, "medium": 0.0, "dynamic": 1.0}
# An all-dynamic structure plays 8 % faster than the subgenre's base tempo, an all-calm one 8 %
# slower: enough to be visible in a schema, small enough to stay in the style.
_TEMPO_SWING = 0.08
MAX_REPORTED_PROBLEMS = 5
"""A 400 names at most this many problems: a 10,000-movement structure that is all wrong should
not produce a megabyte error message."""


@attrs.frozen
class Subgenre:
    """One subgenre of the catalogue, with the tempo and meter the engine plays it in."""

    name: str
    bpm: int
    """Base tempo, before the structure's energy moves it."""
    measure: str
    """Time signature, ``"4/4"``, ``"3/4"``..."""

    @property
    def beats_per_measure(self) -> int:
        """The signature's numerator."""
        return int(self.measure.partition("/")[0])


@attrs.frozen
class Genre:
    """One genre of ``GET /genres/`` and its subgenres."""

    name: str
    subgenres: tuple[Subgenre, ...]

    def subgenre(self, name: str) -> Subgenre | None:
        """The subgenre with this exact name, or None."""
        return next((sub for sub in self.subgenres if sub.name == name), None)


def genre_catalogue() -> dict[str, Genre]:
    """The catalogue of ``GET /genres/``, by name (a fresh copy)."""
    entries: list[tuple[str, list[tuple[str, int, str]]]] = [
        ("electronic", [("house", 124, "4/4"), ("techno", 130, "4/4"), ("ambient", 84, "4/4"),
                        ("drum-and-bass", 174, "4/4")]),
        ("classical", [("baroque", 100, "4/4"), ("romantic", 72, "4/4"), ("waltz", 90, "3/4")]),
        ("rock", [("indie", 120, "4/4"), ("hard-rock", 132, "4/4"), ("ballad", 70, "4/4")]),
        ("hip-hop", [("boom-bap", 90, "4/4"), ("trap", 140, "4/4"), ("g-funk", 96, "4/4")]),
        ("jazz", [("swing", 140, "4/4"), ("bossa-nova", 120, "4/4"), ("jazz-waltz", 138, "3/4"),
                  ("smooth", 95, "4/4")]),
        ("cinematic", [("epic", 110, "4/4"), ("suspense", 80, "4/4"), ("adventure", 120, "4/4"),
                       ("emotional", 68, "3/4")]),
        ("pop", [("dance-pop", 120, "4/4"), ("synth-pop", 115, "4/4"), ("acoustic", 100, "4/4")]),
        ("lofi", [("chillhop", 80, "4/4"), ("jazzhop", 85, "4/4"), ("sleep", 65, "4/4")]),
    ]  # fmt: skip
    return {name: Genre(name, tuple(Subgenre(*sub) for sub in subs)) for name, subs in entries}


@attrs.define
class MusicRecord:
    """A music as the emulator stores it; readiness is derived from the clock on every read."""

    id: str
    owner: int
    """Id of the user whose token created it."""
    request: dict[str, Any]
    """The request body as received (validated)."""
    schema: dict[str, Any]
    """What ``POST /musics`` and ``GET /musics/{id}/schema`` answer."""
    created_at: float
    """Emulator clock time (`Clock.now`) of creation."""
    render_seconds: float
    fadeout_ms: int
    """Requested fade-out (0 when none), written into the MP3's ID3 tag."""
    ready_override: bool | None = None
    """Readiness forced by `JoplinState.set_ready`, used as is while not None."""

    @property
    def ready_at(self) -> float:
        """Clock time at which the MP3 becomes available (unless overridden)."""
        return self.created_at + self.render_seconds

    @property
    def duration_ms(self) -> int:
        """The rendered duration (the schema's ``duration_ms``), what the MP3 lasts."""
        value: int = self.schema["duration_ms"]
        return value

    @property
    def bpm(self) -> int:
        """The schema's tempo."""
        value: int = self.schema["bpm"]
        return value


class InvalidMusic(ValueError):
    """A music request the API answers with 400; the message names the offending fields."""


# --------------------------------------------------------------------------------------------
# Validation and composition


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_unit_number(value: object) -> bool:
    # bool is an int subclass; NaN fails the comparison, so Python's lenient NaN/Infinity JSON
    # literals are rejected too.
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _movement_problems(index: int, movement: object) -> list[str]:
    where = f"structure[{index}]"
    if not isinstance(movement, dict):
        return [f"{where} must be an object with start, duration and optionally energy or movement"]
    problems = [
        f"{where}.{field} must be a number from 0 to 1"
        for field in ("start", "duration")
        if not _is_unit_number(movement.get(field))
    ]
    energy, kind = movement.get("energy"), movement.get("movement")
    # Neither is fine: seed 000's own create example has movements with only start and duration.
    if energy is not None and kind is not None:
        problems.append(f"{where} must have either energy or movement, not both")
    elif energy is not None and energy not in ENERGIES:
        problems.append(f"{where}.energy must be one of {', '.join(ENERGIES)}")
    elif kind is not None and kind not in MOVEMENTS:
        problems.append(f"{where}.movement must be one of {', '.join(MOVEMENTS)}")
    return problems


def music_problems(body: Mapping[str, Any], genres: Mapping[str, Genre]) -> list[str]:
    """Everything wrong with a ``POST /musics`` body, each message starting with its field.

    An empty list means the body is valid. Unknown fields are ignored, like the API does.
    """
    problems: list[str] = []
    genre_name, subgenre_name = body.get("genre"), body.get("subgenre")
    genre = genres.get(genre_name) if isinstance(genre_name, str) else None
    if genre_name is None:
        problems.append("genre is required")
    elif genre is None:
        problems.append(f"genre must be one of {', '.join(genres)} (see GET /genres/)")
    if subgenre_name is None:
        problems.append("subgenre is required")
    elif not isinstance(subgenre_name, str):
        problems.append("subgenre must be a string")
    elif genre is not None and genre.subgenre(subgenre_name) is None:
        names = ", ".join(sub.name for sub in genre.subgenres)
        problems.append(f"subgenre must be a subgenre of {genre.name}: one of {names}")

    duration = body.get("duration_ms")
    # The bound of fadeout_ms: the requested duration when that one is valid.
    fadeout_limit = MAX_DURATION_MS
    if duration is None:
        problems.append("duration_ms is required")
    elif _is_int(duration) and MIN_DURATION_MS <= duration <= MAX_DURATION_MS:
        fadeout_limit = duration
    else:
        problems.append(
            f"duration_ms must be an integer from {MIN_DURATION_MS} to {MAX_DURATION_MS}"
        )

    structure = body.get("structure")
    if structure is None:
        problems.append("structure is required")
    elif not isinstance(structure, list) or not structure:
        problems.append("structure must be a non-empty list of movements")
    else:
        for index, movement in enumerate(structure):
            problems += _movement_problems(index, movement)
            if len(problems) >= MAX_REPORTED_PROBLEMS:
                break

    crop = body.get("crop")
    if crop is not None and not isinstance(crop, bool):
        problems.append("crop must be a boolean")
    fadeout = body.get("fadeout_ms")
    if fadeout is not None and not (_is_int(fadeout) and 0 <= fadeout <= fadeout_limit):
        problems.append("fadeout_ms must be an integer from 0 to duration_ms")
    volume = body.get("voices_volume")
    if volume is not None and not _is_int(volume):
        problems.append("voices_volume must be an integer")
    return problems


def _energy_of(movement: Mapping[str, Any]) -> str:
    """The energy a movement weighs on the tempo with: its own, its type's, else neutral."""
    energy = movement.get("energy")
    if energy is not None:
        return str(energy)
    kind = movement.get("movement")
    return _MOVEMENT_ENERGY[kind] if kind is not None else "medium"


def compose_schema(
    music_id: str,
    genre: Genre,
    subgenre: Subgenre,
    duration_ms: int,
    structure: Sequence[Mapping[str, Any]],
    *,
    crop: bool,
    engine_version: str,
) -> dict[str, Any]:
    """The engine's answer: the movements laid end to end, a tempo and a whole-measure length."""
    weights = [float(movement["duration"]) for movement in structure]
    total = sum(weights)
    if total <= 0:
        # Every duration is 0: the only fair reading is equal shares.
        weights, total = [1.0] * len(weights), float(len(weights))

    # The tempo follows the duration-weighted energy of the structure.
    energies = [_energy_of(m) for m in structure]
    score = sum(w * _ENERGY_SCORE[e] for w, e in zip(weights, energies, strict=True)) / total
    bpm = max(1, round(subgenre.bpm * (1 + _TEMPO_SWING * score)))

    if crop:
        rendered_ms = duration_ms
    else:
        # A song ends on a bar line: round up to whole measures. The epsilon keeps a duration
        # that already is a whole number of measures from gaining one through float noise.
        measure_ms = subgenre.beats_per_measure * 60_000 / bpm
        measures = math.ceil(duration_ms / measure_ms - 1e-9)
        rendered_ms = max(duration_ms, round(measures * measure_ms))

    # The requested starts are not placements: movements play in order, back to back, so each
    # start is the running sum of the normalised durations and together they tile [0, 1].
    # Rounded to a millionth of the whole, as an engine would print them, rather than
    # showing float noise such as 0.49999999999999994.
    starts = [0.0, *(round(acc / total, 6) for acc in itertools.accumulate(weights[:-1]))]
    ends = [*starts[1:], 1.0]
    laid_out = []
    for movement, start, end in zip(structure, starts, ends, strict=True):
        item: dict[str, Any] = {"start": start, "duration": round(end - start, 6)}
        if movement.get("energy") is not None:
            item["energy"] = movement["energy"]
        elif movement.get("movement") is not None:
            item["movement"] = movement["movement"]
        laid_out.append(item)

    return {
        "id": music_id,
        "genre": genre.name,
        "subgenre": subgenre.name,
        "music_engine_version": engine_version,
        "bpm": bpm,
        "measure": subgenre.measure,
        "duration_ms": rendered_ms,
        "structure": laid_out,
    }
