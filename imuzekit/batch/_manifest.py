"""The batch manifest: one JSON object per line, each one generation request for any provider.

The accepted lines are the providers' create calls as their specs declare them (the provider
registry): each call that makes files to download is a `Variant`, with its fields and their
limits (`variants()`, also `VARIANTS`). The validator and the JSON Schema published in
``docs/cli.md`` (`manifest_schema`) are both derived from them, and a test checks that the page
shows exactly this schema. A provider with several create calls takes a ``kind`` (its first
call is the default); nothing here names a provider.
"""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from imuzekit import errors
from imuzekit._convert import loads_json
from imuzekit.providers import registry
from imuzekit.providers._spec import CreateCall, FieldSpec
from imuzekit.providers.joplin import Energy, Movement, Structure

__all__ = [
    "MANIFEST_SCHEMA_ID",
    "REJECTED",
    "ManifestError",
    "ManifestLine",
    "Variant",
    "check_unique",
    "file_name",
    "file_stems",
    "load_manifest",
    "manifest_schema",
    "movements",
    "parse_line",
    "rejected_line",
    "variants",
]

MANIFEST_SCHEMA_ID = "https://imuzekit.invalid/schemas/batch-manifest-line.json"
MAX_KEY_LENGTH = 200


@attrs.frozen
class Variant:
    """A provider's create call as a manifest line: its fields, and where the marker goes.

    ``marker_field``: the title field that carries the reconciliation marker, or None when the
    provider cannot be searched for the line after a crash (the line becomes ``uncertain``).
    ``has_kind``: the provider has several create calls, so a line may name one (``kind``);
    ``kind_required``: this one is not the provider's default. ``files``: the files one
    create makes (``<key>-1``, ``<key>-2``, ... when more than one).
    """

    provider: str
    kind: str
    description: str
    fields: tuple[FieldSpec, ...]
    marker_field: str | None
    call: CreateCall
    has_kind: bool = False
    kind_required: bool = False
    files: int = 1


def variants() -> dict[tuple[str, str], Variant]:
    """Every (provider, kind) a manifest line can be, from the provider registry: each
    provider's create calls that make files to download, its first one the default."""
    found: dict[tuple[str, str], Variant] = {}
    for spec in registry():
        calls = [call for call in spec.creates if call.outputs is not None]
        for index, call in enumerate(calls):
            searchable = call.searchable and spec.find_created is not None
            found[(spec.name, call.kind)] = Variant(
                spec.name,
                call.kind,
                call.description,
                call.fields,
                marker_field=call.marker_title if searchable else None,
                call=call,
                has_kind=len(calls) > 1,
                kind_required=index > 0,
                files=call.files,
            )
    return found


def _providers(table: Mapping[tuple[str, str], Variant]) -> list[str]:
    return list(dict.fromkeys(provider for provider, _ in table))


def __getattr__(name: str) -> Any:
    # The tables, read from the registry when asked (nothing is built at import time).
    if name == "VARIANTS":
        return variants()
    if name == "PROVIDERS":
        return tuple(_providers(variants()))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ManifestError(errors.ImuzekitError, ValueError):
    """A manifest line that cannot be used: names the line and the field."""

    def __init__(self, line: int, field: str | None, message: str) -> None:
        where = f"manifest line {line}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")
        self.line = line
        self.field = field
        self.reason = message


