"""Emulated Mureka through useapi.net (``https://api.useapi.net/v1/mureka``), mounted at
``/mureka/v1/mureka``, plus its CDN at ``/mureka/cdn``.

Shapes follow the reference pages (seeds 002 and 003) field for field, and useapi.net's
creation and job endpoints:

======  ==============================  ==================================================
GET     /music/?account&last_id&expand  ``{"list": [feed], "last_id", "more", "total"}``
GET     /music/{song_id}                ``{"song", "user", "feed_id"}``
POST    /music/create                   201 job record (``"async": true``), else 200 feed
POST    /music/create-advanced          the same, ``lyrics`` required
POST    /music/create-instrumental      the same, no lyrics
GET     /jobs/{jobid}                   the job record
GET     /jobs                           the running jobs, per account
GET     /mureka/cdn/{key}.mp3 / .png    audio and images, no auth (a CDN)
GET     /mureka/cdn/share/{share_key}   a song's share page (HTML)
======  ==============================  ==================================================

One useapi.net token (``Authorization: Bearer <token>``) drives several Mureka accounts, picked
with ``account`` (optional when exactly one is configured). A generation takes the emulator's
``render_seconds`` on its clock and yields a feed of two songs; the feed is listed from the
start with ``state`` 1 (queued) then 2 (generating), and 3 once complete. Each account runs at
most `MurekaState.max_parallel` generations at a time; one more answers 429.

Everything is derived from the clock when read (no background tasks), so a frozen clock and
``emu.clock.advance`` make every transition exact.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import html
import itertools
import math
import random
import secrets
import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import attrs
from aiohttp import web

from ._clock import Clock
from ._kit.http import (
    MAX_BODY_BYTES,
    BadJSON,
    bytes_response,
    json_error,
    json_response,
    read_json,
)
from ._kit.media import COVER_PNG as _PNG
from ._kit.provider import Credentials
from ._kit.routes import Mount
from ._kit.timing import RenderSeconds
from ._kit.timing import check_render_seconds as _check_render_seconds
from ._mp3 import Audio, AudioCache, mp3_bytes

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
    "MurekaState",
    "build_app",
    "build_cdn_app",
]

DEFAULT_ACCOUNTS: Final = ("12345678901234", "98765432109876")
"""Mureka accounts configured on a new emulator (useapi.net account ids are numeric strings)."""
USEAPI_USER_ID: Final = 777
"""The useapi.net user the token belongs to (``u777`` in job ids, ``user:777`` in song ids)."""

MODELS: Final = ("V8", "O2", "V7.6", "V7.5")
"""Values of a creation's ``model``."""
DEFAULT_MODEL: Final = "V8"
"""Model used when a creation names none."""

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

# Optional identifiers each route accepts (strings; numbers are tolerated).
_ID_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "create": (),
    "create-advanced": ("vocal_id", "ref_id", "motif_id"),
    "create-instrumental": ("ref_id",),
}
_MAX_ID_CHARS = 128

# Songs last 20-40 whole seconds: long enough to look like songs, short enough that 400 MP3s
# stay small, and whole seconds keep the audio cache to a few distinct files.
_SONG_SECONDS = (20, 40)
# A generation sits in the queue (state 1) for this share of its render time, then generates.
_QUEUED_SHARE = 0.1
# Lyrics rows are spread over this part of the song (an intro and an outro without vocals).
_VOCALS = (0.08, 0.92)

_FIRST_FEED_ID = 400_000_001
_FIRST_SONG_NUMBER = 100_000_001

_GENRES = (
    "pop", "rock", "metal", "electronic", "hip-hop", "r&b", "jazz", "folk", "latin",
    "world-music", "indie", "country", "classical", "ambient",
)  # fmt: skip
_MOODS = (
    "majestic", "romantic", "mysterious", "quirky", "relaxed", "calm", "happy", "inspired",
    "energetic", "melancholic", "dark", "uplifting",
)  # fmt: skip
_DANGLING = frozenset(("a", "an", "the", "of", "for", "about", "to", "in", "on", "and", "with"))
_STOCK_LINES = (
    "Lights are falling on the open road",
    "Every step a story to be told",
    "Hold the moment, never let it go",
    "Sing it louder than the radio",
)


def _stage_name(account_id: str) -> str:
    return f"Emulated artist {account_id[-4:]}"


