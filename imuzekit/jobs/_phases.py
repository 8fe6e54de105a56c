"""The schedule's phases and their transition tables (logic as data, after h11).

`TRANSITIONS` says which phase an entry (one registration of a job being waited on) takes on
each event; `BATCH_TRANSITIONS` does the same for a group's batching. A pair a table does not
list raises `IllegalTransition`: the driver misused the schedule.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from imuzekit import errors

__all__ = [
    "BATCH_TRANSITIONS",
    "TRANSITIONS",
    "BatchEvent",
    "Batching",
    "Event",
    "IllegalTransition",
    "Phase",
    "batch_step",
    "step",
]


class Phase(enum.Enum):
    """Where one registration of a job is in the schedule."""

    WAITING = "waiting"
    """Registered, no poll in flight; due at its time (or with its group's next tick)."""
    DIRECT = "direct"
    """Missing from the last list (or the list is unusable): asked about on its own next."""
    IN_FLIGHT = "in flight"
    """A poll covering it (its own, or its group's batch) was sent and has not come back."""
    SETTLED = "settled"
    """The job reached READY or FAILED; late results change nothing."""
    ABORTED = "aborted"
    """No longer polled: every waiter left, a permanent error, a stall, the failure budget
    or the deadline; late results change nothing."""


class Event(enum.Enum):
    """What happens to an entry."""

    SEND = "send"
    READ = "read"
    """A reading that did not finish the job."""
    FINISH = "finish"
    """A reading that finished it (from a poll, a `refresh()`, or a confirmed push)."""
    MISS = "miss"
    """A list did not show the job, or could not be read at all."""
    FAIL = "fail"
    """A transient failure (5xx, 429, connection): retried later."""
    ABORT = "abort"
    LEAVE = "leave"
    """The last waiter left (cancelled or timed out)."""


_LATE = (Event.READ, Event.FINISH, Event.MISS, Event.FAIL, Event.ABORT, Event.LEAVE)

TRANSITIONS: Mapping[tuple[Phase, Event], Phase] = {
    (Phase.WAITING, Event.SEND): Phase.IN_FLIGHT,
    (Phase.DIRECT, Event.SEND): Phase.IN_FLIGHT,
    (Phase.IN_FLIGHT, Event.READ): Phase.WAITING,
    (Phase.IN_FLIGHT, Event.FINISH): Phase.SETTLED,
    (Phase.IN_FLIGHT, Event.MISS): Phase.DIRECT,
    (Phase.IN_FLIGHT, Event.FAIL): Phase.WAITING,
    (Phase.IN_FLIGHT, Event.ABORT): Phase.ABORTED,
    (Phase.IN_FLIGHT, Event.LEAVE): Phase.ABORTED,
    (Phase.WAITING, Event.FINISH): Phase.SETTLED,
    (Phase.WAITING, Event.ABORT): Phase.ABORTED,
    (Phase.WAITING, Event.LEAVE): Phase.ABORTED,
    (Phase.DIRECT, Event.FINISH): Phase.SETTLED,
    (Phase.DIRECT, Event.ABORT): Phase.ABORTED,
    (Phase.DIRECT, Event.LEAVE): Phase.ABORTED,
    # A poll that comes back after the entry ended (its waiters left, a refresh() finished
    # the job) changes nothing. Sending for an ended entry is a bug, so SEND is not listed.
    **{(Phase.SETTLED, event): Phase.SETTLED for event in _LATE},
    **{(Phase.ABORTED, event): Phase.ABORTED for event in _LATE},
}
"""Every legal (phase, event) and the phase it leads to."""


class Batching(enum.Enum):
    """Whether a group of jobs is refreshed by list requests."""

    ON = "on"
    OFF = "off"


class BatchEvent(enum.Enum):
    """What happens to a group's batching."""

    SEND = "send"
    REFUSE = "refuse"
    """A batch failed for good (an unreadable or oversized list)."""


BATCH_TRANSITIONS: Mapping[tuple[Batching, BatchEvent], Batching] = {
    (Batching.ON, BatchEvent.SEND): Batching.ON,
    (Batching.ON, BatchEvent.REFUSE): Batching.OFF,
}
"""Every legal (batching, event): once OFF, a group never sends a batch again."""


class IllegalTransition(errors.ImuzekitError, RuntimeError):
    """The schedule was driven with an event its tables do not allow (a bug in the driver)."""


def step(phase: Phase, event: Event) -> Phase:
    """The phase an entry in ``phase`` takes on ``event``; `IllegalTransition` if none."""
    try:
        return TRANSITIONS[phase, event]
    except KeyError:
        raise IllegalTransition(f"event {event.value} in phase {phase.value}") from None


def batch_step(phase: Batching, event: BatchEvent) -> Batching:
    """The batching phase after ``event``; `IllegalTransition` if the table has no row."""
    try:
        return BATCH_TRANSITIONS[phase, event]
    except KeyError:
        raise IllegalTransition(f"batch event {event.value} with batching {phase.value}") from None
