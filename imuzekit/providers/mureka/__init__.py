"""Mureka through useapi.net (``kit.mureka``): feeds, song details, creation, jobs, accounts.

Base URL: ``https://api.useapi.net/v1/mureka``. One useapi.net token can
drive several Mureka accounts; each runs at most 10 generations at once (~45 s each, two songs
per generation). Typical use:

    config = MurekaConfig(token="...", accounts=("1111", "2222"))
    async with Client(mureka=config) as kit:
        job = await kit.mureka.music.create("a sunny ska tune about trains")
        feed = await job.wait()
        async for result in kit.download_many(feed.songs, "out/"):
            print(result.path)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

import attrs

from imuzekit import errors
from imuzekit._http import Request, Response, Sender
from imuzekit._paging import Paginator
from imuzekit._retry import RetryPolicy, backoff_delay
from imuzekit.jobs import Job, PollPolicy
from imuzekit.jobs._poller import Poller
from imuzekit.jobs.job import resume_typed
from imuzekit.providers.mureka import _api
from imuzekit.providers.mureka._slots import AccountSlots
from imuzekit.providers.mureka.models import (
    Feed,
    FeedPage,
    JobRecord,
    LyricRow,
    LyricSection,
    Number,
    RunningJobs,
    Song,
    SongDetail,
    User,
    Video,
)

__all__ = [
    "MUREKA_HINT",
    "MUREKA_POLL",
    "Feed",
    "FeedPage",
    "JobRecord",
    "JobsAPI",
    "LyricRow",
    "LyricSection",
    "MurekaAPI",
    "MusicAPI",
    "Number",
    "PushReceiver",
    "RunningJobs",
    "Song",
    "SongDetail",
    "User",
    "Video",
]

SESSION_EXPIRED = 596
MUREKA_POLL = PollPolicy(initial=30.0, max_interval=10.0, timeout=900.0)
"""Mureka takes ~45 s per generation: the first status read waits 30 s, then every <=10 s."""
MUREKA_HINT = 45.0
"""Seconds a generation usually takes (useapi.net: ~45 s): each job's hint to the schedule,
which learns the real ratio from the jobs that finish."""


class PushReceiver(Protocol):
    """What `MurekaAPI` needs from a push receiver (`imuzekit.webhooks.Webhooks` is one)."""

    def reply(self) -> Any:
        """A new pair for one create attempt, with ``url`` and ``ref`` attributes."""
        ...

    def register(
        self,
        job_id: str,
        ref: str,
        confirm: Callable[[], Awaitable[bool]],
        *,
        account: str | None = None,
    ) -> bool:
        """Watch ``job_id``'s callbacks; False when ``ref`` is not this receiver's."""
        ...

    def settle(self, job_id: str) -> None:
        """The job ended: later callbacks change nothing."""
        ...

    def ref_of(self, job_id: str) -> str | None:
        """The ``replyRef`` a watched job was created with."""
        ...

    def watching(self, job_id: str) -> bool:
        """Whether the job's callbacks are awaited."""
        ...


