"""Batch manifests build joplin movements like the SDK does (seed 000): with an energy, a type,
or neither; never both."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imuzekit.batch._manifest import ManifestError, movements, parse_line
from imuzekit.providers.joplin import Energy, Movement, Structure


def _line(structure: Any) -> str:
    return json.dumps(
        {
            "provider": "joplin",
            "genre": "electronic",
            "subgenre": "house",
            "duration_ms": 4000,
            "structure": structure,
        }
    )


def test_a_movement_with_neither_energy_nor_type_is_a_valid_line() -> None:
    structure = [
        {"start": 0, "duration": 0.5, "energy": "dynamic"},
        {"start": 0.5, "duration": 0.5},
    ]
    line = parse_line(3, _line(structure))
    assert movements(line.params["structure"]) == Structure(
        [Movement(0, 0.5, energy=Energy.DYNAMIC), Movement(0.5, 0.5)]
    )


def test_a_movement_with_both_is_refused_naming_it() -> None:
    structure = [{"start": 0, "duration": 1, "energy": "calm", "movement": "intro"}]
    with pytest.raises(ManifestError) as caught:
        parse_line(3, _line(structure))
    assert (caught.value.line, caught.value.field) == (3, "structure[0]")
    assert "not both" in caught.value.reason


def test_the_manifest_schema_allows_neither_and_refuses_both() -> None:
    from imuzekit.batch._manifest import manifest_schema

    item = manifest_schema()["$defs"]["movements"]["items"]
    assert item["required"] == ["start", "duration"]
    assert item["not"] == {"required": ["energy", "movement"]}
    assert "oneOf" not in item
