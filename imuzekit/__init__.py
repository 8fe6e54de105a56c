"""imuzekit: an async SDK for music-generation and music-score web APIs.

One :class:`Client` drives iMuze API v4, the iMuze music engine (joplin), Mureka through
useapi.net and MuseScore.com; generations are :class:`Job` handles polled until ready; files
stream to disk with verification. ``imuzekit.emulator`` serves all four APIs locally.
"""

from imuzekit import errors
from imuzekit._http import Timeouts
from imuzekit._media import DownloadSpec, MediaKind
from imuzekit._retry import RetryPolicy
from imuzekit.client import Client, ImuzeConfig, JoplinConfig, MurekaConfig, MuseScoreConfig
from imuzekit.downloads import DownloadResult, safe_filename
from imuzekit.jobs import Job, JobSnapshot, JobState, PollPolicy
from imuzekit.providers.joplin import Energy, Movement, Structure

__version__ = "0.1.0.dev0"

__all__ = [
    "Client",
    "DownloadResult",
    "DownloadSpec",
    "Energy",
    "ImuzeConfig",
    "Job",
    "JobSnapshot",
    "JobState",
    "JoplinConfig",
    "MediaKind",
    "Movement",
    "MurekaConfig",
    "MuseScoreConfig",
    "PollPolicy",
    "RetryPolicy",
    "Structure",
    "Timeouts",
    "__version__",
    "errors",
    "safe_filename",
]
