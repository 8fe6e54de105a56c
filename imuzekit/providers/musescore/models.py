"""Models of the MuseScore.com REST API (seed 004): scores, users, timings, layout, oEmbed.

Field names are the API's own. Numbers often arrive as strings (``"id": "1111"``): models hold
ints and the converter accepts both; empty strings and null are None; ``dates`` become UTC
datetimes; ``metadata.parts`` loses its ``{"part": {...}}`` wrapper.
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from imuzekit import errors
from imuzekit._media import DownloadSpec, MediaKind

__all__ = [
    "FILE_FORMATS",
    "License",
    "LicenseFilter",
    "MeasureBox",
    "OAuthToken",
    "OEmbed",
    "Part",
    "Score",
    "ScoreDates",
    "ScoreFile",
    "ScoreMetadata",
    "ScoreUser",
    "Sort",
    "TimeEvent",
    "User",
]


class License(enum.StrEnum):
    """A score's licence (the values the API documents)."""

    ALL_RIGHTS_RESERVED = "all-rights-reserved"
    PUBLIC_DOMAIN = "publicdomain"
    CC_ZERO = "cc-zero"
    CC_BY = "cc-by"
    CC_BY_SA = "cc-by-sa"
    CC_BY_ND = "cc-by-nd"
    CC_BY_NC = "cc-by-nc"
    CC_BY_NC_SA = "cc-by-nc-sa"
    CC_BY_NC_ND = "cc-by-nc-nd"


class LicenseFilter(enum.StrEnum):
    """What a search result's licence must allow."""

    TO_PLAY = "to_play"
    TO_SHARE = "to_share"
    TO_USE_COMMERCIALLY = "to_use_commercially"
    TO_MODIFY_COMMERCIALLY = "to_modify_commercially"


class Sort(enum.StrEnum):
    """Search result order."""

    RELEVANCE = "relevance"
    VIEW_COUNT = "view_count"
    DATE_UPLOADED = "date_uploaded"
    COMMENT_COUNT = "comment_count"


FILE_FORMATS: dict[str, MediaKind] = {
    "pdf": MediaKind.PDF,
    "mid": MediaKind.MIDI,
    "mxl": MediaKind.ZIP,
    "mscz": MediaKind.ZIP,
    "mp3": MediaKind.MP3,
}


@attrs.frozen
class ScoreUser:
    """The owner of a score, as embedded in it."""

    uid: int | None = None
    username: str | None = None


@attrs.frozen
class ScoreDates:
    """When a score was posted and last updated (UTC)."""

    posted: dt.datetime | None = None
    lastupdate: dt.datetime | None = None


@attrs.frozen
class Part:
    """An instrument part: its name and zero-based General MIDI program (128: drumset)."""

    name: str | None = None
    program: int | None = None


@attrs.frozen
class ScoreMetadata:
    """What MuseScore.com extracted from the score file (``duration`` in seconds).

    ``duration`` is an int, or a float when the provider sends a fractional one; counts
    (``pages``, ``measures``, ...) sent fractional are read as the nearest integer.
    """

    title: str | None = None
    subtitle: str | None = None
    composer: str | None = None
    poet: str | None = None
    pages: int | None = None
    measures: int | None = None
    lyrics: int | None = None
    chordnames: int | None = None
    keysig: int | None = None
    duration: int | float | None = None
    dimensions: str | None = None
    parts: tuple[Part, ...] = ()


@attrs.frozen
class ScoreFile:
    """One file of a score on the static host (``score.pdf``, ``score_0.png``, ...)."""

    url: str
    score_id: int
    name: str
    kind: MediaKind

    def download_spec(self) -> DownloadSpec:
        """Where the file is and the format check it must pass."""
        stem, _, suffix = self.name.rpartition(".")
        return DownloadSpec(
            url=self.url,
            name=f"score-{self.score_id}-{stem}",
            suffix=f".{suffix}",
            kind=self.kind,
            provider="musescore",
        )