@attrs.frozen
class ManifestLine:
    """One validated manifest line.

    ``params`` are the create call's keyword arguments as given (JSON values); ``digest``
    identifies the request, to notice a line edited after it was submitted.
    """

    number: int
    key: str
    provider: str
    kind: str
    params: Mapping[str, Any]
    digest: str
    rejected: str | None = None
    """Why the line failed validation (see `rejected_line`): it is recorded ``failed`` with
    this reason and never sent; None for a valid line."""

    @property
    def variant(self) -> Variant:
        """The create call this line makes."""
        return variants()[(self.provider, self.kind)]

    @property
    def marked(self) -> bool:
        """Whether the line's create carries a reconciliation marker."""
        return self.rejected is None and self.variant.marker_field is not None

    def request_json(self) -> str:
        """The request as canonical JSON (what the journal stores)."""
        return json.dumps(
            {"provider": self.provider, "kind": self.kind, "params": dict(self.params)},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _check_string(number: int, name: str, value: Any, spec: FieldSpec | None = None) -> str:
    if not isinstance(value, str):
        raise ManifestError(number, name, f"must be a string, got {_json_type(value)}")
    if not value.strip():
        raise ManifestError(number, name, "must not be empty")
    if spec is None:
        return value
    if spec.min_length is not None and len(value) < spec.min_length:
        raise ManifestError(
            number, name, f"must be at least {spec.min_length} characters, got {len(value)}"
        )
    if spec.max_length is not None and len(value) > spec.max_length:
        raise ManifestError(
            number, name, f"must be at most {spec.max_length} characters, got {len(value)}"
        )
    # fullmatch: a pattern's "$" alone would also let a trailing newline through.
    if spec.pattern is not None and re.fullmatch(spec.pattern, value) is None:
        bad = next((c for c in value if re.fullmatch(spec.pattern, c) is None), value)
        reason = spec.rule or f"{spec.pattern} does not allow"  # the spec's words when given
        raise ManifestError(number, name, f"has {bad!r}, which {reason}")
    return value


def _check_integer(number: int, spec: FieldSpec, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(number, spec.name, f"must be an integer, got {_json_type(value)}")
    if spec.minimum is not None and value < spec.minimum:
        raise ManifestError(number, spec.name, f"must be >= {spec.minimum}, got {value}")
    if spec.maximum is not None and value > spec.maximum:
        raise ManifestError(number, spec.name, f"must be <= {spec.maximum}, got {value}")
    return value


def movements(value: Any) -> Structure | str:
    """A manifest ``structure`` as what ``musics.create`` takes (a string stays a string)."""
    if isinstance(value, str):
        return value
    return Structure([Movement(**item) for item in value])


def _check_structure(number: int, value: Any) -> None:
    if isinstance(value, str):
        try:
            Structure.parse(value)
        except errors.ValidationError as exc:
            raise ManifestError(number, "structure", f"{exc.field}: {exc.reason}") from None
        return
    if not isinstance(value, list) or not value:
        raise ManifestError(
            number, "structure", "must be a string like 'calm:0.5,dynamic:0.5' or a list"
        )
    allowed = {"start", "duration", "energy", "movement"}
    for index, item in enumerate(value):
        field = f"structure[{index}]"
        if not isinstance(item, dict):
            raise ManifestError(number, field, f"must be an object, got {_json_type(item)}")
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise ManifestError(number, f"{field}.{unknown[0]}", "is not a movement field")
        for name in ("start", "duration"):
            number_value = item.get(name)
            if (
                isinstance(number_value, bool)
                or not isinstance(number_value, int | float)
                or not math.isfinite(number_value)
                or not 0 <= number_value <= 1
            ):
                raise ManifestError(number, f"{field}.{name}", "must be a number in [0, 1]")
        # Neither is a movement too (seed 000's own example); both is refused.
        if "energy" in item and "movement" in item:
            raise ManifestError(number, field, "takes an energy or a movement, not both")
        if "energy" in item and item["energy"] not in {e.value for e in Energy}:
            raise ManifestError(
                number, f"{field}.energy", "must be one of " + ", ".join(e.value for e in Energy)
            )
        if "movement" in item:
            _check_string(number, f"{field}.movement", item["movement"])


def _check_key(number: int, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ManifestError(
            number, "key", f"must be a string or an integer, got {_json_type(value)}"
        )
    key = str(value)
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ManifestError(number, "key", f"must be 1 to {MAX_KEY_LENGTH} characters")
    if any(unicodedata.category(c) == "Cc" for c in key):
        raise ManifestError(number, "key", "must not contain control characters")
    return key


def parse_line(number: int, text: str) -> ManifestLine:
    """Validate one manifest line (``number`` is 1-based); ManifestError naming the field."""
    try:
        data = loads_json(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            number, None, f"not valid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    except ValueError as exc:  # nested too deep to be a manifest line
        raise ManifestError(number, None, f"not a manifest line: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(number, None, f"must be a JSON object, got {_json_type(data)}")
    table = variants()
    providers = _providers(table)
    provider = data.get("provider")
    if provider not in providers:
        raise ManifestError(
            number, "provider", f"must be one of {', '.join(providers)}, got {provider!r}"
        )
    calls = [variant for (name, _), variant in table.items() if name == provider]
    if not calls[0].has_kind and "kind" in data:
        several = [registry().get(p).title for p in providers if _has_kinds(table, p)]
        raise ManifestError(number, "kind", f"only {' and '.join(several)} lines have a kind")
    kind = data.get("kind", calls[0].kind)
    variant = table.get((provider, kind)) if isinstance(kind, str) else None
    if variant is None:
        kinds = ", ".join(call.kind for call in calls)
        raise ManifestError(number, "kind", f"must be one of {kinds}, got {kind!r}")
    key = _check_key(number, data["key"]) if "key" in data else str(number)
    specs = {spec.name: spec for spec in variant.fields}
    params: dict[str, Any] = {}
    for name, value in data.items():
        if name in ("provider", "key", "kind"):
            continue
        spec = specs.get(name)
        if spec is None:
            raise ManifestError(
                number, name, f"is not a field of {provider} {kind}; known: {', '.join(specs)}"
            )
        if value is None and not spec.required:
            continue
        if spec.kind == "string":
            _check_string(number, name, value, spec)
        elif spec.kind == "integer":
            _check_integer(number, spec, value)
        elif spec.kind == "boolean":
            if not isinstance(value, bool):
                raise ManifestError(number, name, f"must be true or false, got {_json_type(value)}")
        elif spec.kind == "tags":
            if not isinstance(value, list):
                raise ManifestError(
                    number, name, f"must be a list of strings, got {_json_type(value)}"
                )
            for index, tag in enumerate(value):
                _check_string(number, f"{name}[{index}]", tag, spec)
        else:
            _check_structure(number, value)
        params[name] = value
    for spec in variant.fields:
        if spec.required and spec.name not in params:
            raise ManifestError(number, spec.name, "is required")
    for spec in variant.fields:
        other = spec.at_most
        if other is not None and other in params and params.get(spec.name, 0) > params[other]:
            raise ManifestError(number, spec.name, f"must not be longer than {other}")
    canonical = json.dumps(
        {"provider": provider, "kind": kind, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return ManifestLine(number, key, provider, kind, params, digest)


REJECTED = "rejected:"
"""The digest prefix of a line that failed validation (a valid line's is 64 hex digits)."""


def rejected_line(number: int, text: str, error: ManifestError) -> ManifestLine:
    """The journal's record of a line that failed validation: its key (or its number), the
    provider and kind it named (as given), the line as given, and the reason."""
    try:
        data = loads_json(text)
    except ValueError:
        data = None
    fields = data if isinstance(data, dict) else {}
    try:
        key = _check_key(number, fields["key"]) if "key" in fields else str(number)
    except ManifestError:
        key = str(number)
    provider, kind = fields.get("provider"), fields.get("kind")
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    return ManifestLine(
        number,
        key,
        provider if isinstance(provider, str) else "",
        kind if isinstance(kind, str) else "",
        {"line": data if data is not None else text},
        REJECTED + digest,
        rejected=(f"{error.field}: " if error.field else "") + error.reason,
    )


def check_unique(lines: Iterable[ManifestLine]) -> None:
    """ManifestError at the first line whose key repeats an earlier line's, also once turned
    into file names, including a Mureka line's ``<key>-1``/``<key>-2`` (compared case-folded:
    the output directory may be on a case-insensitive file system)."""
    keys: dict[str, int] = {}
    names: dict[str, tuple[int, str]] = {}
    for line in lines:
        number = line.number
        if line.key in keys:
            raise ManifestError(
                number, "key", f"{line.key!r} is already the key of line {keys[line.key]}"
            )
        keys[line.key] = number
        if line.rejected is not None:
            continue
        stems = file_stems(line.key, line.variant.files)
        for name in stems:
            if name in names:
                other_line, other_key = names[name]
                raise ManifestError(
                    number,
                    "key",
                    f"{line.key!r} and {other_key!r} (line {other_line}) would name the same "
                    f"file ({name!r})",
                )
        names.update(dict.fromkeys(stems, (number, line.key)))


def _lines(path: pathlib.Path) -> Iterator[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as handle:
            for number, text in enumerate(handle, 1):
                if text.strip():
                    yield number, text
    except UnicodeDecodeError as exc:
        raise ManifestError(0, None, f"{path} is not UTF-8 text: {exc.reason}") from None


def _has_kinds(table: Mapping[tuple[str, str], Variant], provider: str) -> bool:
    """Whether `provider`'s lines may name a ``kind`` (it has several create calls)."""
    return any(v.has_kind for (name, _), v in table.items() if name == provider)


def file_name(key: str, files: int, index: int, suffix: str) -> str:
    """The name of a line's file ``index`` (1-based): ``<key><suffix>``, and for a create
    that makes several files (`files` > 1: a Mureka generation's songs), always
    ``<key>-<index><suffix>``."""
    from imuzekit import safe_filename

    base = safe_filename(key)
    return f"{base}-{index}{suffix}" if files > 1 else f"{base}{suffix}"


def file_stems(key: str, files: int) -> list[str]:
    """The names (without suffix) a line's files take, case-folded: what must not collide."""
    return [file_name(key, files, i, "").casefold() for i in range(1, files + 1)]


def load_manifest(path: pathlib.Path) -> list[ManifestLine]:
    """Every line of the manifest, validated; ManifestError at the first bad one.

    Blank lines are skipped (line numbers still count them). Keys must be unique, also once
    turned into file names (`check_unique`), so a manifest works on any file system.
    """
    lines = [parse_line(number, text) for number, text in _lines(path)]
    if not lines:
        raise ManifestError(0, None, f"{path} has no requests")
    check_unique(lines)
    return lines


# -- the JSON Schema --------------------------------------------------------------------------


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    schema: dict[str, Any]
    if spec.kind == "string":
        schema = {"type": "string", "minLength": spec.min_length or 1}
        if spec.max_length is not None:
            schema["maxLength"] = spec.max_length
        if spec.pattern is not None:
            schema["pattern"] = spec.pattern
    elif spec.kind == "integer":
        schema = {"type": "integer"}
        if spec.minimum is not None:
            schema["minimum"] = spec.minimum
        if spec.maximum is not None:
            schema["maximum"] = spec.maximum
    elif spec.kind == "boolean":
        schema = {"type": "boolean"}
    elif spec.kind == "tags":
        item: dict[str, Any] = {"type": "string", "minLength": 1}
        if spec.max_length is not None:
            item["maxLength"] = spec.max_length
        schema = {"type": "array", "items": item}
    else:
        schema = {"oneOf": [{"type": "string", "minLength": 1}, {"$ref": "#/$defs/movements"}]}
    return {"description": spec.description, **schema}


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one manifest line."""
    table = variants()
    shapes = []
    for variant in table.values():
        properties: dict[str, Any] = {
            "provider": {"const": variant.provider},
            "key": {"$ref": "#/$defs/key"},
        }
        required = ["provider"]
        if variant.has_kind:
            properties["kind"] = {"const": variant.kind}
            if variant.kind_required:
                required.append("kind")
        for spec in variant.fields:
            properties[spec.name] = _field_schema(spec)
            if spec.required:
                required.append(spec.name)
        shapes.append(
            {
                "title": f"{variant.provider} {variant.kind}",
                "description": variant.description,
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": MANIFEST_SCHEMA_ID,
        "title": "imuzekit batch manifest line",
        "description": "One generation request; a manifest is one such object per line.",
        "type": "object",
        "required": ["provider"],
        "properties": {"provider": {"enum": _providers(table)}},
        "oneOf": shapes,
        "$defs": {
            "key": {
                "description": "Unique id of the line (default: its line number); names files.",
                "oneOf": [
                    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
                    {"type": "integer"},
                ],
            },
            "movements": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "start": {"type": "number", "minimum": 0, "maximum": 1},
                        "duration": {"type": "number", "minimum": 0, "maximum": 1},
                        "energy": {"enum": [e.value for e in Energy]},
                        "movement": {"type": "string", "minLength": 1},
                    },
                    "required": ["start", "duration"],
                    "not": {"required": ["energy", "movement"]},
                    "additionalProperties": False,
                },
            },
        },
    }
