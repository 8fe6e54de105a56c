"""How long an emulated generation takes: a fixed time or a range drawn per item.

Pure: no aiohttp.
"""

from __future__ import annotations

import random

__all__ = ["RenderSeconds", "check_render_seconds", "draw_render_seconds"]

RenderSeconds = float | tuple[float, float]
"""A fixed render time, or a (low, high) range each song draws uniformly from."""


def check_render_seconds(value: RenderSeconds) -> RenderSeconds:
    """Validate a render time (the states' attrs converter): non-negative, a range ordered."""
    if isinstance(value, tuple):
        low, high = value
        if not 0 <= low <= high:
            raise ValueError(f"render_seconds range must satisfy 0 <= low <= high, got {value!r}")
        return (float(low), float(high))
    if not value >= 0:
        raise ValueError(f"render_seconds must be >= 0, got {value!r}")
    return float(value)


def draw_render_seconds(rng: random.Random, value: RenderSeconds) -> float:
    """The render time of one item: `value` itself, or a uniform draw from its range."""
    return rng.uniform(*value) if isinstance(value, tuple) else value
