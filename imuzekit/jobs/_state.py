"""Job states and the table of allowed transitions (logic as data, after h11)."""

from __future__ import annotations

import enum

__all__ = ["TERMINAL", "JobState", "next_state"]


class JobState(enum.StrEnum):
    """Where a generation is. Providers' own values are kept in ``Job.raw_status``.

    QUEUED: accepted, not started. PROCESSING: rendering. READY: the result (and its audio) can
    be fetched. FAILED: the provider gave up. UNKNOWN: the provider reported a value imuzekit
    does not know; polling goes on, because an unknown value is not a reason to give up.
    """

    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    UNKNOWN = "unknown"


TERMINAL = frozenset({JobState.READY, JobState.FAILED})

# Which reported states a job may move to from each state. Terminal states are sticky: an
# eventually-consistent list endpoint that briefly shows an older status must not un-finish a job.
_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset(JobState) - {JobState.QUEUED},
    JobState.PROCESSING: frozenset(JobState) - {JobState.PROCESSING, JobState.QUEUED},
    JobState.UNKNOWN: frozenset(JobState) - {JobState.UNKNOWN},
    JobState.READY: frozenset(),
    JobState.FAILED: frozenset(),
}


def next_state(current: JobState, reported: JobState) -> JobState:
    """The state a job at ``current`` takes when the provider reports ``reported``."""
    return reported if reported in _TRANSITIONS[current] else current
