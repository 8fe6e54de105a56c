"""When and how long to wait before sending a request again.

Pure functions and one frozen policy value; the transport applies them. The rules follow what
providers document and what keeps paid generations from being submitted twice:

* idempotent requests (GET, HEAD, PUT, DELETE) are retried on connection failures and on the
  statuses of `RetryPolicy.retry_statuses`;
* non-idempotent requests (POST: creations that cost money) are retried only on 429 and on
  failures where the request provably never reached the server (the connection was refused);
* waits use exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff
  And Jitter"), and a server's ``Retry-After`` / ``retry-after-ms`` wins when it asks for more.

`decide` is the whole rule as one pure function of (policy, attempt, request, outcome): the send
pipeline (`imuzekit._pipeline`) asks it after every attempt, buffered or streamed alike, and
does what the `Decision` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import enum
import random
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import attrs

from imuzekit import errors
from imuzekit._checks import checked, integer, seconds

if TYPE_CHECKING:
    from imuzekit._http import Request

__all__ = [
    "RETRY_AFTER_CEILING",
    "Action",
    "Decision",
    "Outcome",
    "RetryPolicy",
    "backoff_delay",
    "deadline_left",
    "deadline_scope",
    "decide",
    "parse_retry_after",
]

RETRY_AFTER_CEILING = 7 * 24 * 3600.0
"""The longest wait `parse_retry_after` reports (a week): longer, infinite or overflowing
hints mean "too long" and read as this, so that every wait computed from a hint is finite."""

# The deadline of the work in progress (event-loop time), set by `deadline_scope`: a context
# variable rather than a parameter, because the waits that honour it (the rate-limit gate)
# sit several calls below the code that knows it (a job wait, a poll, a download).
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "imuzekit_deadline", default=None
)


def _statuses(value: Iterable[int]) -> frozenset[int]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise errors.ValidationError(
            "RetryPolicy.retry_statuses", f"must be a set of HTTP statuses, got {value!r:.40}"
        )
    statuses = frozenset(value)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise errors.ValidationError(
                "RetryPolicy.retry_statuses", f"must hold HTTP statuses, got {status!r:.40}"
            )
    return statuses


@attrs.frozen
class RetryPolicy:
    """How the transport retries failed requests.

    ``max_attempts`` counts the first try (4: three retries ride out a typical 5xx blip or
    deploy without making a caller wait minutes). ``backoff_base`` and ``backoff_max`` bound
    the jittered wait (0.5 s doubling up to 30 s). ``max_retry_after`` caps a server-requested
    wait: when a provider asks for longer (60 s by default), the typed error is raised at once
    with ``.retry_after`` so the caller decides, instead of a call silently sleeping for an hour
    (``float("inf")``: obey any wait). A wrong type or range raises
    `ValidationError` naming the field.
    """

    max_attempts: int = attrs.field(default=4, validator=checked(integer, minimum=1))
    backoff_base: float = attrs.field(default=0.5, validator=checked(seconds))
    backoff_max: float = attrs.field(default=30.0, validator=checked(seconds))
    max_retry_after: float = attrs.field(default=60.0, validator=checked(seconds, infinite=True))
    retry_statuses: frozenset[int] = attrs.field(
        default=frozenset({408, 429, 500, 502, 503, 504}), converter=_statuses
    )

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries (one attempt)."""
        return cls(max_attempts=1)

    def should_retry_status(self, status: int, *, idempotent: bool) -> bool:
        """Whether a response with ``status`` may be retried for a request of this kind."""
        if status not in self.retry_statuses:
            return False
        # A POST that got any answer other than 429 was received and may have been acted on.
        return idempotent or status == 429


def backoff_delay(
    attempt: int, policy: RetryPolicy, rand: Callable[[], float] = random.random
) -> float:
    """The full-jitter wait before retry ``attempt`` (1-based).

    Uniform in [0, min(backoff_max, backoff_base * 2^(attempt-1))].
    """
    ceiling = min(policy.backoff_max, policy.backoff_base * 2.0 ** (attempt - 1))
    return ceiling * rand()


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait in seconds a response asks for, or None.

    Reads ``retry-after-ms`` (milliseconds, as several AI providers send) first, then
    ``Retry-After`` as delta-seconds or as an HTTP-date (RFC 9110 §10.2.3). Negative,
    unparsable or ``nan`` values mean no hint; a date in the past means "now" (0). The result
    is always finite: ``inf``, an overflowing number (``1e400``) or anything longer than
    `RETRY_AFTER_CEILING` means "too long" and reads as `RETRY_AFTER_CEILING` (a week), so
    that no caller ever computes with an infinite wait.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0:  # False for nan too
            return min(value, RETRY_AFTER_CEILING)
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return min(seconds, RETRY_AFTER_CEILING) if seconds >= 0 else None  # nan: no hint
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - current), RETRY_AFTER_CEILING)


