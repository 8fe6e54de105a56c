"""What the schedule hands the driver: entries (one registration of a job), polls, plans and
verdicts. Read them; only `imuzekit.jobs._schedule.Schedule` changes an entry."""

from __future__ import annotations

import enum
from collections.abc import Hashable
from typing import Any

import attrs

from imuzekit.jobs._phases import Event, Phase, step
from imuzekit.jobs.job import PollPolicy

__all__ = ["Entry", "Plan", "Poll", "Verdict"]


class Verdict(enum.Enum):
    """What an entry's reading (or failure) means for its waiters."""

    POLLING = "polling"
    """Still waiting; the entry is scheduled again."""
    SETTLED = "settled"
    """The job finished: wake every waiter."""
    STALLED = "stalled"
    """No state change for ``stall_after``: end the wait with JobTimeout."""
    GAVE_UP = "gave up"
    """The failure budget is spent: end the wait with the last error."""
    EXPIRED = "expired"
    """The deadline passed."""
    ENDED = "ended"
    """The entry had ended before (a late result): nothing to do."""


class Entry:
    """One registration of a job. Read its attributes; only the `Schedule` changes them."""

    __slots__ = (
        "added_at",
        "batchable",
        "changed_at",
        "deadline",
        "due",
        "failures",
        "group",
        "key",
        "last_read",
        "phase",
        "policy",
        "polls",
        "pushed",
        "scale",
        "started",
    )

    def __init__(self, key: Any, group: Hashable, batchable: bool, policy: PollPolicy) -> None:
        self.key = key
        """The driver's handle (the job)."""
        self.group = group
        self.batchable = batchable
        self.policy = policy
        self.phase = Phase.WAITING
        self.due = 0.0
        """When its own next poll is due (clock time); batches may come sooner."""
        self.polls = 0
        self.failures = 0
        self.deadline: float | None = None
        self.scale: float | None = None
        self.started: float | None = None
        self.added_at = 0.0
        self.last_read: float | None = None
        self.changed_at = 0.0
        self.pushed = False
        """Whether a push receiver awaits the job's callbacks: it follows the safety
        schedule (`imuzekit.jobs._safety.SAFETY`), on its own, outside any batch."""

    def __repr__(self) -> str:
        return f"<Entry {self.key!r} {self.phase.value} due {self.due:.3f}>"

    def _step(self, event: Event) -> bool:
        """Apply ``event``; return whether the entry was live before it."""
        live = self.phase not in (Phase.SETTLED, Phase.ABORTED)
        self.phase = step(self.phase, event)
        return live


@attrs.frozen
class Poll:
    """One poll to send: a batch for ``entries`` of a ``group``, or one entry's own request."""

    group: Hashable
    entries: tuple[Entry, ...]
    batch: bool


@attrs.frozen
class Plan:
    """What `Schedule.due` decided: polls to send now, entries past their deadline, and when
    the next thing is due (None: nothing waits)."""

    polls: tuple[Poll, ...]
    expired: tuple[Entry, ...]
    next_due: float | None
