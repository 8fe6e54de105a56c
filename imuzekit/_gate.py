"""The shared rate-limit pause of one provider (or account) after a 429.

A pause is data (when it ends) plus one rule for waiting on it: never longer than the waiting
request's `RetryPolicy.max_retry_after` or its caller's deadline (`imuzekit._retry.deadline_scope`);
past those a `RateLimitError` with the remaining pause is raised at once instead.
"""

from __future__ import annotations

import asyncio
import time

from imuzekit import errors
from imuzekit._http import Request, redact_url
from imuzekit._retry import RETRY_AFTER_CEILING, RetryPolicy, deadline_left

__all__ = ["RateGate"]


class RateGate:
    """A shared pause: after a 429 with Retry-After, no request with this key leaves until then.

    A pause is never longer than the pausing request's ``RetryPolicy.max_retry_after``, and
    nobody waits for it longer than they may: a request whose own ``max_retry_after``, or
    whose caller's deadline (`imuzekit._retry.deadline_scope`), comes before the pause ends
    gets `RateLimitError` with the remaining pause, at once.
    """

    __slots__ = ("until",)

    def __init__(self) -> None:
        self.until = 0.0

    def pause(self, seconds: float, limit: float) -> None:
        """Pause for ``seconds``, but at most ``limit`` (finite: ``parse_retry_after``'s)."""
        seconds = min(seconds, limit, RETRY_AFTER_CEILING)
        self.until = max(self.until, time.monotonic() + seconds)

    async def wait(self, request: Request, policy: RetryPolicy) -> None:
        """Wait out the pause, or raise RateLimitError when it outlasts what the caller allows."""
        # Loop: another 429 may extend the pause while we sleep. A deadline, not an event, so
        # sleeping is the right primitive here.
        while (remaining := self.until - time.monotonic()) > 0:
            allowed = policy.max_retry_after
            left = deadline_left()
            if left is not None and left < allowed:
                allowed = left
            if remaining > allowed:
                raise errors.RateLimitError(
                    f"{request.provider or 'the provider'} is rate-limited for another "
                    f"{remaining:.3g} s (after a 429), longer than this call may wait",
                    retry_after=remaining,
                    status=429,
                    provider=request.provider,
                    method=request.method,
                    url=redact_url(request.full_url),
                )
            await asyncio.sleep(remaining)
