"""Long-running generations as `Job` handles, and the pollers that drive them."""

from imuzekit.jobs._state import TERMINAL, JobState
from imuzekit.jobs.job import Job, JobDriver, JobSnapshot, JobStatus, PollPolicy, parse_token

__all__ = [
    "TERMINAL",
    "Job",
    "JobDriver",
    "JobSnapshot",
    "JobState",
    "JobStatus",
    "PollPolicy",
    "parse_token",
]
