"""Generation slots per Mureka account: pick the least busy account, wait when all are full.

Mureka runs at most ``limit`` generations per account at once and refuses more with 429. The
pool counts the jobs this Client started on each account (released when a job reaches a
terminal state), plus reservations for creations in flight, and hands out accounts with a free
slot. When every account is full it waits instead of failing; while it waits it re-reads the
service's own count (``GET /jobs``, through ``refresh``) every ``resync_every`` seconds, so jobs
that finished without anyone polling them (or were started elsewhere) are accounted for. A 429
on one account pauses only that account.

No I/O here: ``refresh`` is supplied by the namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from imuzekit import errors

__all__ = ["AccountSlots"]

Refresh = Callable[[], Awaitable[Mapping[str, set[str]]]]


class AccountSlots:
    """Free generation slots per account (``""`` stands for "the only, unnamed account")."""

    def __init__(self, accounts: Sequence[str], limit: int, *, resync_every: float = 2.0) -> None:
        if limit < 1:
            raise errors.ConfigurationError("max_parallel_per_account must be >= 1")
        self.accounts: tuple[str, ...] = tuple(accounts) or ("",)
        self.limit = limit
        self.resync_every = resync_every
        self._running: dict[str, set[str]] = {a: set() for a in self.accounts}
        self._reserved: dict[str, int] = dict.fromkeys(self.accounts, 0)
        self._paused_until: dict[str, float] = dict.fromkeys(self.accounts, 0.0)
        self._changed = asyncio.Event()

    def load(self, account: str) -> int:
        """Slots taken on ``account`` (running jobs plus creations in flight)."""
        return len(self._running.get(account, ())) + self._reserved.get(account, 0)

    def _free(self, account: str, now: float) -> bool:
        return self.load(account) < self.limit and self._paused_until.get(account, 0.0) <= now

    async def acquire(self, account: str | None, refresh: Refresh, *, timeout: float) -> str:
        """Reserve a slot on ``account`` (or on the least busy one) and return the account.

        Waits while every candidate is full or paused; ``errors.RateLimitError`` after
        ``timeout`` seconds without a free slot.
        """
        if account is not None and account not in self._running:
            self._add(account)
        candidates = (account,) if account is not None else self.accounts
        deadline = time.monotonic() + timeout
        last_resync = time.monotonic()
        while True:
            now = time.monotonic()
            free = [a for a in candidates if self._free(a, now)]
            if free:
                chosen = min(free, key=lambda a: (self.load(a), candidates.index(a)))
                self._reserved[chosen] += 1
                return chosen
            if now >= deadline:
                raise errors.RateLimitError(
                    f"no Mureka account had a free generation slot within {timeout:g}s "
                    f"(limit {self.limit} per account)",
                    status=429,
                    provider="mureka",
                )
            if now - last_resync >= self.resync_every:
                self.resync(await refresh())
                last_resync = time.monotonic()
                continue
            wake_at = min(
                [deadline, last_resync + self.resync_every]
                + [self._paused_until[a] for a in candidates if self._paused_until[a] > now]
            )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wake_at - now)):
                    await self._changed.wait()

    def commit(self, account: str, jobid: str) -> None:
        """The creation on ``account`` was accepted as ``jobid``: the slot now runs it."""
        self._reserved[account] = max(0, self._reserved[account] - 1)
        self._running[account].add(jobid)

    def cancel(self, account: str) -> None:
        """The creation on ``account`` did not start a job: give the slot back."""
        self._reserved[account] = max(0, self._reserved[account] - 1)
        self._changed.set()

    def finished(self, jobid: str) -> None:
        """Job ``jobid`` reached a terminal state: free its slot."""
        for running in self._running.values():
            running.discard(jobid)
        self._changed.set()

    def backoff(self, account: str, seconds: float) -> None:
        """Pause ``account`` after a 429 (the other accounts go on)."""
        self._paused_until[account] = max(
            self._paused_until.get(account, 0.0), time.monotonic() + seconds
        )

    def resync(self, running: Mapping[str, set[str]]) -> None:
        """Take the service's view of the running jobs (``GET /jobs``) as the truth."""
        for account, jobids in running.items():
            if account not in self._running:
                continue
            self._running[account] = set(jobids)
        if "" in self._running and len(self.accounts) == 1 and "" not in running:
            self._running[""] = set().union(*running.values()) if running else set()
        self._changed.set()

    def _add(self, account: str) -> None:
        self.accounts = (*self.accounts, account)
        self._running[account] = set()
        self._reserved[account] = 0
        self._paused_until[account] = 0.0
