"""The emulated MuseScore.com's constants and records: users, scores, OAuth tokens.

Pure: no aiohttp.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from imuzekit.emulator._clock import Clock
from imuzekit.emulator._files import DRUMSET_PROGRAM
from imuzekit.emulator._kit.provider import ApiError

__all__ = [
    "DEMO_CONSUMER_KEY",
    "DEMO_USER_ID",
    "FILE_NAMES",
    "INSTRUMENTS",
    "LICENSES",
    "LICENSE_FILTERS",
    "PAGE_SIZE",
    "SORTS",
    "AccessToken",
    "MuseScoreError",
    "MuseScoreScore",
    "MuseScoreUser",
    "RequestToken",
    "ScoreMetadata",
    "ScorePart",
]

PAGE_SIZE: Final = 20
"""Scores per search page."""

LICENSES: Final = (
    "all-rights-reserved", "publicdomain", "cc-zero", "cc-by", "cc-by-sa", "cc-by-nd",
    "cc-by-nc", "cc-by-nc-sa", "cc-by-nc-nd",
)  # fmt: skip
"""The nine licences a score can carry."""

LICENSE_FILTERS: Final[Mapping[str, frozenset[str]]] = {
    "to_play": frozenset(LICENSES),
    "to_share": frozenset(LICENSES) - {"all-rights-reserved"},
    "to_use_commercially": frozenset(("publicdomain", "cc-zero", "cc-by", "cc-by-sa", "cc-by-nd")),
    "to_modify_commercially": frozenset(("publicdomain", "cc-zero", "cc-by", "cc-by-sa")),
}
"""Values of the search's ``license`` filter and the licences each one admits."""

SORTS: Final = ("relevance", "view_count", "date_uploaded", "comment_count")
"""Values of the search's ``sort`` parameter (``relevance`` is the default)."""

INSTRUMENTS: Final[Mapping[str, int]] = {
    "Piano": 0, "Electric Piano": 4, "Harpsichord": 6, "Organ": 19, "Accordion": 21,
    "Guitar": 24, "Electric Guitar": 27, "Bass Guitar": 33, "Violin": 40, "Viola": 41,
    "Cello": 42, "Contrabass": 43, "Harp": 46, "Timpani": 47, "Strings": 48, "Voice": 52,
    "Soprano": 52, "Alto": 52, "Tenor": 52, "Bass": 52, "Trumpet": 56, "Trombone": 57,
    "Tuba": 58, "Horn": 60, "Alto Saxophone": 65, "Tenor Saxophone": 66, "Oboe": 68,
    "Bassoon": 70, "Clarinet": 71, "Piccolo": 72, "Flute": 73, "Recorder": 74,
    "Drumset": DRUMSET_PROGRAM, "Staff": -1,
}  # fmt: skip
"""Part names of the catalogue and their General MIDI program (128 drum set, -1 undefined)."""

FILE_NAMES: Final = ("score.pdf", "score.mid", "score.mxl", "score.mscz", "score.mp3", "thumb.png")
"""Static file names of every score, besides its pages ``score_{n}.png``."""

DEMO_CONSUMER_KEY: Final = "imuzekit-demo"
"""Key of the demo consumer (its secret is random per emulator)."""
DEMO_USER_ID: Final = 1024
"""Id of the demo user, whose access token is in ``emu.credentials["musescore"]``."""


class MuseScoreError(ApiError):
    """A request the API refuses: `status` and `message` become ``{"error", "code"}``."""


@attrs.frozen
class MuseScoreUser:
    """A MuseScore.com user: ``{"id", "name", "permalink", "uri"}`` on the wire."""

    id: int
    name: str
    """Screen name, also ``user.username`` in scores; its lower case is the permalink slug."""
    full_name: str
    """The person's name (composer of their own pieces; not on the wire)."""
    email: str | None = None
    """The login email (not on the wire); xAuth takes it or the name as ``x_auth_username``."""

    @property
    def slug(self) -> str:
        """Path segment of the user's permalink (``/nicolas``)."""
        return self.name.lower()


@attrs.frozen
class ScorePart:
    """One part of a score: its name and General MIDI program (128 drum set, -1 undefined)."""

    name: str
    program: int


@attrs.frozen
class ScoreMetadata:
    """What MuseScore.com extracts from the score file (``metadata`` on the wire)."""

    title: str
    subtitle: str | None
    composer: str | None
    poet: str | None
    pages: int
    measures: int
    lyrics: bool
    chordnames: bool
    keysig: int
    duration: int
    """Seconds, repeats included."""
    dimensions: str
    """Paper size in mm, ``"210x297"``."""
    parts: tuple[ScorePart, ...]

    @property
    def programs(self) -> frozenset[int]:
        """The distinct programs of the parts."""
        return frozenset(part.program for part in self.parts)


@attrs.define(eq=False)
class MuseScoreScore:
    """A score as `MuseScoreState.scores` holds it (counts as ints; the wire makes some strings).

    `status` is read from the clock: ``"processing"`` until `ready_at`, then ``"ready"``.
    """

    id: int
    vid: int
    posted: int
    """Unix seconds of posting (``dates.posted``)."""
    lastupdate: int
    secret: str
    """Ten hex digits: the key to the static files and to a private score."""
    user_id: int
    sharing: str
    """``"public"`` or ``"private"``."""
    title: str
    description: str
    license: str
    language: str | None
    """A 2-letter code, ``""`` or None."""
    metadata: ScoreMetadata
    comment_count: int = 0
    favoriting_count: int = 0
    view_count: int = 0
    playback_count: int = 0
    download_count: int = 0
    genre: str = ""
    format: str = ""
    tags: tuple[str, ...] = ()
    """Its tags (``"tags"`` on the wire: one comma-separated string)."""
    custom_url: str = ""
    """The custom path its owner gave its permalink (``"custom_url"``); ``""`` for none."""
    ready_at: float | None = None
    """Emulator clock time (`Clock.now`) at which an upload is processed; None: ready."""
    upload: bytes | None = attrs.field(default=None, repr=False)
    """The uploaded ``.mscz`` (served as ``score.mscz``); None for catalogue scores."""
    _clock: Clock | None = attrs.field(default=None, repr=False)

    @property
    def status(self) -> str:
        """``"ready"``, or ``"processing"`` while an upload is being processed."""
        if self.ready_at is None or self._clock is None or self._clock.now() >= self.ready_at:
            return "ready"
        return "processing"

    @property
    def is_ready(self) -> bool:
        """Whether `status` is ``"ready"``."""
        return self.status == "ready"

    @property
    def is_public(self) -> bool:
        """Whether `sharing` is ``"public"``."""
        return self.sharing == "public"


@attrs.define(eq=False)
class RequestToken:
    """A temporary credential of the three-legged flow."""

    token: str
    secret: str
    consumer_key: str
    callback: str
    created_at: float
    """Emulator clock time (`Clock.now`) of issue."""
    verifier: str | None = None
    """Set once a user approved it (`MuseScoreState.approve`)."""
    user_id: int | None = None


@attrs.frozen
class AccessToken:
    """A token credential: it acts as `user_id` for the consumer it was issued to."""

    token: str
    secret: str
    consumer_key: str
    user_id: int
