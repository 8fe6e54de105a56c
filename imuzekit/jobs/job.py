"""Job: a handle on one long-running generation, polled until it is ready.

A provider plugs in a `JobDriver` (pure: it builds the status request and reads a
`JobStatus` from the response); the job keeps the latest state and result, and the
poller of its provider refreshes it. A job never holds a model's client: it holds the poller.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import Any, Generic, Protocol, TypeVar

import attrs

from imuzekit import errors
from imuzekit._checks import checked, flag, seconds
from imuzekit._convert import JSONTooDeepError, loads_json
from imuzekit._http import Request, Response
from imuzekit.jobs._state import TERMINAL, JobState, next_state

__all__ = [
    "TOKEN_VERSION",
    "Job",
    "JobDriver",
    "JobPoller",
    "JobSnapshot",
    "JobStatus",
    "PollPolicy",
    "parse_token",
    "resume_typed",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

TOKEN_VERSION = 1


def _multiplier(name: str, value: Any) -> float:
    number: float = seconds(name, value)
    if number < 1:
        raise errors.ValidationError(name, f"must be >= 1, got {number}")
    return number


def _check_timeout(value: Any) -> float:
    """A ``timeout=`` argument of a wait, given (not None): finite seconds above 0."""
    number: float = seconds("timeout", value, positive=True)
    return number


def _budget(name: str, value: Any) -> float:
    number: float = seconds(name, value)  # a finite number >= 0, not a bool
    return number


@attrs.frozen
class PollPolicy:
    """How a job is polled.

    ``initial``: the wait before the first status request (2 s: no provider finishes faster,
    and Mureka's ~45 s jobs get their own hint). Then each wait grows by ``multiplier`` up to
    ``max_interval`` (10 s: bounds how late a finished job is noticed), with full jitter so that
    thousands of jobs created together do not poll in lockstep. A server's ``Retry-After`` on a
    status response is honoured when longer. ``timeout``: the default deadline of ``wait()``
    (15 min; a polling loop without a deadline is a hang waiting to happen). ``stall_after``:
    give up with `JobTimeout` when the state has not changed for that
    long (None: never).

    That backoff is a ceiling: the schedule may poll sooner, never later (see `docs/jobs.md`).

    ``budget``: status requests per job the schedule may spend where one list request refreshes
    many jobs (iMuze's `GET /songs`): ticks come as often as the budget allows, concentrated
    where jobs are likely to finish (0.05: one list request per 20 finished jobs, a thousandth
    of what a per-job 0.5 s loop sends, which still ticks about every 0.5 s while 1,000 songs
    finish over 25 s; 0 turns it off and leaves the backoff alone). ``min_interval``: the
    shortest wait the budget or the learning may choose between two polls (0.25 s: below the
    time one list page of 1,000 songs takes to fetch and read, a faster tick would only queue
    behind the last). ``learn``: use the render times of the jobs that already finished (and
    the job's hint, such as the requested length) to place the first poll and the spacing of
    per-job polls, and the budget's ticks.

    A wrong type or range (a negative, NaN, infinity, ``multiplier`` below 1) raises
    `ValidationError` naming the field.
    """

    initial: float = attrs.field(default=2.0, validator=checked(seconds))
    max_interval: float = attrs.field(default=10.0, validator=checked(seconds, positive=True))
    multiplier: float = attrs.field(default=2.0, validator=checked(_multiplier))
    jitter: bool = attrs.field(default=True, validator=checked(flag))
    timeout: float = attrs.field(default=900.0, validator=checked(seconds, positive=True))
    stall_after: float | None = attrs.field(
        default=None, validator=checked(seconds, positive=True, optional=True)
    )
    budget: float = attrs.field(default=0.05, validator=checked(_budget))
    min_interval: float = attrs.field(default=0.25, validator=checked(seconds, positive=True))
    learn: bool = attrs.field(default=True, validator=checked(flag))

    def interval(self, polls: int, rand: Callable[[], float]) -> float:
        """The wait before poll number ``polls`` (0-based): backoff, capped, with full jitter."""
        if polls == 0:
            return self.initial
        ceiling = min(self.max_interval, max(self.initial, 0.05) * self.multiplier**polls)
        return ceiling * rand() if self.jitter else ceiling


@attrs.frozen
class JobStatus(Generic[T]):
    """One reading of a job's status, as a driver parsed it from a response."""

    state: JobState
    raw_status: object
    result: T | None = None
    error: str | None = None


@attrs.frozen
class JobSnapshot(Generic[T]):
    """A job's state at one moment, as yielded by `Job.watch()`."""

    job_id: str
    state: JobState
    raw_status: object
    result: T | None
    at: float


class JobDriver(Protocol[T]):
    """What a provider supplies so that jobs of one kind can be polled (pure: no I/O)."""

    @property
    def provider(self) -> str:
        """The provider's name."""
        ...

    @property
    def kind(self) -> str:
        """The job kind within the provider (``"song"``), recorded in job tokens."""
        ...

    @property
    def ok_statuses(self) -> Collection[int]:
        """Error statuses that are a status reading, not a failure (a 404 while rendering)."""
        ...

    def status_request(self, job_id: str) -> Request:
        """The request that reads the job's status."""
        ...

    def parse_status(self, job_id: str, response: Response, previous: T | None) -> JobStatus[T]:
        """Read the job's status from ``response``; ``previous`` is the last known result."""
        ...

    def token_data(self, job_id: str, result: T | None) -> dict[str, Any]:
        """Extra JSON-safe data a resumed job needs (e.g. the title for the file name)."""
        ...

    def from_token_data(self, job_id: str, data: Mapping[str, Any]) -> T | None:
        """Rebuild the last known result from `token_data()`'s output."""
        ...


class JobPoller(Protocol):
    """What a job needs from the poller that refreshes it (the poller satisfies it).

    Declared here so that this module never imports the poller, not even for typing: the
    poller sits above the job in the layers.
    """

    async def refresh(self, job: Job[Any]) -> bool:
        """Send one status request for ``job`` now; return whether its state changed."""
        ...

    async def wait(self, job: Job[Any], *, deadline: float, until_change: bool = False) -> None:
        """Wait until ``job`` is done (or its state changes); ``deadline`` in loop time."""
        ...

    async def confirm(self, job: Job[Any]) -> bool:
        """Check ``job`` after a pushed hint (one status request, or the one in flight);
        return whether it is done."""
        ...


class Job(Generic[T]):
    """A handle on one generation: ``refresh()``, ``wait()``, ``watch()``, ``token()``.

    Created by the providers' ``create`` calls and by ``Client.resume(token)``; not directly.
    """

    def __init__(
        self,
        *,
        job_id: str,
        driver: JobDriver[T],
        poller: JobPoller,
        status: JobStatus[T],
        policy: PollPolicy,
        expected: float | None = None,
        started_at: float | None = None,
        push: Callable[[], bool] | None = None,
    ) -> None:
        self.id = job_id
        self.driver = driver
        self.policy = policy
        self.expected = expected
        """How long the provider is expected to take, in seconds, when known (a hint: the
        requested length of a song, Mureka's ~45 s); the schedule learns the real ratio."""
        self.started_at = started_at
        """When the provider accepted the job (``time.monotonic()``), when this process saw it;
        None for a job resumed or wrapped later (its age is then unknown)."""
        self.push = push
        """Whether a push receiver awaits this job's callbacks right now (Mureka with
        `imuzekit.webhooks.Webhooks`), or None: the poller then keeps only a slow safety
        schedule for it."""
        self._poller = poller
        self._state = JobState.QUEUED
        self.raw_status: object = None
        """The provider's own status value (``"processing"``, ``3``, ``"completed"``, ...)."""
        self.result: T | None = None
        """The latest model read from the provider (final once the job is READY)."""
        self.error: str | None = None
        """The provider's reason when the job FAILED."""
        self.polls = 0
        """How many status readings this job has received."""
        self.last_polled_at: float | None = None
        """When the last status reading arrived (``time.monotonic()``), or None."""
        self.last_error: BaseException | None = None
        """The error that ended the last wait on this job (a 404, an unreadable status...)."""
        self.changed_at = time.monotonic()
        self._on_done: list[Callable[[Job[T]], None]] = []
        self._apply(status)

    def __repr__(self) -> str:
        return f"<Job {self.provider}:{self.driver.kind} {self.id} {self._state.value}>"

    @property
    def provider(self) -> str:
        """The provider's name (``"imuze"``, ``"joplin"``, ``"mureka"``, ``"musescore"``)."""
        return self.driver.provider

    @property
    def state(self) -> JobState:
        """The current `JobState`."""
        return self._state

    @property
    def done(self) -> bool:
        """Whether the job reached READY or FAILED."""
        return self._state in TERMINAL

    def _apply(self, status: JobStatus[T]) -> bool:
        """Take a new reading; return whether the state changed."""
        self.raw_status = status.raw_status
        if status.result is not None:
            self.result = status.result
        new = next_state(self._state, status.state)
        if new is JobState.FAILED:
            self.error = status.error
        if new is self._state:
            return False
        self._state = new
        self.changed_at = time.monotonic()
        if new in TERMINAL:
            callbacks, self._on_done = self._on_done, []
            for callback in callbacks:
                callback(self)
        return True

    async def confirm(self) -> bool:
        """Check the job after a pushed callback said it ended; return whether it is done.

        One status request, merged with a poll of this job already in flight when that one
        shows it done. The callback itself never changes the job: only this reading does.

        Raises:
            errors.APIError: the status request answered an error status (`NotFoundError`,
                ...); `TransportError` and `ParseError` as for `refresh()`.
            errors.ClientClosedError: the Client was closed.
        """
        return await self._poller.confirm(self)

    def add_done_callback(self, callback: Callable[[Job[T]], None]) -> None:
        """Call ``callback(job)`` once when the job reaches READY or FAILED (at once if it has)."""
        if self.done:
            callback(self)
        else:
            self._on_done.append(callback)

    def snapshot(self) -> JobSnapshot[T]:
        """The job's state right now."""
        return JobSnapshot(self.id, self._state, self.raw_status, self.result, time.time())

    async def refresh(self) -> JobState:
        """Read the status once from the provider and return the (possibly new) state.

        Raises:
            errors.NotFoundError: the provider no longer knows the job.
            errors.APIError: another error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the status could not be read.
            errors.ClientClosedError: the Client is closed.
        """
        await self._poller.refresh(self)
        return self._state

    def take_response(self, response: Response) -> bool:
        """Apply a status response (called by the poller); return whether the state changed."""
        return self.apply_status(self.driver.parse_status(self.id, response, self.result))

    def apply_status(self, status: JobStatus[T]) -> bool:
        """Apply a status reading (called by the poller); return whether the state changed."""
        self.polls += 1
        self.last_polled_at = time.monotonic()
        return self._apply(status)

    async def wait(self, timeout: float | None = None) -> T:
        """Poll until READY and return the result.

        Raises `JobFailed` when the provider reports failure and
        `JobTimeout` when ``timeout`` (default ``PollPolicy.timeout``)
        passes or the job stalls; the job may still finish remotely (keep ``token()``).

        Raises:
            errors.JobFailed: the provider reported the job failed (`reason`: its text).
            errors.JobTimeout: the deadline passed, or the job stalled (`PollPolicy.stall_after`).
            errors.ValidationError: `timeout` is not a positive number of seconds.
            errors.APIError: a status read failed for good (a 404, a 401 after a re-login), or
                five in a row failed (`ServerError`, `RateLimitError`); kept on `last_error`.
            errors.TransportError: five status reads in a row failed on the wire.
            errors.ParseError: the status, or the READY job's result, could not be read.
            errors.ClientClosedError: the Client was closed while waiting.
        """
        limit = self.policy.timeout if timeout is None else _check_timeout(timeout)
        if not self.done:
            deadline = asyncio.get_running_loop().time() + limit
            await self._poller.wait(self, deadline=deadline)
        return self._outcome()

    def result_or_raise(self) -> T:
        """The result of a READY job, typed (a `Song` for a `Job[Song]`), without a request.

        Raises `imuzekit.errors.JobFailed` when the job FAILED (`reason`: the provider's
        text) and `imuzekit.errors.JobNotReady` while it is not done yet (QUEUED, PROCESSING
        or UNKNOWN): `await job.wait()` polls until the result is there. Unlike `job.result`
        (the latest model read, `T | None`, possibly unfinished), it never returns None.

        Raises:
            errors.JobNotReady: the job is QUEUED, PROCESSING or UNKNOWN (`state` says which).
            errors.JobFailed: the job FAILED.
            errors.ParseError: the job is READY but the provider gave no result.
        """
        if not self.done:
            raise errors.JobNotReady(
                f"{self.provider} job {self.id} is {self._state.value}, not ready: "
                "await job.wait() for its result",
                job=self,
                state=self._state.value,
            )
        return self._outcome()

    def _outcome(self) -> T:
        if self._state is JobState.FAILED:
            reason = self.error or f"status {self.raw_status!r}"
            raise errors.JobFailed(
                f"{self.provider} job {self.id} failed: {reason}", job=self, reason=self.error
            )
        if self.result is None:
            raise errors.ParseError(f"{self.provider} job {self.id} is ready but has no result")
        return self.result

    async def watch(self, timeout: float | None = None) -> AsyncIterator[JobSnapshot[T]]:
        """Yield a snapshot now and at every state change, until the job is READY or FAILED.

        Raises `JobTimeout` like `wait()`; it does not raise
        `JobFailed` (the last snapshot shows FAILED).

        Raises:
            errors.JobTimeout: the deadline passed, or the job stalled.
            errors.ValidationError: `timeout` is not a positive number of seconds (at once).
            errors.APIError: a status read failed for good, as in `wait()`; likewise
                `TransportError` and `ParseError`.
            errors.ClientClosedError: the Client was closed while watching.
        """
        limit = self.policy.timeout if timeout is None else _check_timeout(timeout)
        deadline = asyncio.get_running_loop().time() + limit
        yield self.snapshot()
        while not self.done:
            await self._poller.wait(self, deadline=deadline, until_change=True)
            yield self.snapshot()

    def token(self) -> str:
        """A JSON string from which ``Client.resume`` rebuilds this job, in any process.

        It holds the provider, the job kind, the remote id and what the download needs; never
        a credential.
        """
        payload = {
            "imuzekit_job": TOKEN_VERSION,
            "provider": self.provider,
            "kind": self.driver.kind,
            "id": self.id,
            "data": self.driver.token_data(self.id, self.result),
        }
        return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def resume_typed(
    token: str,
    driver: JobDriver[T],
    rebuild: Callable[[str, Mapping[str, Any]], Job[T]],
) -> Job[T]:
    """Rebuild a job of `driver`'s provider and kind from `token`, typed `Job[T]`.

    What the providers' typed `resume(token)` methods share (`kit.imuze.songs.resume`):
    `rebuild(job_id, data)` makes the job. A token of another provider or kind, or fields
    that do not fit the job (an id that is not a number), raise
    `imuzekit.errors.ValidationError` on `token`.

    Raises:
        errors.ValidationError: `token` is not a token of this provider's job kind.
    """
    provider, kind, job_id, data = parse_token(token)
    if (provider, kind) != (driver.provider, driver.kind):
        raise errors.ValidationError(
            "token",
            f"is a {provider!r} {kind!r} job token; this resumes {driver.provider!r} "
            f"{driver.kind!r} jobs (kit.resume(token) takes a token of any provider)",
        )
    try:
        return rebuild(job_id, data)
    except errors.ValidationError:
        raise
    except (errors.ParseError, ValueError, TypeError) as exc:
        # Fields that do not fit the provider's job are a bad token, not a bad answer.
        raise errors.ValidationError("token", f"does not describe a {provider} {kind} job") from exc


def parse_token(token: str) -> tuple[str, str, str, Mapping[str, Any]]:
    """Split a job token into (provider, kind, id, data).

    Raises:
        errors.ValidationError: `token` is not a job token (not JSON, another version, a
            field missing or of the wrong type).
    """
    if not isinstance(token, str | bytes):
        raise errors.ValidationError("token", f"must be a string, got {type(token).__name__}")
    try:
        payload = loads_json(token)
    except JSONTooDeepError as exc:
        raise errors.ValidationError("token", f"not a job token ({exc})") from None
    except (TypeError, ValueError) as exc:
        raise errors.ValidationError("token", "not a job token (invalid JSON)") from exc
    if not isinstance(payload, dict) or "imuzekit_job" not in payload:
        raise errors.ValidationError("token", "not an imuzekit job token")
    version = payload["imuzekit_job"]
    if version != TOKEN_VERSION:
        raise errors.ValidationError(
            "token", f"token version {version!r} is not supported (expected {TOKEN_VERSION})"
        )
    try:
        fields = payload["provider"], payload["kind"], payload["id"]
    except KeyError as exc:
        raise errors.ValidationError("token", f"missing {exc.args[0]!r}") from exc
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in fields):
        raise errors.ValidationError("token", "'provider', 'kind' and 'id' must be strings")
    provider, kind, job_id = (str(v) for v in fields)
    data = payload.get("data") or {}
    if not isinstance(data, dict):
        raise errors.ValidationError("token", "'data' must be an object")
    return provider, kind, job_id, data
