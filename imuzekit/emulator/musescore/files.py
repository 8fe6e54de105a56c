"""The static files of the emulated MuseScore.com's scores: PDF, MIDI, MusicXML, MSCZ, MP3, PNG.

Pure: no aiohttp. Real files, drawn from a score's metadata and layout (an upload serves its own
``.mscz``), that agree with the API: the MP3 lasts `metadata.duration` (however long: at 8 kbit/s
it costs a kilobyte a second), the MIDI starts each measure where ``time`` says it does, the PDF
has `metadata.pages` pages and the PNG pages declare their 100 dpi.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from typing import Final

from imuzekit.emulator._files import (
    Box,
    PartSpec,
    midi_file,
    mscz_archive,
    musicxml_archive,
    pdf_document,
    png_image,
)
from imuzekit.emulator._mp3 import mp3_bytes

from .layout import UNITS_PER_PX, measure_boxes, page_size_px
from .models import MuseScoreScore
from .views import time_json

__all__ = ["content_type", "file_key", "render_file"]

_CONTENT_TYPES: Final[Mapping[str, str]] = {
    "pdf": "application/pdf",
    "mid": "audio/midi",
    "mxl": "application/vnd.recordare.musicxml",
    "mscz": "application/x-musescore",
    "mp3": "audio/mpeg",
    "png": "image/png",
}
_PAGE_PNG = re.compile(r"score_(0|[1-9][0-9]{0,5})\.png")
_THUMB_WIDTH = 200
# MPEG-2 mono at 8 kbit/s: a kilobyte a second, so even the longest score's audio is cheap.
_MP3_KBPS = 8
_MP3_RATE = 16000


def content_type(name: str) -> str:
    """The Content-Type of a static file, by its extension."""
    return _CONTENT_TYPES[name.rsplit(".", 1)[-1]]


def file_key(score: MuseScoreScore, name: str) -> Hashable:
    """What a rendered file depends on, its key in the file cache."""
    if name == "score.mp3":
        # MP3s depend on the duration alone: one file per length serves many scores.
        return (-1, score.metadata.duration, name)
    return (score.id, score.vid, name)


def _page_boxes(score: MuseScoreScore, scale: float) -> list[list[Box]]:
    pages: list[list[Box]] = [[] for _ in range(max(1, score.metadata.pages))]
    factor = scale / UNITS_PER_PX
    for page, x, y, sx, sy in measure_boxes(score):
        pages[page].append((x * factor, y * factor, sx * factor, sy * factor))
    return pages


def render_file(score: MuseScoreScore, name: str) -> bytes:
    """The bytes of a score's static file `name`; `KeyError` if the score has no such file."""
    meta = score.metadata
    specs: list[PartSpec] = [(part.name, part.program) for part in meta.parts]
    staves = len(meta.parts)
    width_px, height_px = page_size_px(meta.dimensions)
    if name == "score.pdf":
        return pdf_document(
            meta.title,
            _page_boxes(score, 1.0),
            staves=staves,
            page_size_px=(width_px, height_px),
            composer=meta.composer or "",
        )
    if name == "score.mid":
        # The measures start where `time` says they do ("in sync with the MP3 and the MIDI").
        starts = [event["position"] / 1000 for event in time_json(score)]
        return midi_file(specs, measure_starts=starts, duration=meta.duration, title=meta.title)
    if name == "score.mxl":
        return musicxml_archive(
            meta.title, meta.composer or "", specs, measures=meta.measures, keysig=meta.keysig
        )
    if name == "score.mscz":
        if score.upload is not None:
            return score.upload
        return mscz_archive(
            meta.title,
            specs,
            measures=meta.measures,
            keysig=meta.keysig,
            composer=meta.composer or "",
            subtitle=meta.subtitle or "",
            poet=meta.poet or "",
        )
    if name == "score.mp3":
        seconds = meta.duration
        return mp3_bytes(
            seconds,
            bitrate_kbps=_MP3_KBPS,
            sample_rate=_MP3_RATE,
            id3_title=f"MuseScore emulator ({seconds} s)",
        )
    if name == "thumb.png":
        scale = _THUMB_WIDTH / width_px
        height = round(height_px * scale)
        return png_image(_THUMB_WIDTH, height, _page_boxes(score, scale)[0], staves=staves)
    match = _PAGE_PNG.fullmatch(name)
    if match is not None:
        page = int(match.group(1))
        if page < meta.pages:
            boxes = _page_boxes(score, 1.0)[page]
            return png_image(width_px, height_px, boxes, staves=staves)
    raise KeyError(name)
