"""The emulated Mureka's state: the token, accounts, generations, feeds, songs and jobs.

Pure: no aiohttp (the HTTP side is `responses` and `urls`), so tests can drive it directly.
Everything is derived from the clock when read (no background tasks), so a frozen clock and
``emu.clock.advance`` make every transition exact.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import secrets
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from imuzekit.emulator._clock import Clock
from imuzekit.emulator._faults import CallbackFaults
from imuzekit.emulator._kit.media import AudioStore
from imuzekit.emulator._kit.provider import Credentials
from imuzekit.emulator._kit.timing import (
    RenderSeconds,
    check_render_seconds,
    draw_render_seconds,
)
from imuzekit.emulator._mp3 import Audio

from . import views
from .callbacks import Callback, Outbox, forged_record
from .models import (
    ACCOUNT_ERRORS,
    CREATE_ROUTES,
    DEFAULT_ACCOUNTS,
    FEED_COMPLETE,
    FEED_GENERATING,
    FEED_QUEUED,
    PAGE_SIZE,
    USEAPI_USER_ID,
    Failure,
    MurekaAccount,
    MurekaError,
    MurekaFeed,
    MurekaJob,
    MurekaSong,
)
from .rules import (
    creation_problems,
    is_int,
    lyrics_from_prompt,
    lyrics_from_text,
    title_from,
    words,
)

__all__ = ["MurekaState"]

# Songs last 20-40 whole seconds: long enough to look like songs, short enough that 400 MP3s
# stay small, and whole seconds keep the audio cache to a few distinct files.
_SONG_SECONDS = (20, 40)
# A generation sits in the queue (state 1) for this share of its render time, then generates.
_QUEUED_SHARE = 0.1
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
    if not is_int(value) or value < 1:
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
    render_seconds: RenderSeconds = attrs.field(default=2.0, converter=check_render_seconds)
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
    model_fields: bool = False
    """Also send the fields useapi.net's model lists but the reference's examples leave out:
    per song ``wave_list``, ``is_played``, ``is_liked`` and a ``video`` with its fields, per
    lyrics section ``seg_type``, ``user_input_tag``, ``start`` and ``end``."""

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
    callbacks: Outbox = attrs.field(factory=Outbox, init=False)
    """Callbacks to creations' ``replyUrl``: queued, released (``callbacks.released``, each
    with the receiver's ``status``) and dropped; the courier sends them."""

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
    _audio: AudioStore = attrs.field(factory=AudioStore, init=False)

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
        if not is_int(n) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self._fail_queue.extend([Failure(error, details, code)] * n)

    @property
    def callback_faults(self) -> CallbackFaults:
        """The callback fault registry (`CallbackFaults.add`: drop, duplicate, delay, reorder)."""
        return self.callbacks.faults

    def create(
        self,
        route: str,
        request: Mapping[str, Any],
        *,
        account: str | None = None,
        origin: str = "",
    ) -> MurekaJob:
        """Start a generation as ``POST /music/<route>`` does and return its job.

        `route` is a key of `CREATE_ROUTES`; `account` overrides the body's. Raises
        `MurekaError` with the status the API would answer (400, 402/412/596, 429). With a
        ``replyUrl``, callbacks fall due now (``created``) and when the generation ends;
        `origin` is the scheme and host their records link CDN files under.
        """
        if route not in CREATE_ROUTES:
            raise ValueError(f"route must be one of {', '.join(CREATE_ROUTES)}, got {route!r}")
        owner = self.resolve_account(request.get("account") if account is None else account)
        problems = creation_problems(route, request)
        if problems:
            raise MurekaError(400, "; ".join(problems))
        self.check_account_error(owner)
        running = self._running_jobs(owner.id)
        if len(running) >= self.max_parallel:
            raise MurekaError(
                429, f"All {self.max_parallel} generation slots are busy, retry later"
            )

        now, wall = self.clock.now(), self.clock.wall()
        lyrics: tuple[tuple[str, ...], ...]
        if route == "create":
            prompt = request.get("prompt") or ""
            lyrics, title = lyrics_from_prompt(prompt), title_from(prompt)
        elif route == "create-advanced":
            lyrics = lyrics_from_text(request["lyrics"])
            title = request.get("title") or title_from(request["lyrics"])
            prompt = request.get("desc") or ""
        else:
            prompt = request.get("prompt") or ""
            lyrics, title = (), request.get("title") or title_from(prompt)
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
            render_seconds=draw_render_seconds(self._rng, self.render_seconds),
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
        url = request.get("replyUrl")
        if isinstance(url, str):
            final = "failed" if job.failure is not None else "completed"
            for event, due in (("created", now), (final, job.done_at)):
                self.callbacks.schedule(Callback(url, event, job.jobid, due, origin=origin))
        return job

    def callback_body(self, callback: Callback) -> dict[str, Any] | None:
        """The JSON a callback carries: the job's record at its event (None: job forgotten)."""
        if callback.body is not None:
            return dict(callback.body)
        job = self.jobs.get(callback.jobid or "")
        if job is None:
            return None
        return views.job_json(self, job, callback.origin, as_created=callback.event == "created")

    def send_forged_callback(
        self,
        url: str | None = None,
        *,
        jobid: str | None = None,
        status: str = "completed",
        reply_ref: str | None = None,
        copy_ref: bool = False,
        body: Mapping[str, Any] | None = None,
    ) -> Callback:
        """Queue, due now, a callback useapi.net never sent and return it (`status` once sent).

        By default it claims `jobid` ``completed`` with songs whose ``mp3_url`` is
        `FORGED_MP3_URL`, sent to the job's ``replyUrl`` (or `url`), with `reply_ref` as its
        ``replyRef``, the job's real one when `copy_ref` (a forger who saw it), else none.
        `body` replaces the whole JSON. Faults do not apply to it.
        """
        job = self.jobs.get(jobid) if jobid is not None else None
        real = job.request if job is not None else {}
        url = url or real.get("replyUrl")
        if not isinstance(url, str):
            raise ValueError("no url: pass url= or the jobid of a job created with replyUrl")
        if copy_ref:
            reply_ref = real.get("replyRef")
        record = body or forged_record(
            jobid=jobid or f"j0-u{USEAPI_USER_ID}-a0-bot:mureka",
            status=status,
            account=job.account if job is not None else None,
            url=url,
            reply_ref=reply_ref,
        )
        forged = Callback(url, status, jobid, self.clock.now(), body=record, forged=True)
        return self.callbacks.schedule(forged)

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
        hinted = {word.lower() for word in words(hint)}
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
                title=title_from(prompt) if prompt else f"Seeded song {index}",
                lyrics=lyrics_from_prompt(prompt),
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

    # The JSON shapes, as methods too (`views` holds them, as functions of the state).
    song_json = views.song_json
    feed_json = views.feed_json
    song_detail_json = views.song_detail_json
    job_json = views.job_json
    running_jobs_json = views.running_jobs_json
    accounts_json = views.accounts_json

    def by_cdn_key(self, key: str) -> MurekaSong | MurekaAccount | None:
        """The song (MP3 and cover) or the account (profile image) a CDN key names."""
        return self._by_key.get(key)

    def by_share_key(self, share_key: str) -> MurekaSong | None:
        """The song a share page's key names."""
        return self._by_share_key.get(share_key)

    # --- files ------------------------------------------------------------------------------

    def audio(self, song: MurekaSong) -> Audio:
        """The MP3 the song's ``mp3_url`` serves once it is ready (shared by length)."""
        # Exactly the declared duration (to the frame): flooring to whole seconds would make a
        # fractional duration up to a second short.
        seconds = song.duration_ms / 1000
        return self._audio.mp3(
            seconds,
            bitrate_kbps=self.bitrate_kbps,
            limit=self.audio_cache_limit,
            title=f"Mureka emulator ({seconds:g} s)",
        )

    def audio_bytes(self, song_id: str) -> bytes:
        """The exact bytes the song's ``mp3_url`` serves once it is ready."""
        return self.audio(self.songs[song_id]).data

    def audio_sha256(self, song_id: str) -> str:
        """Hex SHA-256 of `audio_bytes(song_id)`."""
        return self.audio(self.songs[song_id]).sha256