def deadline_left() -> float | None:
    """Seconds left before the deadline set by the innermost `deadline_scope`, or None.

    Negative once the deadline has passed. Must be called from a running event loop.
    """
    deadline = _DEADLINE.get()
    if deadline is None:
        return None
    return deadline - asyncio.get_running_loop().time()


@contextlib.contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Bound the SDK's waits in this context (and tasks started from it) by ``deadline``.

    ``deadline`` is in event-loop time (``loop.time()``); None leaves the enclosing one in
    place. An enclosing earlier deadline still applies. Nothing is cancelled: the waits that
    read it (the transport's rate-limit gate) raise instead of waiting past it.
    """
    current = _DEADLINE.get()
    if deadline is None or (current is not None and current <= deadline):
        yield
        return
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


class Action(enum.Enum):
    """What the send pipeline does after an attempt."""

    DONE = "done"
    """Hand the response to the caller."""
    RETRY = "retry"
    """Send again, after `Decision.delay` and any rate-limit pause."""
    RELOGIN = "relogin"
    """Renew the credentials (once per call), then send again; the attempt is not counted."""
    RAISE = "raise"
    """Give up: raise the outcome's typed error (its connection error, or its status's)."""


@attrs.frozen
class Outcome:
    """What one attempt came to: an HTTP status, or a connection failure (``status`` None).

    ``retry_after`` is the answer's parsed `Retry-After` (`parse_retry_after`); ``sent`` says
    whether a failed connection may have delivered the request (False only when it provably
    did not, e.g. the connection was refused); ``failure`` names the failure for the log.
    """

    status: int | None = None
    retry_after: float | None = None
    sent: bool = True
    failure: str = ""


@attrs.frozen
class Decision:
    """The pipeline's next step: an `Action`, the wait before it and the provider-wide pause.

    ``pause`` (seconds, already capped at ``max_retry_after``) is set after a 429 that asked
    for a wait: every request through the same rate-limit gate waits it out, whether or not
    this call retries. ``reason`` is what failed, for the INFO line of a retry.
    """

    action: Action
    delay: float = 0.0
    pause: float | None = None
    reason: str = ""


_DONE = Decision(Action.DONE)
_RELOGIN = Decision(Action.RELOGIN, reason="401")


def decide(
    policy: RetryPolicy,
    attempt: int,
    request: Request,
    outcome: Outcome,
    *,
    ok_statuses: Collection[int] = (),
    can_relogin: bool = False,
    deadline_left: float | None = None,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """The retry rule: what to do after ``attempt`` (1-based) of ``request`` came to ``outcome``.

    Pure: no clock, no I/O. ``ok_statuses`` are statuses the caller handles itself;
    ``can_relogin`` is True while the call has credentials it has not renewed yet;
    ``deadline_left`` is the caller's remaining time (`deadline_left()`), ``rand`` the jitter.

    * 1xx-3xx and ``ok_statuses``: done. A 401 that may be cured by a new login: re-login.
    * A connection failure is retried when the request provably never arrived, or when it is
      idempotent; anything else could submit a paid creation twice.
    * An error status is retried when `RetryPolicy.should_retry_status` allows it (POST: only
      429). A 429 with a wait pauses the whole gate (the pipeline waits there); any other
      retry waits the longer of the jittered backoff and the server's `Retry-After`.
    * Never: past ``max_attempts``, when `Retry-After` asks for more than
      ``max_retry_after``, or when the wait would end after the caller's deadline. Buffered
      and streamed calls are decided alike.
    """
    status = outcome.status
    if status is not None and (status < 400 or status in ok_statuses):
        return _DONE
    if status == 401 and can_relogin:
        return _RELOGIN
    if status is None:
        if attempt >= policy.max_attempts or (outcome.sent and not request.is_idempotent):
            return Decision(Action.RAISE, reason=outcome.failure)
        delay = backoff_delay(attempt, policy, rand)
        if deadline_left is not None and delay > deadline_left:
            return Decision(Action.RAISE, reason=outcome.failure)
        return Decision(Action.RETRY, delay=delay, reason=outcome.failure)
    retry_after = outcome.retry_after
    pause = None
    if status == 429 and retry_after is not None:
        # The others must not run into the same wall, but one answer must not freeze the
        # provider for a day either: the pause is capped at max_retry_after.
        pause = min(retry_after, policy.max_retry_after)
    reason = str(status)
    if (
        (retry_after is not None and retry_after > policy.max_retry_after)
        or attempt >= policy.max_attempts
        or not policy.should_retry_status(status, idempotent=request.is_idempotent)
    ):
        return Decision(Action.RAISE, pause=pause, reason=reason)
    if pause is not None:
        # The gate does the waiting (and refuses a wait past the caller's deadline).
        return Decision(Action.RETRY, pause=pause, reason=reason)
    delay = max(backoff_delay(attempt, policy, rand), retry_after or 0.0)
    if deadline_left is not None and delay > deadline_left:
        # The caller's deadline comes first: its error now, not a retry later.
        return Decision(Action.RAISE, reason=reason)
    return Decision(Action.RETRY, delay=delay, reason=reason)
