"""Loading the pytest plugin is cheap until a fixture is used (issue 16, point 6).

pytest loads `imuzekit.pytest_plugin` (the `pytest11` entry point) in every test run of a project
that has imuzekit installed, so the plugin must not import the emulator, the client or aiohttp
until one of its fixtures runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

BUDGET_SECONDS = 0.050

# What pytest has loaded before it loads plugins (the baseline), then the plugin, timed.
_MEASURE = """
import json, sys, time
import pytest, pytest_asyncio
before = set(sys.modules)
start = time.perf_counter()
import imuzekit.pytest_plugin
elapsed = time.perf_counter() - start
print(json.dumps({"elapsed": elapsed, "loaded": sorted(set(sys.modules) - before)}))
"""


def _measure() -> tuple[float, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    return float(result["elapsed"]), list(result["loaded"])


def test_loading_the_plugin_imports_neither_aiohttp_nor_the_emulator() -> None:
    _, loaded = _measure()
    assert [m for m in loaded if m.split(".")[0] == "aiohttp"] == []
    assert sorted(m for m in loaded if m.startswith("imuzekit")) == [
        "imuzekit",
        "imuzekit.pytest_plugin",
    ]


def test_loading_the_plugin_takes_under_50_ms() -> None:
    # Best of three fresh interpreters: a busy machine can only make one run slower.
    best = min(_measure()[0] for _ in range(3))
    assert best < BUDGET_SECONDS, f"imuzekit.pytest_plugin took {best * 1000:.1f} ms to import"
