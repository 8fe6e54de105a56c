"""Models of the iMuze music engine, "joplin" (seed 000): genres, movements, structures, musics.

Field names are the API's own. A music's structure is a sequence of movements; each movement
covers a fraction of the music (``start`` and ``duration`` in [0, 1]) and has an energy level
(calm, medium, dynamic), a type (intro, verse, refrain, ...), or neither (seed 000's own create
example sends movements with only ``start`` and ``duration``); never both.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Iterator, Sequence

import attrs

from imuzekit import errors
from imuzekit._media import DownloadSpec, MediaKind

__all__ = ["Energy", "Genre", "Movement", "Music", "Structure"]

_TYPE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
STRUCTURE_SUM_TOLERANCE = 0.001


class Energy(enum.StrEnum):
    """A movement's energy level. Values the API adds later are kept as plain strings."""

    CALM = "calm"
    MEDIUM = "medium"
    DYNAMIC = "dynamic"


@attrs.frozen
class Genre:
    """A musical genre and its subgenres (``GET /genres/``)."""

    name: str
    subgenres: tuple[str, ...] = ()


@attrs.frozen
class Movement:
    """One part of a music's structure.

    ``start`` and ``duration`` are fractions of the whole music. A movement has an ``energy``,
    a ``movement`` type (such as ``"intro"``), or neither (the engine chooses); a request with
    both is refused before it is sent.
    """

    start: float
    duration: float
    energy: Energy | str | None = None
    movement: str | None = None

    @property
    def end(self) -> float:
        """Where the movement ends, as a fraction of the music."""
        return self.start + self.duration


def _plain_fraction(text: str) -> float | None:
    """``text`` as a number when it is one (a movement without energy or type), else None."""
    try:
        return float(text)
    except ValueError:
        return None


def _movement_from_token(token: str, start: float, index: int) -> Movement:
    name, sep, fraction_text = token.partition(":")
    name = name.strip().lower()
    field = f"structure[{index}]"
    if not sep and (plain := _plain_fraction(name)) is not None:
        name, fraction_text = "", str(plain)
    elif not sep or not name:
        raise errors.ValidationError(field, f"expected 'name:fraction', got {token.strip()!r}")
    try:
        fraction = float(fraction_text)
    except ValueError:
        raise errors.ValidationError(
            f"{field}.duration", f"not a number: {fraction_text.strip()!r}"
        ) from None
    if not math.isfinite(fraction) or not 0 < fraction <= 1:
        raise errors.ValidationError(f"{field}.duration", f"must be in (0, 1], got {fraction}")
    if not name:
        return Movement(start=start, duration=fraction)
    if name in Energy.__members__.values():
        return Movement(start=start, duration=fraction, energy=Energy(name))
    if not _TYPE_NAME.fullmatch(name):  # not match + `$`: that accepts a trailing newline
        raise errors.ValidationError(f"{field}.movement", f"not a movement type: {name!r}")
    return Movement(start=start, duration=fraction, movement=name)


def _as_movements(value: Iterable[Movement]) -> tuple[Movement, ...]:
    return tuple(value)


@attrs.frozen
class Structure:
    """An ordered sequence of movements; iterate it, index it, or build it with `parse()`."""

    movements: tuple[Movement, ...] = attrs.field(converter=_as_movements)

    @classmethod
    def parse(cls, text: str) -> Structure:
        """Consecutive movements from ``"calm:0.2,medium:0.4,dynamic:0.4"``.

        Each item is an energy (calm, medium, dynamic) or a movement type (``intro:0.1``) with
        the fraction of the music it takes, or a bare fraction (``0.25``) for a movement with
        neither; the fractions must add up to 1 (+-0.001).
        ValidationError names the offending item.
        """
        if not isinstance(text, str) or not text.strip():
            raise errors.ValidationError("structure", "must be a non-empty string")
        movements: list[Movement] = []
        start = 0.0
        for index, token in enumerate(text.split(",")):
            movement = _movement_from_token(token, start, index)
            movements.append(movement)
            start += movement.duration
        if abs(start - 1.0) > STRUCTURE_SUM_TOLERANCE:
            raise errors.ValidationError(
                "structure", f"the fractions must add up to 1, they add up to {start:.4f}"
            )
        # Snap the last movement so that the structure ends exactly at 1.
        last = movements[-1]
        movements[-1] = attrs.evolve(last, duration=max(0.0, 1.0 - last.start))
        return cls(movements)

    def __iter__(self) -> Iterator[Movement]:
        return iter(self.movements)

    def __len__(self) -> int:
        return len(self.movements)

    def __getitem__(self, index: int) -> Movement:
        return self.movements[index]

    def __str__(self) -> str:
        return ",".join(_movement_text(m) for m in self.movements)


def _movement_text(movement: Movement) -> str:
    name = movement.energy if movement.energy is not None else movement.movement
    return f"{movement.duration:g}" if name is None else f"{name}:{movement.duration:g}"


@attrs.frozen
class Music:
    """A generated music: its schema (bpm, measure, movements placed in time) and, once
    rendered, its mp3.

    ``mp3_url`` is where ``kit.download(music, dest)`` fetches the audio: the create answer's
    ``mp3_uri`` (a scheme-relative URL, resolved against the base URL's scheme) when it has one,
    else ``<base>/musics/<id>/mp3``. ``mp3_auth`` says whether the download carries the
    account's token: only when ``mp3_url`` is on the engine's own host.
    """

    id: str
    genre: str | None = None
    subgenre: str | None = None
    music_engine_version: str | None = None
    bpm: int | None = None
    measure: str | None = None
    duration_ms: int | None = None
    structure: tuple[Movement, ...] = ()
    mp3_url: str | None = None
    mp3_auth: bool = True

    def download_spec(self) -> DownloadSpec:
        """Where the mp3 is (authenticated when it is on the engine's own host)."""
        if not self.mp3_url:
            raise errors.ValidationError("source", f"music {self.id} has no mp3 URL")
        label = "-".join(part for part in (self.genre, self.subgenre) if part) or "music"
        return DownloadSpec(
            url=self.mp3_url,
            name=f"{label}-{self.id[:12]}",
            suffix=".mp3",
            kind=MediaKind.MP3,
            provider="joplin",
            auth=self.mp3_auth,
        )


def movements_of(structure: Structure | Sequence[Movement] | str) -> tuple[Movement, ...]:
    """Normalise the ways a structure may be given (Structure, movements, or a string)."""
    if isinstance(structure, str):
        return Structure.parse(structure).movements
    if isinstance(structure, Structure):
        return structure.movements
    if isinstance(structure, list | tuple):
        return tuple(structure)
    raise errors.ValidationError(
        "structure", f"must be a Structure, a list of Movement or a string, got {structure!r}"
    )
