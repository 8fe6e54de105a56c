"""Page geometry of the emulated scores: how many pages, where each measure sits.

Pure: no aiohttp. Units are 1/12 pixel at 100 dpi (a 12x scale, as the reference says of its
PNGs), as the ``space`` route sends them.
"""

from __future__ import annotations

import math

from .models import MuseScoreScore

__all__ = ["UNITS_PER_PX", "measure_boxes", "page_size_px", "pages_needed"]

UNITS_PER_PX = 12
"""Layout units per pixel at 100 dpi."""
# Margins of 25 mm; the first page leaves room for the title.
_MARGIN = 25 / 25.4 * 100 * UNITS_PER_PX
_TITLE_SPACE = 1175.0


def page_size_px(dimensions: str) -> tuple[int, int]:
    """Page size at 100 dpi of a ``"210x297"`` (mm) paper size."""
    width_text, _, height_text = dimensions.partition("x")
    try:
        width_mm, height_mm = float(width_text), float(height_text)
    except ValueError:
        width_mm, height_mm = 210.0, 297.0
    return round(width_mm / 25.4 * 100), round(height_mm / 25.4 * 100)


def _natural_system_height(parts: int) -> float:
    # About 500 units (40 px, 10 mm) a staff and its gap: a duo's system is ~1300 units high,
    # as in the reference's example (sy 1321.9 for flute and piano).
    return 300.0 + 500.0 * max(1, parts)


def _measures_per_system(parts: int) -> int:
    return 4 if parts <= 3 else 3


def pages_needed(measures: int, parts: int, dimensions: str) -> int:
    """Pages a score of `measures` takes with the layout `space` draws."""
    _, height_px = page_size_px(dimensions)
    available = height_px * UNITS_PER_PX - _MARGIN * 2 - _TITLE_SPACE
    systems = max(1, int(available // (_natural_system_height(parts) * 1.2)))
    return max(1, math.ceil(measures / (systems * _measures_per_system(parts))))


def measure_boxes(score: MuseScoreScore) -> list[tuple[int, float, float, float, float]]:
    """Each measure's (page, x, y, sx, sy), in 1/12 px at 100 dpi, as ``space`` sends it.

    Measures are spread evenly over the metadata's pages, in systems of 4 (3 from four
    parts up) filling the page's width between 25 mm margins.
    """
    meta = score.metadata
    width_px, height_px = page_size_px(meta.dimensions)
    page_w, page_h = width_px * UNITS_PER_PX, height_px * UNITS_PER_PX
    per_system = _measures_per_system(len(meta.parts))
    natural = _natural_system_height(len(meta.parts))
    sx = (page_w - 2 * _MARGIN) / per_system
    on_page: dict[int, int] = {}
    pages = max(1, meta.pages)
    for index in range(meta.measures):
        page = index * pages // meta.measures
        on_page[page] = on_page.get(page, 0) + 1
    boxes = []
    seen: dict[int, int] = {}
    for index in range(meta.measures):
        page = index * pages // meta.measures
        position = seen.get(page, 0)
        seen[page] = position + 1
        top = _MARGIN + (_TITLE_SPACE if page == 0 else 0.0)
        systems = math.ceil(on_page[page] / per_system)
        pitch = min((page_h - top - _MARGIN) / systems, natural * 1.5)
        sy = min(natural, pitch * 0.85)
        system, column = divmod(position, per_system)
        boxes.append((page, _MARGIN + column * sx, top + system * pitch, sx, sy))
    return boxes