def _iso(wall: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as useapi.net writes job times."""
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class MurekaError(Exception):
    """A request the API refuses: `status` and `message` become ``{"error", "code"}``."""

    def __init__(self, status: int, message: str) -> None:
        """Record the status and message to answer."""
        super().__init__(message)
        self.status = status
        self.message = message


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

    @property
    def user_id(self) -> int:
        """The Mureka user id as a number (``user.user_id``)."""
        return int(self.id)

    @property
    def stage_name(self) -> str:
        """The account's artist name."""
        return _stage_name(self.id)


@attrs.define(eq=False)
class MurekaSong:
    """One song of a feed (a feed holds versions "1" and "2")."""

    song_id: str
    """``user:777-mureka:<account>-song:<n>``."""
    feed: MurekaFeed
    version: str
    title: str
    duration_ms: int
    """A whole number of seconds: what the served MP3 lasts (to within a frame)."""
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


# --------------------------------------------------------------------------------------------
# Validation and lyrics


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _creation_problems(route: str, body: Mapping[str, Any]) -> list[str]:
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
        if not (isinstance(value, str) or _is_int(value)):
            problems.append(f"{field}: must be a string")
        elif len(str(value)) > _MAX_ID_CHARS:
            problems.append(f"{field}: must be at most {_MAX_ID_CHARS} characters")
    model = body.get("model")
    if model is not None and model not in MODELS:
        problems.append(f"model: must be one of {', '.join(MODELS)}")
    is_async = body.get("async")
    if is_async is not None and not isinstance(is_async, bool):
        problems.append("async: must be a boolean")
    return problems


def _words(text: str) -> list[str]:
    stripped = (word.strip(".,;:!?\"'()[]") for word in text.split())
    return [word for word in stripped if word]


def _lyrics_from_prompt(prompt: str) -> tuple[tuple[str, ...], ...]:
    """A verse made of the prompt's words and a chorus about its subject."""
    words = _words(prompt)[:40]
    lines = [" ".join(words[i : i + 5]).capitalize() for i in range(0, len(words), 5)][:4]
    verse = (*lines, *_STOCK_LINES[len(lines) :])
    subject = words[:3]
    # "rock anthem for" reads badly: a chorus names the subject without a dangling word.
    while len(subject) > 1 and subject[-1].lower() in _DANGLING:
        subject.pop()
    return verse, (f"Oh, {' '.join(subject) or 'the night'}", "We sing it all night long")


def _lyrics_from_text(lyrics: str) -> tuple[tuple[str, ...], ...]:
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


def _timed_lyrics(sections: Sequence[Sequence[str]], duration_ms: int) -> list[dict[str, Any]]:
    """``[{"rows": [{"start", "end", "text"}]}]``: rows in equal slots (ms) over the vocals."""
    count = sum(len(section) for section in sections)
    if not count:
        return []
    first = duration_ms * _VOCALS[0]
    slot = duration_ms * (_VOCALS[1] - _VOCALS[0]) / count
    index = itertools.count()
    timed = []
    for section in sections:
        rows = []
        for text in section:
            i = next(index)
            # Each row is sung for 90 % of its slot: a breath between lines.
            start, end = round(first + i * slot), round(first + (i + 0.9) * slot)
            rows.append({"start": start, "end": end, "text": text})
        timed.append({"rows": rows})
    return timed


def _title_from(text: str) -> str:
    words = _words(text)[:4]
    return " ".join(words).title()[:50] if words else "Untitled"


# --------------------------------------------------------------------------------------------
# State


def _check_account_id(account_id: str) -> str:
    # The id doubles as the Mureka user id in song ids and as user.user_id, a number.
    if not (
        isinstance(account_id, str)
        and account_id.isascii()
        and account_id.isdigit()
        and len(account_id) <= 18
    ):
        raise ValueError(f"account ids are numeric strings (up to 18 digits), got {account_id!r}")
    return account_id


def _check_max_parallel(value: int) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"max_parallel must be a positive integer, got {value!r}")
    return value


