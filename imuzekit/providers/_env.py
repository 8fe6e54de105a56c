"""The `IMUZEKIT_*` environment, read the same way by `Client.from_env()` and the CLI.

Pure: it reads the mapping it is given, never `os.environ` itself. It knows

- every provider's `IMUZEKIT_<PROVIDER>_<FIELD>` variables (from the provider registry: a
  provider plugged in adds its own), for the fields the environment can set;
- the poll policy's `IMUZEKIT_POLL_INITIAL`, `IMUZEKIT_POLL_MAX_INTERVAL` and
  `IMUZEKIT_POLL_TIMEOUT` (seconds; the CLI's `[poll]` table too);
- `IMUZEKIT_LOG`, and the variables of imuzekit's own test suite and CI
  (`IMUZEKIT_TEST_*`, `IMUZEKIT_CI_*` and a few named ones), which are not settings.

Any other `IMUZEKIT_*` variable is most likely a typo that would otherwise leave a provider
silently unconfigured: `unknown_variables` names it with the closest known variable.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from imuzekit import errors
from imuzekit.jobs import PollPolicy
from imuzekit.providers._registry import registry
from imuzekit.providers._spec import env_var, env_variables

__all__ = [
    "POLL_FIELDS",
    "PREFIX",
    "TOOLING_PREFIXES",
    "TOOLING_VARIABLES",
    "known_variables",
    "poll_from_env",
    "unknown_variables",
]

PREFIX = "IMUZEKIT_"
"""What every imuzekit variable starts with."""

POLL_FIELDS: dict[str, type] = {"initial": float, "max_interval": float, "timeout": float}
"""The `PollPolicy` fields the environment (`IMUZEKIT_POLL_<FIELD>`, seconds) and the CLI's
`[poll]` table set."""

TOOLING_PREFIXES = ("IMUZEKIT_TEST_", "IMUZEKIT_CI_")
"""Prefixes kept for imuzekit's own test suite and CI (`IMUZEKIT_TEST_POSTGRES_URL`): never
settings, never warned about."""

TOOLING_VARIABLES = frozenset(
    {
        "IMUZEKIT_FUZZ_EXAMPLES",
        "IMUZEKIT_SEEDS_DIR",
        "IMUZEKIT_SOAK_SECONDS",
        "IMUZEKIT_WRITE_RELIABILITY_DOC",
    }
)
"""Other variables of imuzekit's test suite: not settings, never warned about."""

_LOG = "IMUZEKIT_LOG"


def known_variables() -> frozenset[str]:
    """Every `IMUZEKIT_*` setting: the registered providers' fields, the poll policy's,
    and `IMUZEKIT_LOG`."""
    names = {_LOG, *(env_var("poll", field) for field in POLL_FIELDS)}
    for spec in registry():
        names.update(env_variables(spec.name, spec.config))
    return frozenset(names)


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """One sentence per `IMUZEKIT_*` variable in `env` that imuzekit does not read, naming
    the closest known one (sorted by variable)."""
    known = known_variables()
    tails = sorted(name[len(PREFIX) :] for name in known)
    notes: list[str] = []
    for name in sorted(env):
        if not name.startswith(PREFIX) or name in known or name in TOOLING_VARIABLES:
            continue
        if name.startswith(TOOLING_PREFIXES):
            continue
        # Compared without the prefix they all share, which would make anything look close.
        close = difflib.get_close_matches(name[len(PREFIX) :], tails, n=1, cutoff=0.6)
        hint = f"; did you mean {PREFIX}{close[0]}?" if close else ""
        notes.append(f"{name} is not a variable imuzekit reads{hint}")
    return notes


def poll_from_env(env: Mapping[str, str]) -> PollPolicy | None:
    """The poll policy the `IMUZEKIT_POLL_*` variables in `env` set (other fields keep
    `PollPolicy`'s defaults), or None when none is set (an empty variable counts as unset).

    A value that is not a number, or that `PollPolicy` refuses, is a `ConfigurationError`
    naming the variable.
    """
    given: dict[str, Any] = {}
    for field in POLL_FIELDS:
        variable = env_var("poll", field)
        raw = env.get(variable)
        if not raw:
            continue
        try:
            given[field] = float(raw)
        except ValueError:
            raise errors.ConfigurationError(
                f"{variable} must be a number of seconds, got {raw!r}"
            ) from None
    if not given:
        return None
    try:
        return PollPolicy(**given)
    except errors.ValidationError as exc:
        variable = env_var("poll", exc.field.rpartition(".")[2])  # "PollPolicy.timeout"
        raise errors.ConfigurationError(f"{variable}: {exc.reason}") from None