@attrs.frozen
class Score:
    """A score. ``static_url`` is not sent by the API: the SDK fills it from the config so
    that `file()`, `page()` and `thumbnail()` can build the file URLs."""

    id: int
    vid: int | None = None
    dates: ScoreDates | None = None
    secret: str | None = None
    uri: str | None = None
    permalink: str | None = None
    user: ScoreUser | None = None
    status: str | None = None
    sharing: str | None = None
    comment_count: int | None = None
    favoriting_count: int | None = None
    view_count: int | None = None
    playback_count: int | None = None
    download_count: int | None = None
    genre: str | None = None
    format: str | None = None
    license: str | None = None
    language: str | None = None
    title: str | None = None
    description: str | None = None
    metadata: ScoreMetadata | None = None
    tags: tuple[str, ...] = ()
    """The score's tags; the API sends one comma-separated string (``"a,b"``)."""
    custom_url: str | None = None
    """The custom path of the score's permalink; None when it has none."""
    static_url: str | None = None

    def _static(self, name: str, kind: MediaKind) -> ScoreFile:
        if not self.static_url or not self.secret:
            raise errors.ValidationError(
                "score", f"score {self.id} has no secret or static URL to build file links from"
            )
        url = f"{self.static_url.rstrip('/')}/{self.id}/{self.secret}/{name}"
        return ScoreFile(url=url, score_id=self.id, name=name, kind=kind)

    def file(self, fmt: str) -> ScoreFile:
        """The score as ``pdf``, ``mid``, ``mxl``, ``mscz`` or ``mp3``."""
        kind = FILE_FORMATS.get(fmt)
        if kind is None:
            raise errors.ValidationError(
                "fmt", f"must be one of {', '.join(FILE_FORMATS)}, got {fmt!r}"
            )
        return self._static(f"score.{fmt}", kind)

    def page(self, number: int) -> ScoreFile:
        """Page ``number`` (zero-based) as a transparent 100 dpi PNG."""
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise errors.ValidationError("number", f"must be an integer >= 0, got {number!r}")
        pages = self.metadata.pages if self.metadata else None
        if pages is not None and number >= pages:
            raise errors.ValidationError("number", f"the score has {pages} pages (0-{pages - 1})")
        return self._static(f"score_{number}.png", MediaKind.PNG)

    def thumbnail(self) -> ScoreFile:
        """The score's thumbnail PNG."""
        return self._static("thumb.png", MediaKind.PNG)


@attrs.frozen
class User:
    """A MuseScore.com user."""

    id: int
    name: str | None = None
    permalink: str | None = None
    uri: str | None = None


@attrs.frozen
class TimeEvent:
    """When measure ``elid`` (zero-based) starts, in milliseconds of the mp3/midi."""

    elid: int
    position: float


@attrs.frozen
class MeasureBox:
    """The bounding box of measure ``id`` on ``page`` (``x``, ``y`` position; ``sx``, ``sy``
    size; in the provider's units, 12 per PNG pixel). Coordinates the provider left out are
    None (the reference's own XML example abbreviates an element to its id)."""

    id: int
    x: float | None = None
    y: float | None = None
    sx: float | None = None
    sy: float | None = None
    page: int | None = None


@attrs.frozen
class OEmbed:
    """An oEmbed answer for a score; ``width`` is ``"100%"`` unless a maxwidth was given."""

    type: str | None = None
    version: str | None = None
    provider_name: str | None = None
    width: int | str | None = None
    height: int | str | None = None
    provider_url: str | None = None
    html: str | None = None
    title: str | None = None
    author_name: str | None = None
    author_url: str | None = None
    original_url: str | None = None


@attrs.frozen
class OAuthToken:
    """An OAuth 1.0 request or access token (the secret never shows in reprs, the token only
    by its first characters: with the consumer key it identifies the user's grant)."""

    oauth_token: str = attrs.field(repr=lambda value: f"'{value[:4]}...'")
    oauth_token_secret: str = attrs.field(repr=lambda _: "'***'")
    oauth_callback_confirmed: bool | None = None