@attrs.define
class MurekaState:
    """All of the emulated Mureka (useapi.net) data, reachable from tests as `emu.mureka`.

    The state survives an emulator stop/start. Methods here are what tests use to arrange a
    situation (accounts, seeded feeds, failures, account errors) without going through HTTP.
    """

    name: ClassVar[str] = "mureka"
    prefix: ClassVar[str] = "/mureka/v1/mureka"
    cdn_prefix: ClassVar[str] = "/mureka/cdn"
    """Where songs' MP3s, covers and share pages are served (outside the API, no auth)."""

    clock: Clock
    render_seconds: RenderSeconds = attrs.field(default=2.0, converter=_check_render_seconds)
    """Duration of generations started from now on (a range: each one draws from it)."""
    seed: int = 0
    accounts_at_start: Sequence[str] = DEFAULT_ACCOUNTS
    max_parallel: int = attrs.field(default=10, converter=_check_max_parallel)
    """Generations an account runs at once; one more create answers 429."""
    retry_after_on_429: float | None = None
    """Seconds announced in ``Retry-After`` on a busy-slots 429 (None: no header)."""
    sync_timeout: float = 120.0
    """Real seconds a synchronous (non-``async``) create waits for its generation."""
    bitrate_kbps: int = 64
    """Bitrate of the served MP3 files (low: a run may download hundreds of songs)."""
    audio_cache_limit: int = 64 * 1024 * 1024
    """Bytes of generated MP3 kept in memory (files are shared between songs of one length)."""

    token: str = attrs.field(init=False)
    """The valid useapi.net token (``emu.credentials["mureka"].token``)."""
    accounts: dict[str, MurekaAccount] = attrs.field(factory=dict, init=False)
    """Configured accounts by id, in the order added."""
    feeds: dict[int, MurekaFeed] = attrs.field(factory=dict, init=False)
    """Every feed ever created, by id (failed generations' feeds included)."""
    songs: dict[str, MurekaSong] = attrs.field(factory=dict, init=False)
    """Every song ever created, by song id (deleted ones included, flagged)."""
    jobs: dict[str, MurekaJob] = attrs.field(factory=dict, init=False)
    """Jobs not yet past their 7-day retention, by job id."""
    creations: int = attrs.field(default=0, init=False)
    """Creations accepted (HTTP 200/201) since the emulator was built."""
    max_running: dict[str, int] = attrs.field(factory=dict, init=False)
    """Per account, the most generations ever running at once (a high-water mark)."""

    _rng: random.Random = attrs.field(init=False)
    _feed_ids: itertools.count[int] = attrs.field(
        factory=lambda: itertools.count(_FIRST_FEED_ID), init=False
    )
    _song_numbers: itertools.count[int] = attrs.field(
        factory=lambda: itertools.count(_FIRST_SONG_NUMBER), init=False
    )
    _job_numbers: itertools.count[int] = attrs.field(factory=itertools.count, init=False)
    _running: dict[str, list[MurekaJob]] = attrs.field(factory=dict, init=False)
    _fail_queue: deque[Failure] = attrs.field(factory=deque, init=False)
    # Failing jobs by end time: their feeds leave the music list once the clock passes it.
    _failing: list[tuple[float, int, MurekaJob]] = attrs.field(factory=list, init=False)
    # Jobs in creation order, to forget them after the retention period.
    _jobs_by_age: deque[MurekaJob] = attrs.field(factory=deque, init=False)
    _by_key: dict[str, MurekaSong | MurekaAccount] = attrs.field(factory=dict, init=False)
    _by_share_key: dict[str, MurekaSong] = attrs.field(factory=dict, init=False)
    _audio: AudioCache = attrs.field(factory=AudioCache, init=False)

    def __attrs_post_init__(self) -> None:
        # A stream of its own so that Mureka does not draw in lockstep with its siblings.
        self._rng = random.Random(f"mureka-{self.seed}")
        self.token = self._new_token()
        for account_id in self.accounts_at_start:
            self.add_account(account_id)

    # --- token and accounts -----------------------------------------------------------------

    @staticmethod
    def _new_token() -> str:
        return f"user:{USEAPI_USER_ID}-{secrets.token_urlsafe(24)}"

    def reissue_token(self) -> str:
        """Replace the token (the old one answers 401 from now on) and return the new one."""
        self.token = self._new_token()
        return self.token

    def check_token(self, token: str) -> bool:
        """Whether `token` is the current useapi.net token (constant-time comparison)."""
        return secrets.compare_digest(token.encode(), self.token.encode())

    def credentials(self) -> Credentials:
        """The token and, in ``extra["accounts"]``, the comma-separated account ids."""
        return Credentials(token=self.token, extra={"accounts": ",".join(self.accounts)})

    def add_account(self, account_id: str) -> MurekaAccount:
        """Configure another Mureka account (a numeric string) and return it."""
        _check_account_id(account_id)
        if account_id in self.accounts:
            raise ValueError(f"account {account_id} is already configured")
        account = MurekaAccount(id=account_id, image_key=secrets.token_urlsafe(12))
        self.accounts[account_id] = account
        self._by_key[account.image_key] = account
        self._running.setdefault(account_id, [])
        self.max_running.setdefault(account_id, 0)
        return account

    def remove_account(self, account_id: str) -> None:
        """Unconfigure an account (its feeds and jobs stay readable by id)."""
        del self.accounts[account_id]

    def set_account_error(self, account_id: str, status: int | None) -> None:
        """Make every call on the account answer 402, 412 or 596 (see `ACCOUNT_ERRORS`).

        None clears it. Creations, the music list, song details and that account's job
        records answer the error; ``GET /jobs`` and the CDN are unaffected.
        """
        if status is not None and status not in ACCOUNT_ERRORS:
            raise ValueError(f"status must be one of {sorted(ACCOUNT_ERRORS)} or None")
        self.accounts[account_id].error_status = status

    def resolve_account(self, value: object) -> MurekaAccount:
        """The account a request names (or the only one); `MurekaError` (400) otherwise."""
        if value is None or value == "":
            if len(self.accounts) == 1:
                return next(iter(self.accounts.values()))
            if not self.accounts:
                raise MurekaError(400, "No Mureka accounts configured")
            raise MurekaError(
                400, "Parameter account is required when multiple accounts configured"
            )
        if not isinstance(value, str):
            raise MurekaError(400, "account: must be a string")
        account = self.accounts.get(value)
        if account is None:
            # Capped: the value is echoed back, and a megabyte of it helps nobody.
            raise MurekaError(400, f"Account {value[:64]} is not configured")
        return account

    @staticmethod
    def check_account_error(account: MurekaAccount) -> None:
        """Raise the `MurekaError` set with `set_account_error`, if any."""
        if account.error_status is not None:
            raise MurekaError(account.error_status, ACCOUNT_ERRORS[account.error_status])

    # --- generations ------------------------------------------------------------------------

    def running(self, account_id: str) -> int:
        """Number of generations the account runs right now."""
        return len(self._running_jobs(account_id))

    def _running_jobs(self, account_id: str) -> list[MurekaJob]:
        jobs = self._running.get(account_id)
        if not jobs:
            return []
        now = self.clock.now()
        if any(job.done_at <= now for job in jobs):
            # At most `max_parallel` entries: pruning in place keeps every call O(slots).
            jobs[:] = [job for job in jobs if job.done_at > now]
        return jobs

    def fail_next(
        self,
        n: int = 1,
        error: str = "Moderation failed",
        details: str = "The prompt or lyrics did not pass Mureka's content moderation",
        *,
        code: int = 412,
    ) -> None:
        """Make the next `n` generations end as failed jobs (``error``, ``errorDetails``, ``code``).

        Their feeds are listed while they run and leave the music list when they fail.
        """
        if not _is_int(n) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self._fail_queue.extend([Failure(error, details, code)] * n)

    def create(
        self, route: str, request: Mapping[str, Any], *, account: str | None = None
    ) -> MurekaJob:
        """Start a generation as ``POST /music/<route>`` does and return its job.

        `route` is a key of `CREATE_ROUTES`; `account` overrides the body's. Raises
        `MurekaError` with the status the API would answer (400, 402/412/596, 429).
        """
        if route not in CREATE_ROUTES:
            raise ValueError(f"route must be one of {', '.join(CREATE_ROUTES)}, got {route!r}")
        owner = self.resolve_account(request.get("account") if account is None else account)
        problems = _creation_problems(route, request)
        if problems:
            raise MurekaError(400, "; ".join(problems))
        self.check_account_error(owner)
        running = self._running_jobs(owner.id)
        if len(running) >= self.max_parallel:
            raise MurekaError(
                429, f"All {self.max_parallel} generation slots are busy, retry later"
            )

        now, wall = self.clock.now(), self.clock.wall()
        render = self.render_seconds
        lyrics: tuple[tuple[str, ...], ...]
        if route == "create":
            prompt = request.get("prompt") or ""
            lyrics, title = _lyrics_from_prompt(prompt), _title_from(prompt)
        elif route == "create-advanced":
            lyrics = _lyrics_from_text(request["lyrics"])
            title = request.get("title") or _title_from(request["lyrics"])
            prompt = request.get("desc") or ""
        else:
            prompt = request.get("prompt") or ""
            lyrics, title = (), request.get("title") or _title_from(prompt)
        feed = self._new_feed(owner, title=title, lyrics=lyrics, hint=prompt, wall=wall)
        # Digits: creation time in ms (fixed width) then a counter, so ids never collide.
        digits = f"{math.floor(wall * 1000)}{next(self._job_numbers)}"
        job = MurekaJob(
            jobid=f"j{digits}m-u{USEAPI_USER_ID}-a{owner.id}-bot:mureka",
            verb=f"music/{route}",
            account=owner.id,
            request={**request, "account": owner.id},
            created_at=now,
            created_wall=wall,
            render_seconds=self._rng.uniform(*render) if isinstance(render, tuple) else render,
            feed=feed,
            failure=self._fail_queue.popleft() if self._fail_queue else None,
        )
        feed.job = job
        self.jobs[job.jobid] = job
        self._jobs_by_age.append(job)
        if job.failure is not None:
            heapq.heappush(self._failing, (job.done_at, next(self._job_numbers), job))
        running.append(job)
        self._running[owner.id] = running
        self.max_running[owner.id] = max(self.max_running.get(owner.id, 0), len(running))
        self.creations += 1
        self._prune_jobs()
        return job

    def _new_feed(
        self,
        account: MurekaAccount,
        *,
        title: str,
        lyrics: tuple[tuple[str, ...], ...],
        hint: str,
        wall: float,
    ) -> MurekaFeed:
        feed = MurekaFeed(
            feed_id=next(self._feed_ids), account=account.id, generate_at=int(wall), lyrics=lyrics
        )
        # Genres the prompt names come first, as if the model followed them.
        hinted = {word.lower() for word in _words(hint)}
        named = [genre for genre in _GENRES if genre in hinted]
        for version in ("1", "2"):
            genres = (named + self._rng.sample(_GENRES, 2))[:2]
            if len(set(genres)) < 2:
                genres = [genres[0], next(g for g in _GENRES if g != genres[0])]
            song = MurekaSong(
                song_id=f"user:{USEAPI_USER_ID}-mureka:{account.id}-song:{next(self._song_numbers)}",
                feed=feed,
                version=version,
                title=title,
                duration_ms=self._rng.randint(*_SONG_SECONDS) * 1000,
                genres=tuple(genres),
                moods=tuple(self._rng.sample(_MOODS, 3)),
                key=secrets.token_urlsafe(12),
                share_key=secrets.token_urlsafe(9),
            )
            feed.songs.append(song)
            self.songs[song.song_id] = song
            self._by_key[song.key] = song
            self._by_share_key[song.share_key] = song
        self.feeds[feed.feed_id] = feed
        # Feed ids only grow, so appending keeps the list sorted for the pager's bisect.
        account.feeds.append(feed)
        return feed

    def add_feeds(self, account_id: str, n: int, *, prompt: str = "") -> list[MurekaFeed]:
        """Create `n` complete feeds on the account at once (e.g. to test paging), oldest first."""
        account = self.accounts[account_id]
        wall = self.clock.wall()
        return [
            self._new_feed(
                account,
                title=_title_from(prompt) if prompt else f"Seeded song {index}",
                lyrics=_lyrics_from_prompt(prompt),
                hint=prompt,
                wall=wall,
            )
            for index in range(1, n + 1)
        ]

    def job_status(self, job: MurekaJob | str) -> str:
        """``"created"`` while the generation runs, then ``"completed"`` or ``"failed"``."""
        record = self.jobs[job] if isinstance(job, str) else job
        if self.clock.now() < record.done_at:
            return "created"
        return "failed" if record.failure is not None else "completed"

    def feed_state(self, feed: MurekaFeed) -> int:
        """The feed's ``state``: 1 queued, 2 generating, 3 complete (failed feeds: 0)."""
        job = feed.job
        if job is None:
            return FEED_COMPLETE
        now = self.clock.now()
        if now >= job.done_at:
            return 0 if job.failure is not None else FEED_COMPLETE
        queued_until = job.created_at + job.render_seconds * _QUEUED_SHARE
        return FEED_QUEUED if now < queued_until else FEED_GENERATING

    def _settle(self) -> None:
        """Apply what the clock decided since last time: failed feeds leave the music list."""
        now = self.clock.now()
        while self._failing and self._failing[0][0] <= now:
            _, _, job = heapq.heappop(self._failing)
            self._unlist(job.feed)
        self._prune_jobs()

    def _prune_jobs(self) -> None:
        now = self.clock.now()
        while self._jobs_by_age and self._jobs_by_age[0].expires_at <= now:
            self.jobs.pop(self._jobs_by_age.popleft().jobid, None)

    def _unlist(self, feed: MurekaFeed) -> None:
        account = self.accounts.get(feed.account)
        if account is None:
            return
        feeds = account.feeds
        index = bisect.bisect_left(feeds, feed.feed_id, key=lambda f: f.feed_id)
        if index < len(feeds) and feeds[index] is feed:
            del feeds[index]

    def delete_song(self, song_id: str) -> None:
        """Delete a song: it answers 404 and leaves its feed; a feed left empty leaves the list."""
        song = self.songs[song_id]
        song.deleted = True
        if all(other.deleted for other in song.feed.songs):
            self._unlist(song.feed)

    def is_ready(self, song: MurekaSong) -> bool:
        """Whether the song's MP3 is served: complete, and not deleted."""
        return not song.deleted and self.feed_state(song.feed) == FEED_COMPLETE

    def is_visible(self, song: MurekaSong) -> bool:
        """Whether ``GET /music/{song_id}`` finds the song (running or complete, not deleted)."""
        return not song.deleted and self.feed_state(song.feed) != 0

    def page(self, account_id: str, last_id: int | None = None) -> list[MurekaFeed]:
        """The feeds ``GET /music/?last_id=`` lists for the account, newest first."""
        self._settle()
        feeds = self.accounts[account_id].feeds
        stop = len(feeds)
        if last_id is not None:
            stop = bisect.bisect_left(feeds, last_id, key=lambda f: f.feed_id)
        return feeds[max(0, stop - PAGE_SIZE) : stop][::-1]

    def running_jobs(self) -> dict[str, list[MurekaJob]]:
        """Running jobs per account (accounts without any are left out), oldest first."""
        result = {}
        for account_id in self._running:
            jobs = self._running_jobs(account_id)
            if jobs:
                result[account_id] = list(jobs)
        return result

    # --- JSON -------------------------------------------------------------------------------

    def cdn_url(self, origin: str, key: str, extension: str) -> str:
        """Absolute URL of a CDN file (``<origin>/mureka/cdn/<key>.<extension>``)."""
        return f"{origin}{self.cdn_prefix}/{key}.{extension}"

    def song_json(
        self, song: MurekaSong, origin: str, *, lyrics: bool = False, detail: bool = False
    ) -> dict[str, Any]:
        """A song as the list shows it (seed 002), with ``lyrics`` (and ``video``) if asked."""
        body: dict[str, Any] = {
            "song_id": song.song_id,
            "title": song.title,
            "version": song.version,
            "duration_milliseconds": song.duration_ms,
            "generate_at": song.feed.generate_at,
            "genres": list(song.genres),
            "moods": list(song.moods),
        }
        if self.is_ready(song):
            body["mp3_url"] = self.cdn_url(origin, song.key, "mp3")
        body["share_key"] = song.share_key
        body["machine_audit_state"] = 1
        body["credit_type"] = 1
        body["cover"] = self.cdn_url(origin, song.key, "png")
        if lyrics or detail:
            body["lyrics"] = _timed_lyrics(song.feed.lyrics, song.duration_ms)
        if detail:
            body["video"] = {}
        body["share_link"] = f"{origin}{self.cdn_prefix}/share/{song.share_key}"
        return body

    def feed_json(self, feed: MurekaFeed, origin: str, *, lyrics: bool = False) -> dict[str, Any]:
        """A feed: ``{"feed_id", "state", "songs", "is_accelerated"}``."""
        return {
            "feed_id": feed.feed_id,
            "state": self.feed_state(feed),
            "songs": [
                self.song_json(song, origin, lyrics=lyrics)
                for song in feed.songs
                if not song.deleted
            ],
            "is_accelerated": feed.is_accelerated,
        }

    def song_detail_json(self, song: MurekaSong, origin: str) -> dict[str, Any]:
        """``GET /music/{song_id}`` (seed 003): the song, its owner, its feed id."""
        account_id = song.feed.account
        account = self.accounts.get(account_id)
        image_key = account.image_key if account is not None else "unknown"
        return {
            "song": self.song_json(song, origin, detail=True),
            "user": {
                "id": account_id,
                "user_id": int(account_id),
                "stage_name": _stage_name(account_id),
                "profile_image": self.cdn_url(origin, image_key, "png"),
            },
            "feed_id": song.feed.feed_id,
        }

    def job_json(self, job: MurekaJob, origin: str, *, as_created: bool = False) -> dict[str, Any]:
        """The job record; `as_created` gives the record at creation (the 201 of a create)."""
        status = "created" if as_created else self.job_status(job)
        ended = status != "created"
        record: dict[str, Any] = {
            "jobid": job.jobid,
            "verb": job.verb,
            "jobType": "music",
            "status": status,
            "created": _iso(job.created_wall),
            "updated": _iso(job.created_wall + (job.render_seconds if ended else 0.0)),
            "request": dict(job.request),
        }
        if status == "completed":
            record["response"] = self.feed_json(job.feed, origin)
        elif status == "failed":
            assert job.failure is not None
            record["error"] = job.failure.error
            record["errorDetails"] = job.failure.details
            record["code"] = job.failure.code
        return record

    def running_jobs_json(self) -> dict[str, Any]:
        """``GET /jobs``: the running jobs per account and every configured account."""
        now = self.clock.now()
        accounts: dict[str, Any] = {}
        total = 0
        for account_id, jobs in self.running_jobs().items():
            entries = []
            for job in jobs:
                minutes, seconds = divmod(int(now - job.created_at), 60)
                entries.append(
                    {
                        "jobid": job.jobid,
                        "verb": job.verb,
                        "elapsed": f"{minutes:02d}:{seconds:02d}",
                    }
                )
            accounts[account_id] = {
                "total": len(entries),
                "music": len(entries),
                "tts": 0,
                "jobs": entries,
            }
            total += len(entries)
        return {
            "total": total,
            "music": total,
            "tts": 0,
            "accounts": accounts,
            "availableAccounts": list(self.accounts),
        }

    # --- files ------------------------------------------------------------------------------

    def _audio_for(self, seconds: int) -> Audio:
        return self._audio.get(
            (seconds, self.bitrate_kbps),
            lambda: mp3_bytes(
                seconds, bitrate_kbps=self.bitrate_kbps, id3_title=f"Mureka emulator ({seconds} s)"
            ),
            limit=self.audio_cache_limit,
        )

    def audio_bytes(self, song_id: str) -> bytes:
        """The exact bytes the song's ``mp3_url`` serves once it is ready."""
        return self._audio_for(self.songs[song_id].duration_ms // 1000).data

    def audio_sha256(self, song_id: str) -> str:
        """Hex SHA-256 of `audio_bytes(song_id)`."""
        return self._audio_for(self.songs[song_id].duration_ms // 1000).sha256

    # --- HTTP -------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """Build the API application (see `build_app`)."""
        return build_app(self)

    def build_extra_apps(self) -> Sequence[Mount]:
        """The CDN, mounted at `cdn_prefix` and logged as ``/cdn/...`` (see `build_cdn_app`)."""
        return [Mount(self.name, self.cdn_prefix, build_cdn_app(self), "/cdn")]


# ------------------------------------------------------------------------------------------------
# HTTP handlers

_STATE = web.AppKey("mureka_state", MurekaState)
# A synchronous create re-reads the clock this often: cheap, and close enough to the moment a
# test advances a frozen clock.
_SYNC_POLL_SECONDS = 0.02
_SONG_DELETED = {"error": "The song has been deleted"}


def _state(request: web.Request) -> MurekaState:
    return request.app[_STATE]


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _error(exc: MurekaError, state: MurekaState) -> web.Response:
    headers = None
    if exc.status == 429 and state.retry_after_on_429 is not None:
        headers = {"Retry-After": str(math.ceil(state.retry_after_on_429))}
    return json_error(exc.status, exc.message, headers=headers)


def _authorized(request: web.Request, state: MurekaState) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and bool(token) and state.check_token(token.strip())


def _unauthorized() -> web.Response:
    return json_error(401, "Unauthorized")


def _query_int(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    # A length cap keeps absurd values cheap and out of int().
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise MurekaError(400, f"{name}: must be an integer")
    return int(text)


def _query_bool(request: web.Request, name: str) -> bool:
    text = request.query.get(name, "").lower()
    if text in ("", "false", "0"):
        return False
    if text in ("true", "1"):
        return True
    raise MurekaError(400, f"{name}: must be true or false")


async def _list_music(request: web.Request) -> web.Response:
    state = _state(request)
    if not _authorized(request, state):
        return _unauthorized()
    try:
        account = state.resolve_account(request.query.get("account"))
        last_id = _query_int(request, "last_id")
        expand = _query_bool(request, "expand")
        state.check_account_error(account)
    except MurekaError as exc:
        return _error(exc, state)
    page = state.page(account.id, last_id)
    origin = _origin(request)
    body: dict[str, Any] = {"list": [state.feed_json(feed, origin, lyrics=expand) for feed in page]}
    if page:
        # An empty page has no last feed to continue after: the cursor is left out.
        body["last_id"] = page[-1].feed_id
    feeds = account.feeds
    body["more"] = bool(page) and feeds[0] is not page[-1]
    body["total"] = len(feeds)
    return json_response(body)


async def _show_song(request: web.Request) -> web.Response:
    state = _state(request)
    if not _authorized(request, state):
        return _unauthorized()
    song = state.songs.get(request.match_info["song_id"])
    if song is None or not state.is_visible(song):
        return json_response(_SONG_DELETED, status=404)
    account = state.accounts.get(song.feed.account)
    if account is not None:
        try:
            state.check_account_error(account)
        except MurekaError as exc:
            return _error(exc, state)
    return json_response(state.song_detail_json(song, _origin(request)))


async def _wait_for(state: MurekaState, job: MurekaJob) -> bool:
    """Wait (real time, bounded by `sync_timeout`) until the job's generation ends."""
    deadline = time.monotonic() + state.sync_timeout
    while state.clock.now() < job.done_at:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_SYNC_POLL_SECONDS)
    return True


async def _create(request: web.Request, route: str) -> web.Response:
    state = _state(request)
    if not _authorized(request, state):
        return _unauthorized()
    try:
        body = await read_json(request)
    except BadJSON as exc:
        return json_error(400, str(exc))
    if not isinstance(body, dict):
        return json_error(400, "Request body must be a JSON object")
    try:
        job = state.create(route, body)
    except MurekaError as exc:
        return _error(exc, state)
    origin = _origin(request)
    if body.get("async") is True:
        return json_response(state.job_json(job, origin, as_created=True), status=201)

    if not await _wait_for(state, job):
        return json_response(
            {
                "error": f"Generation still running after {state.sync_timeout:g} s, "
                f"poll GET /jobs/{job.jobid}",
                "code": 504,
                "jobid": job.jobid,
            },
            status=504,
        )
    if job.failure is not None:
        failure = job.failure
        return json_response(
            {
                "jobid": job.jobid,
                "error": failure.error,
                "errorDetails": failure.details,
                "code": failure.code,
            },
            status=failure.code,
        )
    # useapi.net answers a synchronous create with the job id merged into the feed.
    return json_response({"jobid": job.jobid, **state.feed_json(job.feed, origin)})


async def _create_simple(request: web.Request) -> web.Response:
    return await _create(request, "create")


async def _create_advanced(request: web.Request) -> web.Response:
    return await _create(request, "create-advanced")


async def _create_instrumental(request: web.Request) -> web.Response:
    return await _create(request, "create-instrumental")


async def _show_job(request: web.Request) -> web.Response:
    state = _state(request)
    if not _authorized(request, state):
        return _unauthorized()
    job = state.jobs.get(request.match_info["jobid"])
    if job is None or state.clock.now() >= job.expires_at:
        return json_error(404, "Job not found")
    account = state.accounts.get(job.account)
    if account is not None:
        try:
            state.check_account_error(account)
        except MurekaError as exc:
            return _error(exc, state)
    return json_response(state.job_json(job, _origin(request)))


async def _running_jobs(request: web.Request) -> web.Response:
    state = _state(request)
    if not _authorized(request, state):
        return _unauthorized()
    return json_response(state.running_jobs_json())


def build_app(state: MurekaState) -> web.Application:
    """Build the useapi.net Mureka application over `state` (mounted at its prefix)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_STATE] = state
    app.router.add_get("/music/", _list_music)
    app.router.add_get("/music", _list_music)
    app.router.add_post("/music/create", _create_simple)
    app.router.add_post("/music/create-advanced", _create_advanced)
    app.router.add_post("/music/create-instrumental", _create_instrumental)
    app.router.add_get("/music/{song_id}", _show_song)
    app.router.add_get("/jobs", _running_jobs)
    app.router.add_get("/jobs/", _running_jobs)
    app.router.add_get("/jobs/{jobid}", _show_job)
    return app


# ------------------------------------------------------------------------------------------------
# CDN


def _cdn_not_found() -> web.Response:
    return json_error(404, "Not found")


async def _cdn_mp3(request: web.Request) -> web.Response:
    state = _state(request)
    song = state._by_key.get(request.match_info["key"])
    if not isinstance(song, MurekaSong) or not state.is_ready(song):
        return _cdn_not_found()
    audio = state._audio_for(song.duration_ms // 1000)
    return bytes_response(request, audio.data, content_type="audio/mpeg", etag=audio.etag)


async def _cdn_image(request: web.Request) -> web.Response:
    state = _state(request)
    owner = state._by_key.get(request.match_info["key"])
    if owner is None or (isinstance(owner, MurekaSong) and not state.is_visible(owner)):
        return _cdn_not_found()
    return bytes_response(request, _PNG, content_type="image/png", etag='"mureka-cover-1"')


async def _share_page(request: web.Request) -> web.Response:
    state = _state(request)
    song = state._by_share_key.get(request.match_info["share_key"])
    if song is None or not state.is_visible(song):
        return _cdn_not_found()
    title = html.escape(song.title)
    audio = ""
    if state.is_ready(song):
        audio = f'<audio controls src="{state.cdn_url(_origin(request), song.key, "mp3")}"></audio>'
    page = f"<!doctype html><title>{title}</title><h1>{title}</h1>{audio}\n"
    return web.Response(text=page, content_type="text/html")


def build_cdn_app(state: MurekaState) -> web.Application:
    """Build the CDN application: MP3s, covers and share pages, no auth (signed-URL style)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_STATE] = state
    app.router.add_get("/{key}.mp3", _cdn_mp3)
    app.router.add_get("/{key}.png", _cdn_image)
    app.router.add_get("/share/{share_key}", _share_page)
    return app
