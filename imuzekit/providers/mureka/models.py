"""Models of Mureka through useapi.net (seeds 002 and 003, and useapi.net's job endpoints).

Field names are the API's own. ``song_id`` values look like ``user:777-mureka:123-song:456``
even though useapi.net's model says number: they are kept as strings. Every field is optional
on the wire (useapi.net's model: "all fields are optional"), ids included: a feed without
``feed_id`` or a song without ``song_id`` is kept with None there, and an operation that needs
the id refuses it (``ValidationError`` naming the field) before anything is sent. Numbers are
JavaScript ``number``s: a fractional one is kept as a float, a whole one as an int.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any, TypeAlias

import attrs

from imuzekit import errors
from imuzekit._media import DownloadSpec, MediaKind

__all__ = [
    "COMPLETE_STATE",
    "Feed",
    "FeedPage",
    "JobRecord",
    "LyricRow",
    "LyricSection",
    "Number",
    "RunningJob",
    "RunningJobs",
    "Song",
    "SongDetail",
    "User",
    "Video",
]

COMPLETE_STATE = 3
"""The feed ``state`` that means "generation complete": the only documented value."""

Number: TypeAlias = int | float
"""A JavaScript ``number`` of useapi.net's model: an int when whole, else a float."""


@attrs.frozen
class LyricRow:
    """One timed line of lyrics (``start``/``end`` in milliseconds)."""

    text: str = ""
    start: Number | None = None
    end: Number | None = None


@attrs.frozen
class LyricSection:
    """A section of lyrics (verse, chorus, ...) made of timed rows."""

    rows: tuple[LyricRow, ...] = ()
    seg_type: Number | None = None
    user_input_tag: str | None = None
    start: Number | None = None
    end: Number | None = None


@attrs.frozen
class Video:
    """A song's video, when Mureka made one."""

    video_url: str | None = None
    video_cover_url: str | None = None
    video_id: int | None = None


@attrs.frozen
class Song:
    """A generated song. ``lyrics`` is filled by ``music.get`` and by ``list(expand=True)``."""

    song_id: str | None = None
    """None when the service left it out; ``music.get`` then refuses the song."""
    title: str | None = None
    version: str | None = None
    duration_milliseconds: Number | None = None
    generate_at: Number | None = None
    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    mp3_url: str | None = None
    share_key: str | None = None
    share_link: str | None = None
    machine_audit_state: Number | None = None
    wave_list: tuple[float, ...] = ()
    credit_type: Number | None = None
    cover: str | None = None
    is_played: bool | None = None
    is_liked: bool | None = None
    video: Video | None = None
    lyrics: tuple[LyricSection, ...] = ()

    def download_spec(self) -> DownloadSpec:
        """Where the mp3 is (a CDN link: no credentials go with it)."""
        if not self.mp3_url or not re.match(r"(?i)^https?://", self.mp3_url):
            raise errors.ValidationError(
                "source", f"Mureka song {self.song_id} has no mp3_url yet: wait for its job"
            )
        if self.song_id:
            number = self.song_id.rsplit(":", 1)[-1][-8:]
        else:
            # No id to name the file by: a digest of the link is as stable and tells two
            # songs of one title apart.
            number = hashlib.sha256(self.mp3_url.encode()).hexdigest()[:8]
        version = f" v{self.version}" if self.version else ""
        return DownloadSpec(
            url=self.mp3_url,
            name=f"{self.title or 'mureka'}{version} ({number})",
            suffix=".mp3",
            kind=MediaKind.MP3,
            provider="mureka",
        )


@attrs.frozen
class Feed:
    """One generation: a feed of (usually two) songs and its ``state`` (3 = complete)."""

    feed_id: int | None = None
    """None when the service left it out (every field of its model is optional)."""
    state: Number | None = None
    songs: tuple[Song, ...] = ()
    is_accelerated: bool | None = None

    @property
    def complete(self) -> bool:
        """Whether the feed reached the documented complete state (3)."""
        return self.state == COMPLETE_STATE


@attrs.frozen
class FeedPage:
    """One page of ``GET /music/``: feeds, the cursor for the next page, and the total."""

    list: tuple[Feed, ...] = ()
    last_id: int | None = None
    more: bool = False
    total: int | None = None


@attrs.frozen
class User:
    """The Mureka user who owns a song."""

    id: str | None = None
    user_id: int | None = None
    stage_name: str | None = None
    profile_image: str | None = None


@attrs.frozen
class SongDetail:
    """``GET /music/{song_id}``: the song with its lyrics, its owner and its feed."""

    song: Song
    user: User | None = None
    feed_id: int | None = None


@attrs.frozen
class JobRecord:
    """A useapi.net job (``GET /jobs/{jobid}``, and the answer to an async create).

    ``status`` is ``created`` while running, then ``completed`` (``response`` holds the feed)
    or ``failed`` (``error`` and ``errorDetails`` say why). Other values are kept raw.
    """

    jobid: str
    status: str | None = None
    verb: str | None = None
    jobType: str | None = None
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    request: dict[str, Any] = attrs.field(factory=dict)
    response: Feed | None = None
    error: str | None = None
    errorDetails: str | None = None
    code: int | None = None

    @property
    def account(self) -> str | None:
        """The Mureka account the job runs on (from its request)."""
        value = self.request.get("account")
        return str(value) if value is not None else None


@attrs.frozen
class RunningJob:
    """One running job of ``GET /jobs``."""

    jobid: str
    verb: str | None = None
    elapsed: str | None = None


@attrs.frozen
class RunningJobs:
    """``GET /jobs``: the running jobs per account and the accounts the token can use."""

    total: int = 0
    accounts: dict[str, tuple[RunningJob, ...]] = attrs.field(factory=dict)
    available_accounts: tuple[str, ...] = ()

    def jobids(self) -> set[str]:
        """Every running job id, across accounts."""
        return {job.jobid for jobs in self.accounts.values() for job in jobs}

    def running(self, account: str) -> int:
        """How many jobs run on ``account``."""
        return len(self.accounts.get(account, ()))
