"""The single cattrs converter factory.

Models are plain frozen attrs classes; everything about the wire format lives here and in the
providers' converter hooks: numbers that arrive as strings, unix timestamps, field names that
differ between endpoints (`alias_keys()`). The converter is liberal in what it reads:
unknown fields are ignored, numeric strings become ints, and structuring failures carry the
path of the offending value (``$.response[3].id``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import IterableValidationNote

__all__ = ["MAX_JSON_DEPTH", "JSONTooDeepError", "alias_keys", "loads_json", "make_converter"]

T = TypeVar("T")

MAX_JSON_DEPTH = 128
"""How deeply JSON from outside (answers, error bodies, job tokens) may nest.

Real answers nest fewer than 10 levels. Python's decoder and every recursive walk over a
decoded value (structuring, ``repr``, re-encoding) raise `RecursionError` somewhere near 1,000
levels, depending on how deep the stack already is: refusing more than this leaves them a wide
margin wherever the value goes afterwards."""


class JSONTooDeepError(ValueError):
    """JSON text nested deeper than `MAX_JSON_DEPTH` levels (a `ValueError`, like every other
    undecodable text, so callers that map `ValueError` to their typed error keep doing so)."""


def loads_json(text: str | bytes) -> Any:
    """`json.loads` that never raises `RecursionError`.

    Nesting deeper than `MAX_JSON_DEPTH` raises `JSONTooDeepError`, whether the decoder itself
    ran out of stack or the value decoded but would break a later walk over it. The one place
    where JSON from outside is decoded: callers map `ValueError` to `ParseError` (answers) or
    `ValidationError` (tokens).
    """
    value = _NOT_SCANNED
    if type(text) is str and text[:1] in ("{", "["):
        # One JSON value and nothing else (not even whitespace) from the C scanner json.loads
        # ends up in, without the three Python frames around it; anything else (trailing
        # text, any failure) goes to json.loads, which decodes it or raises its own error.
        try:
            value, end = _scanner()(text, 0)
        except Exception:  # StopIteration, JSONDecodeError, RecursionError: json.loads decides
            value = _NOT_SCANNED
        else:
            if end != len(text):
                value = _NOT_SCANNED
    if value is _NOT_SCANNED:
        try:
            value = json.loads(text)
        except RecursionError:
            raise JSONTooDeepError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    # So deep a nesting needs at least as many brackets: nearly every answer stops here.
    if isinstance(text, str):
        opened = text.count("[") + text.count("{")
    else:
        opened = text.count(b"[") + text.count(b"{")
    if opened > MAX_JSON_DEPTH:
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        if not _shallow_brackets(data) and _depth(value) > MAX_JSON_DEPTH:
            raise JSONTooDeepError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    return value


_NOT_SCANNED: Any = object()


@functools.cache
def _scanner() -> Callable[[str, int], tuple[Any, int]]:
    """The C scanner ``json.loads`` ends up in, without the three Python frames around it."""
    scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
    return scan


# Every bracket becomes "[" or "]", everything else is dropped: what is left is the nesting.
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def _shallow_brackets(data: bytes) -> bool:
    """True when the brackets of ``data`` provably nest at most `MAX_JSON_DEPTH` deep.

    Each round removes the innermost level (``replace`` does not rescan what it joins), all in
    C: far cheaper than walking the decoded value. False (unsure) also when brackets inside
    strings leave an unbalanced rest; the caller then walks the value.
    """
    nesting = data.translate(_SQUARE, _NOT_BRACKETS)
    for _ in range(MAX_JSON_DEPTH):
        if not nesting:
            return True
        inner = nesting.replace(b"[]", b"")
        if len(inner) == len(nesting):
            return False
        nesting = inner
    return not nesting


def _depth(value: Any) -> int:
    # Iterative: a recursive walk would itself hit the limit it measures.
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if type(node) is dict:
            children: Any = node.values()
        elif type(node) is list:
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


# Hooks that return a value of their exact type unchanged carry ``(that type, None passes
# too)`` under this attribute, so a class's generated fast path can test ``type(v) is int``
# instead of calling the hook (an attribute rather than a registry: nothing outlives a hook).
_PASSES = "_imuzekit_passes"

_Hook = TypeVar("_Hook", bound=Callable[..., Any])


def _passes_through(tp: type) -> Callable[[_Hook], _Hook]:
    def mark(hook: _Hook) -> _Hook:
        hook.__dict__[_PASSES] = (tp, False)
        return hook

    return mark


@_passes_through(int)
def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = float(text)  # "12.0" is fine, "abc" raises ValueError
            if number.is_integer():
                return int(number)
    raise ValueError(f"expected an integer, got {value!r}")


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number = float(value.strip())
    else:
        raise TypeError(f"expected a number, got {value!r}")
    if math.isnan(number):
        raise ValueError("expected a number, got NaN")
    return number


@_passes_through(str)
def _structure_str(value: Any, _: type) -> str:
    # Ids arrive as numbers from some endpoints and as strings from others: both become str.
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


@_passes_through(bool)
def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise TypeError(f"expected a boolean, got {value!r}")


def _structure_datetime(value: Any, _: type) -> dt.datetime:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except ValueError:
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    raise TypeError(f"expected a timestamp, got {value!r}")


def _is_variadic_tuple(tp: Any) -> bool:
    return typing.get_origin(tp) is tuple and typing.get_args(tp)[-1:] == (Ellipsis,)


def _tuple_hook_factory(tp: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    (item_type, _) = typing.get_args(tp)
    item_hook = converter.get_structure_hook(item_type)

    def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
        # A string is iterable too; without this check "rock" would become ("r", "o", "c", "k").
        if value is None:
            return ()
        if isinstance(value, str | bytes | Mapping):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        items: list[Any] = []
        failures: list[Exception] = []
        for index, item in enumerate(value):
            try:
                items.append(item_hook(item, item_type))
            except Exception as exc:
                note = IterableValidationNote(f"Structuring index {index}", index, item_type)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                failures.append(exc)
        if failures:
            raise cattrs.IterableValidationError(f"While structuring {tp!r}", failures, tp)
        return tuple(items)

    return structure_tuple


# Types whose hook returns a value of exactly that type unchanged (not float: NaN is refused;
# not datetime: only timestamps are read), so the optional hook may skip the call for them.
_PASSTHROUGH: frozenset[type] = frozenset({int, str, bool})


def _optional(hook: Callable[[Any, type], T], tp: type[T]) -> Callable[[Any, Any], T | None]:
    passthrough = tp if tp in _PASSTHROUGH else None

    def structure_optional(value: Any, _: Any) -> T | None:
        if value is None:
            return None
        if type(value) is passthrough:
            return value  # type(value) is tp: the hook would return it unchanged
        return hook(value, tp)

    structure_optional.__dict__[_PASSES] = (passthrough, True)
    return structure_optional


def _fast_structure_fn(
    cls: type[T],
    converter: cattrs.Converter,
    aliases: Mapping[str, str] | None = None,
    slow: Callable[[Any, Any], T] | None = None,
) -> Callable[[Any, Any], T]:
    """cattrs's structure function for the attrs class ``cls``, behind a generated fast path.

    The fast path reads a plain ``dict`` field by field with the very hooks cattrs's function
    uses (a hook that would return its value unchanged is skipped when the value already has
    its exact type) and builds ``cls`` directly: no per-field error bookkeeping. Anything
    unusual (not a dict, a required key missing, any exception from a hook or from ``cls``)
    hands the value to cattrs's own detailed function, which gives the answer or raises the
    error naming the path, exactly as without the fast path; the fast path's exception is
    dropped before that (nothing of it is chained). Classes the fast path cannot mirror
    (generic, a field without a type, an attrs converter cattrs is told to prefer, init=False
    fields) get cattrs's function alone.

    ``aliases`` (alias key -> field key, see `alias_keys`) are read in the fast path too, the
    field's own key first; ``slow`` then replaces cattrs's function (it reads them as well).
    """
    if slow is None:
        slow = converter.gen_structure_attrs_fromdict(cls)
    if typing.get_origin(cls) is not None or vars(cls).get("__parameters__"):
        return slow
    fields = attrs.fields(typing.cast(Any, cls))
    if any(f.type is None or not f.init for f in fields):
        return slow
    if converter._prefer_attrib_converters and any(f.converter is not None for f in fields):
        return slow
    names: dict[str, Any] = {"_slow": slow, "_cls": cls}
    lines = [
        "def fast(o, _):",
        "    if type(o) is not dict:",
        "        return _slow(o, _)",
        "    try:",
        "        kw = {}",
    ]
    for index, field in enumerate(fields):
        key = field.alias if converter.use_alias else field.name
        hook = converter.get_structure_hook(field.type)
        names[f"_h{index}"], names[f"_t{index}"] = hook, field.type
        call = f"_h{index}(v, _t{index})"
        passthrough, none_passes = getattr(hook, "__dict__", {}).get(_PASSES, (None, False))
        if passthrough is not None:
            names[f"_p{index}"] = passthrough
            test = f"type(v) is _p{index}"
            if none_passes:
                test = f"v is None or {test}"
            call = f"v if {test} else {call}"
        elif none_passes:
            call = f"None if v is None else {call}"
        keys = [key, *(alias for alias, canonical in (aliases or {}).items() if canonical == key)]
        for number, name in enumerate(keys):
            lines.append(f"        {'elif' if number else 'if'} {name!r} in o:")
            lines.append(f"            v = o[{name!r}]")
            lines.append(f"            kw[{field.alias!r}] = {call}")
        if field.default is attrs.NOTHING:
            lines.append("        else:")
            lines.append("            return _slow(o, _)")
    lines += [
        "        return _cls(**kw)",
        "    except Exception:",
        "        pass",
        "    return _slow(o, _)",  # outside the except block: no context chained
    ]
    exec(compile("\n".join(lines), f"<imuzekit fast structure {cls.__qualname__}>", "exec"), names)
    return typing.cast(Callable[[Any, Any], T], names["fast"])


def make_converter() -> cattrs.Converter:
    """Build a converter with imuzekit's lenient wire rules (see the module docstring)."""
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    scalars: tuple[tuple[type[Any], Callable[[Any, type], Any]], ...] = (
        (int, _structure_int),
        (float, _structure_float),
        (str, _structure_str),
        (bool, _structure_bool),
        (dt.datetime, _structure_datetime),
    )
    for tp, hook in scalars:
        converter.register_structure_hook(tp, hook)
        # Most model fields are ``X | None``: without a direct hook cattrs resolves the union
        # on every value (a dispatch lookup per field per item); this does the same in one call.
        converter.register_structure_hook(tp | None, _optional(hook, tp))
    converter.register_unstructure_hook(dt.datetime, lambda d: int(d.timestamp()))
    converter.register_structure_hook_factory(_is_variadic_tuple, _tuple_hook_factory)
    # Every attrs class a provider does not give its own hook: cattrs's function behind a fast
    # path for the well-formed answers nearly every call gets.
    converter.register_structure_hook_factory(attrs.has, _fast_structure_fn)
    return converter