class MusicAPI:
    """``kit.mureka.music``: list feeds, read songs, create music."""

    def __init__(self, api: MurekaAPI) -> None:
        self._api = api

    def list(self, account: str | None = None, expand: bool = False) -> Paginator[Feed]:
        """Every feed of an account, newest first, following ``last_id`` while ``more``.

        An async iterator; its ``total`` attribute holds the service's total once the first
        page arrived. ``expand=True`` includes the songs' lyrics.

        Raises:
            errors.ValidationError: `account` is not one of the configured accounts (at once).
            errors.ServerError: the account's session expired (596: refresh it on useapi.net),
                or 5xx after the retries; raised by the iteration, like the rows below.
            errors.APIError: another error status (`AuthenticationError`, `RateLimitError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        account = self._api.account_for(account)
        first = _api.build_list_music(self._api.base_url, account=account, expand=expand)
        return Paginator(self._api, first, _api.parse_feed_page, _api.next_music_request)

    async def get(self, song_id: str | int | None) -> SongDetail:
        """One song with its lyrics, its user and its feed id (``GET /music/{song_id}``).

        A deleted song raises `NotFoundError` ("The song has been
        deleted"). A song the service listed without its id (``song.song_id`` None) cannot be
        fetched: ``ValidationError`` on ``song_id``, before anything is sent.

        Raises:
            errors.ValidationError: `song_id` is None or not an id (nothing is sent).
            errors.NotFoundError: the song was deleted, or never existed.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_get_song(self._api.base_url, song_id)
        return _api.parse_song_detail(await self._api.send(request))

    async def create(
        self,
        prompt: str | None = None,
        *,
        model: str | None = None,
        account: str | None = None,
        reply_url: str | None = None,
        reply_ref: str | None = None,
    ) -> Job[Feed]:
        """Generate a song with AI-written lyrics (``POST /music/create``; prompt <= 3000).

        ``reply_url``/``reply_ref`` are sent as useapi.net's ``replyUrl``/``replyRef``
        (callbacks on created, completed and failed; see `imuzekit.webhooks`).

        Raises:
            errors.ValidationError: a field is too long, `account` is not configured, or a
                reply field is malformed: it names the field, and nothing is sent.
            errors.RateLimitError: no account had a free slot within `slot_timeout` (a busy
                account's 429 moves the creation to another account instead).
            errors.ServerError: the account's session expired (596: refresh it on useapi.net).
            errors.APIError: another error status (`AuthenticationError`, ...).
            errors.TransportError: the connection failed; with `sent` True the generation may
                have started (it is not sent again: see `kit.mureka.jobs.running()`).
            errors.ParseError: the answer could not be read.
        """
        return await self._api.submit(
            "create", account, prompt=prompt, model=model, reply_url=reply_url, reply_ref=reply_ref
        )

    async def create_advanced(
        self,
        lyrics: str,
        *,
        title: str | None = None,
        desc: str | None = None,
        vocal_id: str | None = None,
        ref_id: str | None = None,
        motif_id: str | None = None,
        model: str | None = None,
        account: str | None = None,
        reply_url: str | None = None,
        reply_ref: str | None = None,
    ) -> Job[Feed]:
        """Generate a song from your lyrics (``POST /music/create-advanced``; lyrics <= 5000,
        title <= 50, desc <= 1000; ``reply_url``/``reply_ref`` as in `create`).

        Raises:
            errors.ValidationError: no `lyrics`, a field over its limit, or an account not
                configured (nothing is sent).
            errors.RateLimitError: every account stayed busy for `slot_timeout` seconds.
            errors.APIError: an error status (`ServerError` 596: the account's session expired).
            errors.TransportError: the connection failed (with `sent` True: never sent again).
            errors.ParseError: the answer named no job.
        """
        return await self._api.submit(
            "create-advanced",
            account,
            lyrics=lyrics,
            title=title,
            desc=desc,
            vocal_id=vocal_id,
            ref_id=ref_id,
            motif_id=motif_id,
            model=model,
            reply_url=reply_url,
            reply_ref=reply_ref,
        )

    async def create_instrumental(
        self,
        prompt: str | None = None,
        *,
        title: str | None = None,
        ref_id: str | None = None,
        model: str | None = None,
        account: str | None = None,
        reply_url: str | None = None,
        reply_ref: str | None = None,
    ) -> Job[Feed]:
        """Generate an instrumental (``POST /music/create-instrumental``; prompt <= 1000,
        title <= 50; ``reply_url``/``reply_ref`` as in `create`).

        Raises:
            errors.ValidationError: the prompt or the title is too long, or a reply field or
                the account is wrong (nothing is sent).
            errors.RateLimitError: no free generation slot on any account in time.
            errors.APIError: an error status from useapi.net (`ServerError`, ...).
            errors.TransportError: no answer; the request is never sent twice.
            errors.ParseError: the answer was not a job record.
        """
        return await self._api.submit(
            "create-instrumental",
            account,
            prompt=prompt,
            title=title,
            ref_id=ref_id,
            model=model,
            reply_url=reply_url,
            reply_ref=reply_ref,
        )

    def resume(self, token: str) -> Job[Feed]:
        """Rebuild a generation's job from `job.token()` (in this or another process), typed.

        `kit.mureka.music.resume(token)` is a `Job[Feed]`, watched for callbacks again when
        the token recorded a `replyRef` this Client's webhooks verify. A token of another
        provider or job kind raises `imuzekit.errors.ValidationError` on `token`
        (`kit.resume(token)` takes any provider's, untyped). Same as `kit.mureka.jobs.resume`.

        Raises:
            errors.ValidationError: `token` is not a token of a Mureka generation.
        """
        return resume_typed(token, self._api._driver, self._api._rebuild)


class JobsAPI:
    """``kit.mureka.jobs``: useapi.net's job records."""

    def __init__(self, api: MurekaAPI) -> None:
        self._api = api

    async def get(self, jobid: str) -> JobRecord:
        """One job's record (``GET /jobs/{jobid}``); jobs are kept 7 days.

        Raises:
            errors.ValidationError: `jobid` is empty or too long (nothing is sent).
            errors.NotFoundError: no job has this id (any more).
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_get_job(self._api.base_url, jobid)
        return _api.parse_job_record(await self._api.send(request))

    async def running(self) -> RunningJobs:
        """The jobs running now, per account (``GET /jobs``).

        Raises:
            errors.AuthenticationError: useapi.net refused the token.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_running_jobs(self._api.base_url)
        return _api.parse_running_jobs(await self._api.send(request))

    def job(self, jobid: str, *, policy: PollPolicy | None = None) -> Job[Feed]:
        """A job handle for a generation started elsewhere."""
        return self._api.job_for(jobid, None, policy)

    def resume(self, token: str) -> Job[Feed]:
        """Rebuild a job from `job.token()`, typed `Job[Feed]` (as `kit.mureka.music.resume`).

        Raises:
            errors.ValidationError: `token` is not a Mureka job's token.
        """
        return resume_typed(token, self._api._driver, self._api._rebuild)


class MurekaAPI:
    """The Mureka namespace of a Client (``kit.mureka``).

    ``slot_timeout`` bounds how long a creation waits for a free slot when every account is
    busy (10 minutes: long enough for a whole wave of ~45 s generations to finish).

    With ``webhooks`` (the Client's ``Webhooks``), each create attempt sends a fresh
    ``replyUrl``/``replyRef`` (unless the call gives its own ``reply_url``) and its job is
    registered with the receiver: a callback makes it confirm with one ``GET /jobs/{jobid}``,
    and the poller keeps only its safety schedule. Job tokens record the ``replyRef``, so a
    job resumed in a Client with the same secret is watched there too.
    """

    def __init__(
        self,
        *,
        sender: Sender,
        base_url: str,
        accounts: Sequence[str],
        max_parallel_per_account: int,
        poller: Poller,
        poll_policy: PollPolicy,
        retry: RetryPolicy,
        failure_states: Sequence[int] = (),
        slot_timeout: float = 600.0,
        webhooks: PushReceiver | None = None,
    ) -> None:
        self.sender = sender
        self.base_url = base_url.rstrip("/")
        self.accounts = tuple(accounts)
        self.poll_policy = poll_policy
        self.slot_timeout = slot_timeout
        self._poller = poller
        self._retry = retry
        # A create's 429 means "this account's slots are busy": try another account rather
        # than hammering this one (the pool backs it off).
        self._create_retry = attrs.evolve(retry, retry_statuses=retry.retry_statuses - {429})
        self.webhooks = webhooks
        self._driver = _api.FeedDriver(
            self.base_url,
            frozenset(failure_states),
            reply_ref_of=None if webhooks is None else webhooks.ref_of,
        )
        self.slots = AccountSlots(self.accounts, max_parallel_per_account)
        self.music = MusicAPI(self)
        self.jobs = JobsAPI(self)

    def account_for(self, account: str | None) -> str | None:
        """``account``, or the only configured one; ValidationError for an unknown one.

        Raises:
            errors.ValidationError: `account` is blank or not a configured account.
        """
        if account is None:
            return self.accounts[0] if len(self.accounts) == 1 else None
        check = account if isinstance(account, str) else None
        if check is None or not check.strip():
            raise errors.ValidationError("account", f"must be an account id, got {account!r}")
        if self.accounts and account not in self.accounts:
            raise errors.ValidationError(
                "account", f"{account!r} is not one of the configured accounts {self.accounts}"
            )
        return account

    async def send(self, request: Request, *, ok_statuses: Collection[int] = ()) -> Response:
        """Send through the transport, explaining useapi.net's 596 (expired account session).

        Raises:
            errors.ServerError: 596, the account's session expired (the message says where to
                refresh it), or another 5xx after the retries.
            errors.APIError: another error status (its subclass).
            errors.TransportError: the connection failed or timed out (after the retries).
        """
        try:
            return await self.sender.send(request, ok_statuses=ok_statuses)
        except errors.ServerError as exc:
            if exc.status != SESSION_EXPIRED:
                raise
            raise errors.ServerError(
                "the Mureka account session expired: refresh it on useapi.net "
                f"(https://useapi.net/docs/start-here/setup-mureka); the service said: "
                f"{exc.message}",
                status=exc.status,
                provider=exc.provider,
                body=exc.body,
                request_id=exc.request_id,
                method=exc.method,
                url=exc.url,
            ) from exc

    async def _running_by_account(self) -> dict[str, set[str]]:
        running = await self.jobs.running()
        return {account: {j.jobid for j in jobs} for account, jobs in running.accounts.items()}

    async def submit(self, route: str, account: str | None, **fields: Any) -> Job[Feed]:
        """Create on a free account (the least busy), waiting for a slot when all are busy.

        Raises:
            errors.ValidationError: a field or the account is wrong (before any wait).
            errors.RateLimitError: no slot was free within `slot_timeout`.
            errors.APIError: useapi.net answered an error status (`ServerError`, ...).
            errors.TransportError: the request failed on the wire (never sent twice).
            errors.ParseError: the create's answer could not be read.
        """
        wanted = self.account_for(account)
        # Validate before waiting for a slot, so bad input fails at once.
        _api.build_create(self.base_url, route, account=wanted, **fields)
        attempt = 0
        deadline = time.monotonic() + self.slot_timeout
        hooks = self.webhooks if fields.get("reply_url") is None else None
        while True:
            slot = await self.slots.acquire(
                wanted, self._running_by_account, timeout=max(0.0, deadline - time.monotonic())
            )
            reply = None if hooks is None else hooks.reply()
            if reply is not None:
                fields.update(reply_url=reply.url, reply_ref=reply.ref)
            request = _api.build_create(
                self.base_url, route, account=slot or None, retry=self._create_retry, **fields
            )
            try:
                response = await self.send(request)
                record = _api.parse_job_record(response)
            except errors.RateLimitError as exc:
                self.slots.cancel(slot)
                attempt += 1
                pause = exc.retry_after or backoff_delay(attempt, self._retry) + 1.0
                self.slots.backoff(slot, pause)
                continue
            except BaseException:
                self.slots.cancel(slot)
                raise
            self.slots.commit(slot, record.jobid)
            job = self.job_for(record.jobid, record, started_at=time.monotonic())
            job.add_done_callback(lambda done: self.slots.finished(done.id))
            if hooks is not None and reply is not None:
                self._watch(hooks, job, reply.ref, slot or None)
            return job

    @staticmethod
    def _watch(hooks: PushReceiver, job: Job[Feed], ref: str, account: str | None) -> None:
        """Register ``job`` for callbacks (confirmed through its poller); settle it when done."""
        if hooks.register(job.id, ref, job.confirm, account=account):
            job.add_done_callback(lambda done: hooks.settle(done.id))

    def job_for(
        self,
        jobid: str,
        record: JobRecord | None,
        policy: PollPolicy | None = None,
        *,
        started_at: float | None = None,
    ) -> Job[Feed]:
        """A job polled by this provider's poller (``record``: what is known already;
        ``started_at``: when the create answered, ``time.monotonic()``, if this process saw it)."""
        if record is None:
            record = JobRecord(jobid=jobid)
        hooks = self.webhooks
        return Job(
            job_id=jobid,
            driver=self._driver,
            poller=self._poller,
            status=self._driver.status_of(record),
            policy=policy or self.poll_policy,
            expected=MUREKA_HINT,
            started_at=started_at,
            push=None if hooks is None else (lambda: hooks.watching(jobid)),
        )

    def resume(self, kind: str, job_id: str, data: Mapping[str, Any]) -> Job[Feed]:
        """Rebuild a job from a token's fields (used by ``Client.resume``)."""
        if kind != self._driver.kind:
            raise errors.ValidationError("token", f"unknown Mureka job kind {kind!r}")
        return self._rebuild(job_id, data)

    def _rebuild(self, job_id: str, data: Mapping[str, Any]) -> Job[Feed]:
        ref = _api.reply_ref_from_token(data)
        job = self.job_for(job_id, None)
        if ref is not None and self.webhooks is not None:
            # Another secret's reference does not verify: the job is then simply polled.
            self._watch(self.webhooks, job, ref, None)
        return job
