"""The emulated Mureka's constants and records: accounts, feeds, songs, jobs, failures.

Pure: no aiohttp.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from imuzekit.emulator._kit.provider import ApiError

__all__ = [
    "ACCOUNT_ERRORS",
    "CREATE_ROUTES",
    "DEFAULT_ACCOUNTS",
    "DEFAULT_MODEL",
    "FEED_COMPLETE",
    "FEED_GENERATING",
    "FEED_QUEUED",
    "JOB_RETENTION_SECONDS",
    "MODELS",
    "PAGE_SIZE",
    "USEAPI_USER_ID",
    "Failure",
    "MurekaAccount",
    "MurekaError",
    "MurekaFeed",
    "MurekaJob",
    "MurekaSong",
    "stage_name",
]

DEFAULT_ACCOUNTS: Final = ("12345678901234", "98765432109876")
"""Mureka accounts configured on a new emulator (useapi.net account ids are numeric strings)."""
USEAPI_USER_ID: Final = 777
"""The useapi.net user the token belongs to (``u777`` in job ids, ``user:777`` in song ids)."""

MODELS: Final = ("V9", "V8", "O2", "V7.6", "V7.5", "V7", "O1", "V6")
"""Values of a creation's ``model``: useapi.net's current models (``V9``, ``V8``, ``O2``,
``V7.6``), then the older names it still accepts as aliases (``V7.5``, ``V7``, ``O1``, ``V6``)."""
DEFAULT_MODEL: Final = "V9"
"""Model used when a creation names none (useapi.net's documented default)."""

PAGE_SIZE: Final = 20
"""Feeds per ``GET /music/`` page."""
JOB_RETENTION_SECONDS: Final = 7 * 86400
"""How long ``GET /jobs/{jobid}`` finds a job, on the emulator clock."""

FEED_QUEUED: Final = 1
"""Feed ``state`` of a generation waiting for the model."""
FEED_GENERATING: Final = 2
"""Feed ``state`` of a generation in progress."""
FEED_COMPLETE: Final = 3
"""Feed ``state`` once the songs are ready (the only state useapi.net documents)."""

ACCOUNT_ERRORS: Final[Mapping[int, str]] = {
    402: "Insufficient credits / subscription required",
    412: "Insufficient credits / subscription required",
    596: "Mureka account session expired, please refresh it at "
    "https://useapi.net/docs/start-here/setup-mureka",
}
"""What `MurekaState.set_account_error` makes an account answer, by status."""

CREATE_ROUTES: Final[Mapping[str, Mapping[str, int]]] = {
    "create": {"prompt": 3000},
    "create-advanced": {"lyrics": 5000, "title": 50, "desc": 1000},
    "create-instrumental": {"prompt": 1000, "title": 50},
}
"""Creation routes (``POST /music/<route>``) and the length limit of each text field."""


def stage_name(account_id: str) -> str:
    """The artist name of an account."""
    return f"Emulated artist {account_id[-4:]}"


class MurekaError(ApiError):
    """A request the API refuses: `status` and `message` become ``{"error", "code"}``."""


@attrs.frozen
class Failure:
    """How a generation armed by `MurekaState.fail_next` ends."""

    error: str
    details: str
    code: int


@attrs.define(eq=False)
class MurekaAccount:
    """One Mureka account driven by the useapi.net token."""

    id: str
    """The useapi.net account id (numeric string), also the Mureka user id in song ids."""
    image_key: str
    """CDN key of the profile image."""
    feeds: list[MurekaFeed] = attrs.field(factory=list)
    """The account's feeds, oldest first (feed ids increase)."""
    error_status: int | None = None
    """Status every call on the account answers (`MurekaState.set_account_error`)."""
    email: str = attrs.field(
        default=attrs.Factory(lambda self: f"mureka-{self.id}@imuzekit.test", takes_self=True)
    )
    """The Mureka login's email, as ``GET /accounts`` lists it."""

    @property
    def user_id(self) -> int:
        """The Mureka user id as a number (``user.user_id``)."""
        return int(self.id)

    @property
    def stage_name(self) -> str:
        """The account's artist name."""
        return stage_name(self.id)


@attrs.define(eq=False)
class MurekaSong:
    """One song of a feed (a feed holds versions "1" and "2")."""

    song_id: str
    """``user:777-mureka:<account>-song:<n>``."""
    feed: MurekaFeed
    version: str
    title: str
    duration_ms: int
    """What the served MP3 lasts (to within a frame); generations draw whole seconds."""
    genres: tuple[str, ...]
    moods: tuple[str, ...]
    key: str
    """Unguessable CDN key of the song's MP3 and cover."""
    share_key: str
    deleted: bool = False
    """Set by `MurekaState.delete_song`: the song answers 404 and leaves the list."""


@attrs.define(eq=False)
class MurekaFeed:
    """One generation's result: two songs sharing a title and lyrics."""

    feed_id: int
    account: str
    generate_at: int
    """Unix seconds of the generation's start."""
    lyrics: tuple[tuple[str, ...], ...]
    """Sections of lyric lines (empty for an instrumental); timed per song when served."""
    job: MurekaJob | None = None
    """The generation that makes it; None for a feed created complete (`add_feeds`)."""
    songs: list[MurekaSong] = attrs.field(factory=list)
    is_accelerated: bool = True


@attrs.define(eq=False)
class MurekaJob:
    """A useapi.net job: one generation; its status is derived from the clock when read."""

    jobid: str
    verb: str
    """``music/create``, ``music/create-advanced`` or ``music/create-instrumental``."""
    account: str
    request: dict[str, Any]
    """The request body as received, ``account`` filled in."""
    created_at: float
    """Emulator clock time (`Clock.now`) of creation."""
    created_wall: float
    """Unix time (`Clock.wall`) of creation, for the ISO ``created``/``updated`` fields."""
    render_seconds: float
    feed: MurekaFeed
    failure: Failure | None = None
    """Set when the job was armed to fail (`MurekaState.fail_next`)."""

    @property
    def done_at(self) -> float:
        """Clock time at which the generation ends, completed or failed."""
        return self.created_at + self.render_seconds

    @property
    def expires_at(self) -> float:
        """Clock time from which ``GET /jobs/{jobid}`` no longer finds the job."""
        return self.created_at + JOB_RETENTION_SECONDS
