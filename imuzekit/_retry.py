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

import email.utils
import random
import time
from collections.abc import Callable, Iterable, Mapping

import attrs

__all__ = ["RetryPolicy", "backoff_delay", "parse_retry_after"]


def _statuses(value: Iterable[int]) -> frozenset[int]:
    return frozenset(value)


@attrs.frozen
class RetryPolicy:
    """How the transport retries failed requests.

    ``max_attempts`` counts the first try (4: three retries ride out a typical 5xx blip or
    deploy without making a caller wait minutes). ``backoff_base`` and ``backoff_max`` bound
    the jittered wait (0.5 s doubling up to 30 s). ``max_retry_after`` caps a server-requested
    wait: when a provider asks for longer (60 s by default), the typed error is raised at once
    with ``.retry_after`` so the caller decides, instead of a call silently sleeping for an hour.
    """

    max_attempts: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    backoff_base: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    backoff_max: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    max_retry_after: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
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
    ``Retry-After`` as delta-seconds or as an HTTP-date (RFC 9110 §10.2.3). Negative or
    unparsable values mean no hint; a date in the past means "now" (0).
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
