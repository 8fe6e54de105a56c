"""Helpers for the tests against the providers' public material in `tests/samples/vendor`.

`schema_problems` checks a value against the subset of JSON Schema that iMuze's own schemas use
(type, properties, required, items, enum, oneOf, minimum, minLength, pattern): the project has no
JSON Schema dependency, and this subset is small enough to check here, exactly.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

VENDOR = pathlib.Path(__file__).parent / "samples" / "vendor"

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def vendored(provider: str, name: str) -> Any:
    """The parsed JSON of `tests/samples/vendor/<provider>/<name>`."""
    return json.loads((VENDOR / provider / name).read_text())


def vendored_bytes(provider: str, name: str) -> bytes:
    """The raw bytes of `tests/samples/vendor/<provider>/<name>`."""
    return (VENDOR / provider / name).read_bytes()


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name not in ("boolean",):
        return False
    return isinstance(value, _TYPES[name])


def schema_problems(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every way `value` breaks `schema`, each naming its JSON path (empty: it conforms)."""
    problems: list[str] = []
    if "oneOf" in schema:
        matches = [s for s in schema["oneOf"] if not schema_problems(value, s, path)]
        if len(matches) != 1:
            problems.append(f"{path}: matches {len(matches)} of the oneOf alternatives")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} is not one of {schema['enum']}")
    kind = schema.get("type")
    if kind is not None and not _is_type(value, kind):
        return [*problems, f"{path}: expected {kind}, got {type(value).__name__}"]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{path}: {value} is below the minimum {schema['minimum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{path}: shorter than {schema['minLength']} characters")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            problems.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                problems.append(f"{path}: the required {name!r} is missing")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                problems += schema_problems(value[name], sub, f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += schema_problems(item, schema["items"], f"{path}[{index}]")
    return problems


def example_of(schema: dict[str, Any], *, nulls: bool) -> Any:
    """The smallest value `schema` allows: required properties only, and with `nulls` every
    nullable field null (otherwise its first non-null alternative)."""
    if "oneOf" in schema:
        options = schema["oneOf"]
        null = [s for s in options if s.get("type") == "null"]
        other = [s for s in options if s.get("type") != "null"]
        return example_of((null if nulls and null else other)[0], nulls=nulls)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: example_of(properties.get(name, {}), nulls=nulls)
            for name in schema.get("required", ())
        }
    if kind == "array":
        return [example_of(schema["items"], nulls=nulls)] if "items" in schema else []
    if kind == "string":
        return "Example" if "pattern" in schema else "example"
    if kind == "integer":
        return max(int(schema.get("minimum", 0)), 1)
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return None