def alias_keys(converter: cattrs.Converter, cls: type[T], aliases: Mapping[str, str]) -> None:
    """Let ``cls`` read each field also from an alias key (``{"mp3": "mp3_url"}``).

    For endpoints that name the same value differently: the canonical key wins when both are
    present.
    """
    if not attrs.has(cls):
        raise TypeError(f"{cls!r} is not an attrs class")
    inner = converter.gen_structure_attrs_fromdict(cls)
    pairs = tuple(aliases.items())

    def structure_with_aliases(value: Any, tp: type[T]) -> T:
        # Called for every item of every list response: a plain loop, no generator.
        # type() first: isinstance against the Mapping ABC is a slow path for plain dicts.
        if type(value) is dict or isinstance(value, Mapping):
            for alias, _ in pairs:
                if alias in value:
                    value = dict(value)
                    for alias_key, canonical in pairs:
                        if alias_key in value:
                            aliased = value.pop(alias_key)
                            value.setdefault(canonical, aliased)
                    break
        return typing.cast(T, inner(value, tp))

    keys = {field.alias if converter.use_alias else field.name for field in attrs.fields(cls)}
    if keys.isdisjoint(aliases):
        # The aliases read by the generated fast path itself; this function answers the rest.
        fast = _fast_structure_fn(cls, converter, aliases, typing.cast(Any, structure_with_aliases))
        converter.register_structure_hook(cls, fast)
    else:  # an alias that is also a field's key: only the renaming above gets that right
        converter.register_structure_hook(cls, structure_with_aliases)
