"""The ``imuzekit`` command line (needs the ``cli`` extra: click and rich).

It uses only the public API: the Client, the jobs, the downloader and the emulator. Expected
failures print one line on stderr (what failed, why, what to do) and exit with a documented
code: 0 success, 1 a failure (an API error, a failed job, batch lines not done), 2 a usage or
configuration error, 130 interrupted. ``--debug`` adds the traceback and the request log.

This module imports neither click nor rich, so that `main` (the console script's target) can
say in one line that the extra is missing instead of failing with a traceback; the click group
itself, `cli`, is loaded on first use.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imuzekit.cli._root import cli

__all__ = ["cli", "main"]

# The packages of the `cli` extra (pyproject.toml), as ModuleNotFoundError names them.
_EXTRA_PACKAGES = frozenset({"click", "rich"})
_EXIT_USAGE = 2  # `_common.EXIT_USAGE`, which cannot be imported without click


def __getattr__(name: str) -> Any:
    if name == "cli":
        from imuzekit.cli._root import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``imuzekit`` console script (and of ``python -m imuzekit``)."""
    try:
        from imuzekit.cli._root import run_cli
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _EXTRA_PACKAGES:
            raise  # a real bug, not a missing extra: keep the traceback
        sys.stderr.write(
            f"imuzekit: the command line needs the cli extra (no module named {missing!r}): "
            "pip install 'imuzekit[cli]'\n"
        )
        sys.exit(_EXIT_USAGE)
    run_cli(argv)
