"""The documentation site: every public name is in the API reference, and the site builds."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

import imuzekit

ROOT = pathlib.Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference.md"


def test_every_public_name_is_in_the_reference() -> None:
    text = REFERENCE.read_text()
    missing = [
        name
        for name in imuzekit.__all__
        if not re.search(rf"\bimuzekit\.{re.escape(name)}\b", text)
    ]
    assert not missing, f"add these to docs/reference.md: {missing}"


def test_the_reference_documents_the_packages() -> None:
    text = REFERENCE.read_text()
    for module in (
        "imuzekit.errors",
        "imuzekit.emulator",
        "imuzekit.pytest_plugin",
        "imuzekit.providers.imuze",
        "imuzekit.providers.joplin",
        "imuzekit.providers.mureka",
        "imuzekit.providers.musescore",
    ):
        assert f"::: {module}\n" in text, module


def test_every_nav_page_exists() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    pages = re.findall(r":\s+([\w/-]+\.md)\s*$", config, re.MULTILINE)
    assert "reference.md" in pages
    assert [p for p in pages if not (ROOT / "docs" / p).is_file()] == []


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="needs the docs extra")
def test_the_site_builds_strictly_with_every_name(tmp_path: pathlib.Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    built = (site / "reference" / "index.html").read_text()
    missing = [name for name in imuzekit.__all__ if f'id="imuzekit.{name}"' not in built]
    # __version__ is a plain attribute described in prose, not an object with an anchor.
    assert missing in ([], ["__version__"]), missing
