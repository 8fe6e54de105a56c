"""`imuzekit/__init__.py` re-exports lazily: pure modules load without aiohttp (issue 16, point 6).

Each check runs in a fresh interpreter, so what this test process has imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import imuzekit

PROVIDERS = ("imuze", "joplin", "mureka", "musescore")

PURE_MODULES = (
    "imuzekit",
    "imuzekit.errors",
    "imuzekit.http",
    "imuzekit._convert",
    "imuzekit._retry",
    *(f"imuzekit.providers.{name}.{part}" for name in PROVIDERS for part in ("_api", "models")),
)


def _loaded_after(statement: str) -> list[str]:
    """The modules of interest that a fresh interpreter holds after running `statement`."""
    code = (
        f"import sys, json\n{statement}\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('aiohttp', 'click', 'rich') "
        "or m in ('imuzekit.client', 'imuzekit._transport', 'imuzekit.emulator'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(out.stdout)
    return loaded


@pytest.mark.parametrize("module", PURE_MODULES)
def test_a_pure_module_loads_without_aiohttp(module: str) -> None:
    assert _loaded_after(f"import {module}") == []


def test_a_public_name_loads_its_module_on_first_use() -> None:
    loaded = _loaded_after("import imuzekit\nassert imuzekit.RetryPolicy().max_attempts >= 1")
    assert loaded == []
    loaded = _loaded_after("import imuzekit\nimuzekit.Client")
    assert "aiohttp" in loaded and "imuzekit.client" in loaded


def test_every_public_name_resolves_to_its_home() -> None:
    from imuzekit import client, downloads, errors, jobs
    from imuzekit.providers import joplin

    assert imuzekit.Client is client.Client
    assert imuzekit.ImuzeConfig is client.ImuzeConfig
    assert imuzekit.Job is jobs.Job
    assert imuzekit.safe_filename is downloads.safe_filename
    assert imuzekit.Energy is joplin.Energy
    assert imuzekit.errors is errors
    assert set(imuzekit.__all__) <= set(dir(imuzekit))


def test_webhooks_is_exported_lazily_without_aiohttp() -> None:
    from imuzekit import webhooks

    assert "Webhooks" in imuzekit.__all__
    assert imuzekit.Webhooks is webhooks.Webhooks
    loaded = _loaded_after("import imuzekit\nimuzekit.Webhooks")
    assert loaded == []  # the receiver loads aiohttp only for app() and listen()


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="'Nope'"):
        imuzekit.Nope  # noqa: B018
