"""The API reference's source: every public name and package is in `docs/reference.md`.

The built site is checked in `test_site.py`.
"""

from __future__ import annotations

import pathlib
import re

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
        "imuzekit.batch",
        "imuzekit.providers",
        "imuzekit.jobs",
        "imuzekit.auth",
        "imuzekit.downloads",
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
