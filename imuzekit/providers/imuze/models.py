"""Models of the iMuze API v4 (seed 001): arrangements and songs.

Field names are the API's own, so its reference doubles as the field reference. Every field the
API may leave out is optional: the index and show endpoints return different subsets.
"""

from __future__ import annotations

import enum
import re

import attrs

from imuzekit import errors
from imuzekit._media import DownloadSpec, MediaKind
from imuzekit.jobs import JobState

__all__ = ["Arrangement", "Song", "SongStatus"]


class SongStatus(enum.StrEnum):
    """The status values iMuze v4 documents; ``Song.status`` keeps any other value as a string."""

    PROCESSING = "processing"
    READY = "ready"


_STATE_OF_STATUS = {
    SongStatus.PROCESSING.value: JobState.PROCESSING,
    SongStatus.READY.value: JobState.READY,
}


@attrs.frozen
class Arrangement:
    """An arrangement (a style a melody is interpreted in). ``name`` comes from the index,
    ``description``/``image_url``/``genre_list`` from the show endpoint."""

    id: int
    name: str | None = None
    description: str | None = None
    image_url: str | None = None
    genre_list: tuple[str, ...] = ()


@attrs.frozen
class Song:
    """A generated song. ``mp3_url`` is set from the create response's ``mp3`` as well.

    ``status`` is the provider's raw value (``"processing"``, ``"ready"``, or anything else);
    `state` maps it to a `JobState`. The create response has no status.
    """

    id: int
    title: str | None = None
    status: str | None = None
    mp3_url: str | None = None
    arrangement_id: int | None = None
    arrangement_name: str | None = None
    timeline_url: str | None = None
    status_channel: str | None = None
    musical_mode: str | None = None
    tags: tuple[str, ...] = ()
    desired_length: int | None = None

    @property
    def state(self) -> JobState:
        """The status as a JobState: QUEUED before any status, UNKNOWN for undocumented values."""
        if self.status is None:
            return JobState.QUEUED
        return _STATE_OF_STATUS.get(self.status.lower(), JobState.UNKNOWN)

    @property
    def is_ready(self) -> bool:
        """Whether the song's mp3 can be downloaded."""
        return self.state is JobState.READY and bool(self.mp3_url)

    def download_spec(self) -> DownloadSpec:
        """Where the mp3 is; ValidationError when the song is not ready yet."""
        if not self.is_ready or self.mp3_url is None:
            raise errors.ValidationError(
                "source",
                f"song {self.id} is not ready (status {self.status!r}): wait for its job first",
            )
        if not re.match(r"(?i)^https?://", self.mp3_url):
            raise errors.ValidationError("source", f"song {self.id} has no http(s) mp3_url")
        return DownloadSpec(
            url=self.mp3_url,
            name=f"{self.title or 'song'}-{self.id}",
            suffix=".mp3",
            kind=MediaKind.MP3,
            provider="imuze",
        )
