"""imuzekit: an async SDK for music-generation and music-score web APIs.

One `Client` drives iMuze API v4, the iMuze music engine (joplin), Mureka through useapi.net and
MuseScore.com; generations are `Job` handles polled until ready; files stream to disk with
verification. `imuzekit.emulator` serves all four APIs locally.

The package re-exports its public names lazily (PEP 562): `import imuzekit` loads nothing else,
and a name such as `imuzekit.Client` imports its module on first use. So importing a pure module
(`imuzekit.errors`, `imuzekit.http`, a provider's `_api` or `models`) or loading the pytest plugin
does not load aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imuzekit import errors
    from imuzekit._http import Timeouts
    from imuzekit._media import DownloadSpec, MediaKind
    from imuzekit._retry import RetryPolicy
    from imuzekit.client import Client, ImuzeConfig, JoplinConfig, MurekaConfig, MuseScoreConfig
    from imuzekit.downloads import DownloadResult, safe_filename
    from imuzekit.jobs import Job, JobSnapshot, JobState, PollPolicy
    from imuzekit.providers.joplin import Energy, Movement, Structure
    from imuzekit.webhooks import Webhooks

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
    "Webhooks",
    "__version__",
    "errors",
    "safe_filename",
]

# Where each lazily exported name lives (a module path; `errors` is a module itself).
_SOURCES = {
    "Client": "imuzekit.client",
    "DownloadResult": "imuzekit.downloads",
    "DownloadSpec": "imuzekit._media",
    "Energy": "imuzekit.providers.joplin",
    "ImuzeConfig": "imuzekit.client",
    "Job": "imuzekit.jobs",
    "JobSnapshot": "imuzekit.jobs",
    "JobState": "imuzekit.jobs",
    "JoplinConfig": "imuzekit.client",
    "MediaKind": "imuzekit._media",
    "Movement": "imuzekit.providers.joplin",
    "MurekaConfig": "imuzekit.client",
    "MuseScoreConfig": "imuzekit.client",
    "PollPolicy": "imuzekit.jobs",
    "RetryPolicy": "imuzekit._retry",
    "Structure": "imuzekit.providers.joplin",
    "Timeouts": "imuzekit._http",
    "Webhooks": "imuzekit.webhooks",
    "errors": "imuzekit.errors",
    "safe_filename": "imuzekit.downloads",
}


def __getattr__(name: str) -> Any:
    """Import the module of a public name on first use (PEP 562) and keep the value."""
    try:
        source = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module 'imuzekit' has no attribute {name!r}") from None
    module = importlib.import_module(source)
    value = module if source == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names plus the lazily exported ones (so `dir()` and completion see them)."""
    return sorted(set(globals()) | set(__all__))
