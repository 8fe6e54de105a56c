"""Checks of settings and call arguments: `ValidationError` naming the parameter, or the value.

Settings are checked where they are given (a constructor, a call), not where they are first
used: ``Timeouts(read=-1)`` or ``concurrency="8"`` otherwise fails minutes later, deep in a
request, with a `TypeError` that names nothing. A `bool` is never a number here (``True`` is
an `int` to Python, but ``concurrency=True`` is a mistake). The attrs classes use `checked`.

This module imports only `imuzekit.errors`, so that the value modules (``_http``, ``_retry``)
may use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from imuzekit import errors

__all__ = ["checked", "flag", "integer", "seconds"]


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def integer(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` when it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.ValidationError(name, f"must be an integer, got {_shown(value)}")
    if value < minimum:
        raise errors.ValidationError(name, f"must be >= {minimum}, got {value}")
    return value


def seconds(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    optional: bool = False,
    infinite: bool = False,
) -> Any:
    """``value`` when it is a real number (not a bool, not NaN) of at least 0.

    ``positive``: 0 is refused too. ``optional``: None is accepted (it means "no limit", so
    infinity is refused in favour of it). ``infinite``: infinity is accepted.
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "a number or None" if optional else "a number"
        raise errors.ValidationError(name, f"must be {kind}, got {_shown(value)}")
    if math.isnan(value):
        raise errors.ValidationError(name, "must be a number, got nan")
    if math.isinf(value) and not (infinite and value > 0):
        hint = " (None means no limit)" if optional else ""
        raise errors.ValidationError(name, f"must be finite{hint}, got {value}")
    if value < 0 or (positive and value == 0):
        raise errors.ValidationError(name, f"must be {'> 0' if positive else '>= 0'}, got {value}")
    return value


def flag(name: str, value: Any) -> bool:
    """``value`` when it is a bool."""
    if not isinstance(value, bool):
        raise errors.ValidationError(name, f"must be True or False, got {_shown(value)}")
    return value


def checked(check: Callable[..., Any], **options: Any) -> Callable[[Any, Any, Any], None]:
    """An attrs validator running ``check`` on the field, named ``Class.field`` in the error."""

    def validate(instance: Any, attribute: Any, value: Any) -> None:
        check(f"{type(instance).__name__}.{attribute.name}", value, **options)

    return validate
