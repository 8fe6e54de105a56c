"""Run `mypy --strict` on users' code (docs blocks, examples, typed scripts) in one call."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Sequence

ROOT = pathlib.Path(__file__).resolve().parents[2]


def mypy_strict(paths: Sequence[pathlib.Path], *, cache: pathlib.Path) -> str:
    """mypy's report on `paths` (one process; "" when they pass), with its cache in `cache`.

    It runs outside the checkout's configuration (`--config-file=`), as a user's project
    would: `imuzekit` comes from the installed package, which ships `py.typed`.
    """
    command = [sys.executable, "-m", "mypy", "--strict", "--config-file=", "--no-error-summary"]
    command += ["--cache-dir", str(cache), "--python-version", "3.11"]
    command += [str(path) for path in paths]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    report = done.stdout + done.stderr
    if done.returncode != 0 and not report:
        report = f"mypy exited with {done.returncode}"
    return report
