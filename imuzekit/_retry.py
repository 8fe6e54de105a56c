"""When and how long to wait before sending a request again.

Pure functions and one frozen policy value; the transport applies them. The rules follow what
providers document and what keeps paid generations from being submitted twice:

* idempotent requests (GET, HEAD, PUT, DELETE) are retried on connection failures and on the
  statuses of :attr:`RetryPolicy.retry_statuses`;
* non-idempotent requests (POST: creations that cost money) are retried only on 429 and on
  failures where the request provably never reached the server (the connection was refused);
* waits use exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff
  And Jitter"), and a server's ``Retry-After`` / ``retry-after-ms`` wins when it asks for more.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

import attrs

from imuzekit import errors
from imuzekit._checks import checked, integer, seconds

__all__ = [
    "RETRY_AFTER_CEILING",
    "RetryPolicy",
    "backoff_delay",
    "deadline_left",
    "deadline_scope",
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
    :class:`~imuzekit.errors.ValidationError` naming the field.
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
