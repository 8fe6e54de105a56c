"""The layer rules are enforced, not described (issue 16, point 6): the import-linter contracts
allow no indirect imports, the package's layers contract covers every module, and the picture in
docs/architecture.md is the contract's list of layers. (`lint-imports` itself runs in CI.)"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _package_layers() -> list[dict[str, Any]]:
    return [
        c for c in _contracts() if c["type"] == "layers" and c.get("containers") == ["imuzekit"]
    ]


def _exists(name: str) -> bool:
    return importlib.util.find_spec(f"imuzekit.{name}") is not None


def _tails(layer: str) -> list[str]:
    return [tail.strip().strip("()") for tail in re.split(r"[|:]", layer)]


def _picture() -> list[set[str]]:
    """The first column of each row of docs/architecture.md's layers picture, as module names."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Layers\n", 1)[1]
    block = section.split("```\n", 2)[1]
    rows = []
    for line in block.splitlines():
        if not line.strip() or line[0].isspace():
            continue  # a continuation of the row above
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0].split()
        rows.append({name.removesuffix("/").removesuffix(".py") for name in names})
    return rows


def test_no_contract_allows_indirect_imports() -> None:
    contracts = _contracts()
    assert contracts
    assert [c["name"] for c in contracts if c.get("allow_indirect_imports")] == []


def test_one_exhaustive_layers_contract_covers_the_package() -> None:
    [contract] = _package_layers()
    assert contract["exhaustive"] is True
    layers: list[str] = contract["layers"]
    assert layers[0] == "__main__"
    assert layers[-3:] == ["_http", "_checks", "errors"]
    names = [name for layer in layers for name in _tails(layer)]
    assert len(names) == len(set(names))
    # Every declared layer that is not optional exists (a typo would make a layer of nothing).
    required = [t.strip() for layer in layers for t in re.split(r"[|:]", layer) if "(" not in t]
    assert [name for name in required if not _exists(name)] == []


def test_the_architecture_picture_is_the_layers_contract() -> None:
    [contract] = _package_layers()
    expected = [{name for name in _tails(layer) if _exists(name)} for layer in contract["layers"]]
    assert _picture() == [row for row in expected if row]


def test_the_providers_are_independent_and_above_what_they_share() -> None:
    providers = [
        f"imuzekit.providers.{name}" for name in ("imuze", "joplin", "mureka", "musescore")
    ]
    independence = [c for c in _contracts() if c["type"] == "independence"]
    assert [sorted(c["modules"]) for c in independence] == [providers]
    [inner] = [c for c in _contracts() if c.get("containers") == ["imuzekit.providers"]]
    # `_common` below the provider packages: it can no longer reach back into their `_api`.
    assert inner["layers"][:2] == ["imuze | joplin | mureka | musescore", "_common"]


def test_inside_jobs_the_poller_is_above_the_job() -> None:
    [inner] = [c for c in _contracts() if c.get("containers") == ["imuzekit.jobs"]]
    layers: list[str] = inner["layers"]
    assert layers.index("_poller") < layers.index("job") < layers.index("_state")
