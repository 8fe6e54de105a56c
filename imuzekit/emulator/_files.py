"""Small but valid score files, generated in pure Python for the emulated MuseScore.com.

Every writer here produces a file that a real reader accepts:

- `pdf_document`: PDF 1.4, one page per score page, the measures drawn as staves (vector lines
  in a Flate-compressed content stream), a cross-reference table with exact offsets, ``%%EOF``;
- `png_image`: an 8-bit grey + alpha PNG (transparent, like MuseScore.com's pages) with staves
  drawn where the measures' bounding boxes are; signature, IHDR, pHYs (100 dpi), IDAT (zlib),
  IEND, CRCs;
- `midi_file`: a format-0 Standard MIDI File, one track: a program change per part (the drum set
  on channel 10), then every measure at its start time (a tempo, a marker, a note per part);
- `musicxml_archive`: compressed MusicXML (``.mxl``): a zip with ``mimetype``,
  ``META-INF/container.xml`` and ``score.musicxml``;
- `mscz_archive`: a MuseScore file (``.mscz``): a zip with ``score.mscx`` and its container.

`read_mscz` (from `imuzekit.emulator._mscz`) is the other direction: what an upload's ``.mscz``
says about itself, in the layouts of MuseScore 1.x, 2.x and 3.x.

Everything is deterministic (zip entries carry a fixed date), so the same score always gives the
same bytes and the same ETag.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence

# The reading side lives in `_mscz`; its names are re-exported here, where they always were.
from imuzekit.emulator._mscz import DRUMSET_PROGRAM, MsczInfo, PartSpec, read_mscz

__all__ = [
    "DRUMSET_PROGRAM",
    "PNG_DPI",
    "Box",
    "MsczInfo",
    "PartSpec",
    "is_zip",
    "midi_file",
    "mscz_archive",
    "musicxml_archive",
    "pdf_document",
    "png_image",
    "read_mscz",
]

Box = tuple[float, float, float, float]
"""A measure's box on a page as (x, y, width, height), in pixels at 100 dpi."""

# Zip entries need a date; a fixed one makes archives byte-for-byte reproducible.
_ZIP_DATE = (2014, 1, 1, 0, 0, 0)


def _escape_xml(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


# --------------------------------------------------------------------------------------------
# PDF


def _pdf_string(text: str) -> bytes:
    """A PDF literal string for the standard Helvetica font (Latin-1; others become '?')."""
    raw = text.encode("latin-1", "replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _pdf_text_string(text: str) -> bytes:
    """A PDF text string (document information): UTF-16BE with a byte-order mark, in hex."""
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode("ascii") + b">"


def _staff_lines(box: Box, staves: int) -> Iterable[tuple[float, float, float]]:
    """(x0, x1, y) of every staff line in a measure box: `staves` staves of 5 lines each."""
    x, y, width, height = box
    band = height / max(1, staves)
    for staff in range(staves):
        top = y + staff * band + band * 0.3
        gap = band * 0.1
        for line in range(5):
            yield x, x + width, top + line * gap


def pdf_document(
    title: str,
    page_boxes: Sequence[Sequence[Box]],
    *,
    staves: int,
    page_size_px: tuple[int, int],
    composer: str = "",
) -> bytes:
    """A PDF with one page per entry of `page_boxes`, each measure drawn as `staves` staves.

    Boxes are in pixels at 100 dpi (as `png_image` draws them); the title and composer are
    written on the first page, a page number on every page.
    """
    width_px, height_px = page_size_px
    scale = 72 / 100  # pixels at 100 dpi to PDF points
    width_pt, height_pt = width_px * scale, height_px * scale
    pages = max(1, len(page_boxes))
    # Objects: 1 catalog, 2 page tree, 3 font, 4 info, then a page and its content per page.
    first_page = 5
    objects: dict[int, bytes] = {}
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(pages))
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode()
    objects[3] = (
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    objects[4] = b"<< /Title " + _pdf_text_string(title) + b" /Producer (imuzekit emulator) >>"
    for index in range(pages):
        page_number, content_number = first_page + 2 * index, first_page + 2 * index + 1
        ops: list[bytes] = []
        if index == 0:
            ops.append(
                b"BT /F3 20 Tf %.2f %.2f Td " % (width_pt / 2 - 4.5 * len(title), height_pt - 72)
                + _pdf_string(title)
                + b" Tj ET"
            )
            if composer:
                ops.append(
                    b"BT /F3 11 Tf %.2f %.2f Td "
                    % (width_pt - 72 - 5.5 * len(composer), height_pt - 100)
                    + _pdf_string(composer)
                    + b" Tj ET"
                )
        ops.append(b"BT /F3 9 Tf %.2f 36 Td (%d) Tj ET" % (width_pt / 2, index + 1))
        ops.append(b"0.5 w")
        boxes = page_boxes[index] if index < len(page_boxes) else ()
        for box in boxes:
            for x0, x1, y in _staff_lines(box, staves):
                ops.append(
                    b"%.2f %.2f m %.2f %.2f l S"
                    % (x0 * scale, height_pt - y * scale, x1 * scale, height_pt - y * scale)
                )
            x, y, w, h = box
            for bar_x in (x, x + w):
                ops.append(
                    b"%.2f %.2f m %.2f %.2f l S"
                    % (
                        bar_x * scale,
                        height_pt - y * scale,
                        bar_x * scale,
                        height_pt - (y + h) * scale,
                    )
                )
        stream = zlib.compress(b"\n".join(ops))
        objects[page_number] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt:.2f} {height_pt:.2f}] "
            f"/Resources << /Font << /F3 3 0 R >> >> /Contents {content_number} 0 R >>"
        ).encode()
        objects[content_number] = (
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
            + stream
            + b"\nendstream"
        )

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number in range(1, len(objects) + 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        # Each entry is exactly 20 bytes: 10-digit offset, 5-digit generation, 'n', EOL.
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


# --------------------------------------------------------------------------------------------
# PNG


PNG_DPI = 100
"""The resolution every page image declares (seed 004: PNG pages are at 100 dpi)."""
_PNG_PPM = round(PNG_DPI / 0.0254)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_image(width: int, height: int, boxes: Sequence[Box], *, staves: int) -> bytes:
    """A transparent grey + alpha PNG with the measures in `boxes` drawn as staves and barlines.

    Box coordinates are in pixels of this image; what falls outside is clipped. The image
    declares `PNG_DPI` in a ``pHYs`` chunk.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    stride = width * 2
    # Transparent white everywhere; lines are opaque dark grey.
    canvas = bytearray(b"\xff\x00" * (width * height))
    ink = b"\x40\xff"

    def hline(x0: float, x1: float, y: float) -> None:
        row = round(y)
        first, last = max(0, round(x0)), min(width - 1, round(x1))
        if 0 <= row < height and first <= last:
            start = row * stride + first * 2
            canvas[start : start + (last - first + 1) * 2] = ink * (last - first + 1)

    def vline(x: float, y0: float, y1: float) -> None:
        column = round(x)
        if not 0 <= column < width:
            return
        for row in range(max(0, round(y0)), min(height - 1, round(y1)) + 1):
            start = row * stride + column * 2
            canvas[start : start + 2] = ink

    for box in boxes:
        lines = list(_staff_lines(box, staves))
        for x0, x1, y in lines:
            hline(x0, x1, y)
        if lines:
            x, _, w, _ = box
            top, bottom = lines[0][2], lines[-1][2]
            vline(x, top, bottom)
            vline(x + w, top, bottom)

    # Filter type 0 (None) on every scanline.
    raw = b"".join(b"\x00" + canvas[row * stride : (row + 1) * stride] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 4, 0, 0, 0)  # 8-bit grey + alpha
    # 100 dots per inch is 3937 pixels per metre (unit 1), the only unit PNG has.
    density = struct.pack(">IIB", _PNG_PPM, _PNG_PPM, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"pHYs", density)
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------------------------
# MIDI


def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


_DIVISION = 480  # ticks per quarter note
_SCALE = (0, 2, 4, 5, 7, 9, 11, 12)
_DRUM_NOTES = (36, 42, 38, 42, 36, 42, 38, 46)  # kick, hi-hat, snare, ..., open hi-hat


_TICKS_PER_MEASURE = 4 * _DIVISION  # every measure is written as 4/4


def _measure_tempos(measure_starts: Sequence[float], duration: float) -> list[int]:
    """Microseconds per quarter of each measure, so that measure i starts at measure_starts[i].

    Tempos are whole microseconds: each one aims at the next boundary from where the previous
    ones really ended, so the rounding never accumulates (every start is within 2 us).
    """
    bounds = [round(start * 1_000_000) for start in measure_starts]
    bounds.append(max(round(duration * 1_000_000), bounds[-1] + 4))
    tempos: list[int] = []
    now = bounds[0]
    for end in bounds[1:]:
        tempo = min(0xFFFFFF, max(1, round((end - now) / 4)))
        tempos.append(tempo)
        now += tempo * 4
    return tempos


def midi_file(
    parts: Sequence[PartSpec],
    *,
    measure_starts: Sequence[float],
    duration: float,
    title: str = "",
) -> bytes:
    """A format-0 MIDI file: measures start at `measure_starts` and end at `duration` (seconds).

    Each measure is a 4/4 bar of 1920 ticks, with its own tempo so that it lasts until the next
    start, a marker (``"Measure N"``) and a quarter note per part at its start; the track ends
    at `duration`. Part i plays on channel i (skipping channel 10, which the drum set uses);
    programs outside 0-127 (the drum set, -1 undefined) send no program change. A first start
    after 0 is preceded by silence (tempo and all).
    """
    starts = list(measure_starts) or [0.0]
    events = bytearray()
    lead = max(0.0, starts[0])
    # A first measure that starts late (never in the catalogue) gets one silent bar before it.
    tempos = _measure_tempos([0.0, *starts] if lead > 0 else starts, duration)
    events += b"\x00\xff\x51\x03" + tempos[0].to_bytes(3, "big")
    events += b"\x00\xff\x58\x04\x04\x02\x18\x08"  # 4/4, 24 clocks a click, 8 32nds a beat
    name = title.encode("latin-1", "replace")[:120]
    if name:
        events += b"\x00\xff\x03" + _vlq(len(name)) + name
    voices: list[tuple[int, int, bool]] = []  # (channel, base pitch, drums)
    melodic = (c for c in range(16) if c != 9)
    for index, (_, program) in enumerate(parts[:15]):
        if program == DRUMSET_PROGRAM:
            voices.append((9, 0, True))
            continue
        channel = next(melodic)
        if 0 <= program <= 127:
            events += bytes((0x00, 0xC0 | channel, program))
        voices.append((channel, 48 + 12 * (index % 3), False))
    pending = 0  # ticks since the last event
    if lead > 0:
        pending = _TICKS_PER_MEASURE
        tempos = tempos[1:]
    for number, tempo in enumerate(tempos, start=1):
        if number > 1 or lead > 0:
            events += _vlq(pending) + b"\xff\x51\x03" + tempo.to_bytes(3, "big")
            pending = 0
        label = b"Measure %d" % number
        events += _vlq(pending) + b"\xff\x06" + _vlq(len(label)) + label
        step = (number - 1) % len(_SCALE)
        for channel, base, drums in voices:
            pitch = _DRUM_NOTES[step] if drums else base + _SCALE[step]
            events += bytes((0x00, 0x90 | channel, pitch, 80))
        for position, (channel, base, drums) in enumerate(voices):
            pitch = _DRUM_NOTES[step] if drums else base + _SCALE[step]
            delta = _DIVISION if position == 0 else 0
            events += _vlq(delta) + bytes((0x80 | channel, pitch, 0))
        pending = _TICKS_PER_MEASURE - (_DIVISION if voices else 0)
    events += _vlq(pending) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, _DIVISION)
    return header + b"MTrk" + struct.pack(">I", len(events)) + bytes(events)


# --------------------------------------------------------------------------------------------
# MusicXML and MuseScore archives


def _zip(entries: Sequence[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, method in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = method
            archive.writestr(info, data)
    return buffer.getvalue()


def _container(rootfile: str, media_type: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<container>\n  <rootfiles>\n'
        f'    <rootfile full-path="{rootfile}" media-type="{media_type}"/>\n'
        "  </rootfiles>\n</container>\n"
    ).encode()


def musicxml_archive(
    title: str, composer: str, parts: Sequence[PartSpec], *, measures: int, keysig: int
) -> bytes:
    """Compressed MusicXML 3.1: every part with `measures` whole-measure rests in 4/4."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        '<score-partwise version="3.1">',
        f"  <work><work-title>{_escape_xml(title)}</work-title></work>",
        "  <identification>",
        f'    <creator type="composer">{_escape_xml(composer)}</creator>',
        "    <encoding><software>imuzekit emulator</software></encoding>",
        "  </identification>",
        "  <part-list>",
    ]
    channels = (c for c in range(1, 17) if c != 10)
    for index, (name, program) in enumerate(parts, start=1):
        drums = program == DRUMSET_PROGRAM
        channel = 10 if drums else next(channels, 16)
        # MusicXML numbers programs from 1; the drum set is program 1 on channel 10.
        midi_program = 1 if drums or program < 0 else program + 1
        lines += [
            f'    <score-part id="P{index}">',
            f"      <part-name>{_escape_xml(name)}</part-name>",
            f'      <midi-instrument id="P{index}-I1">',
            f"        <midi-channel>{channel}</midi-channel>",
            f"        <midi-program>{midi_program}</midi-program>",
            "      </midi-instrument>",
            "    </score-part>",
        ]
    lines.append("  </part-list>")
    for index, _ in enumerate(parts, start=1):
        lines.append(f'  <part id="P{index}">')
        for number in range(1, measures + 1):
            lines.append(f'    <measure number="{number}">')
            if number == 1:
                lines.append(
                    "      <attributes><divisions>1</divisions>"
                    f"<key><fifths>{keysig}</fifths></key>"
                    "<time><beats>4</beats><beat-type>4</beat-type></time>"
                    "<clef><sign>G</sign><line>2</line></clef></attributes>"
                )
            lines.append('      <note><rest measure="yes"/><duration>4</duration></note>')
            lines.append("    </measure>")
        lines.append("  </part>")
    lines.append("</score-partwise>\n")
    return _zip(
        [
            # The MusicXML spec wants `mimetype` first and stored, as in EPUB.
            ("mimetype", b"application/vnd.recordare.musicxml", zipfile.ZIP_STORED),
            (
                "META-INF/container.xml",
                _container("score.musicxml", "application/vnd.recordare.musicxml+xml"),
                zipfile.ZIP_DEFLATED,
            ),
            ("score.musicxml", "\n".join(lines).encode(), zipfile.ZIP_DEFLATED),
        ]
    )


def mscz_archive(
    title: str,
    parts: Sequence[PartSpec],
    *,
    measures: int,
    keysig: int,
    composer: str = "",
    subtitle: str = "",
    poet: str = "",
) -> bytes:
    """A MuseScore 3 file: ``score.mscx`` (metadata tags, parts, one staff per part) zipped.

    `read_mscz` reads back what is written here.
    """
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<museScore version="3.02">',
        "  <Score>",
        f'    <metaTag name="workTitle">{_escape_xml(title)}</metaTag>',
        f'    <metaTag name="subtitle">{_escape_xml(subtitle)}</metaTag>',
        f'    <metaTag name="composer">{_escape_xml(composer)}</metaTag>',
        f'    <metaTag name="lyricist">{_escape_xml(poet)}</metaTag>',
    ]
    for index, (name, program) in enumerate(parts, start=1):
        drums = program == DRUMSET_PROGRAM
        lines += [
            "    <Part>",
            f'      <Staff id="{index}"/>',
            f"      <trackName>{_escape_xml(name)}</trackName>",
            "      <Instrument>",
            f"        <longName>{_escape_xml(name)}</longName>",
            *(["        <useDrumset>1</useDrumset>"] if drums else []),
            # An undefined program (-1) is a channel without one, which reads back as -1.
            f'        <Channel><program value="{0 if drums else program}"/></Channel>'
            if program >= 0
            else "        <Channel/>",
            "      </Instrument>",
            "    </Part>",
        ]
    for index, _ in enumerate(parts, start=1):
        lines.append(f'    <Staff id="{index}">')
        for number in range(measures):
            head = ""
            if number == 0:
                head = (
                    f"<KeySig><accidental>{keysig}</accidental></KeySig>"
                    "<TimeSig><sigN>4</sigN><sigD>4</sigD></TimeSig>"
                )
            lines.append(
                f"      <Measure><voice>{head}<Rest><durationType>measure</durationType>"
                "<duration>4/4</duration></Rest></voice></Measure>"
            )
        lines.append("    </Staff>")
    lines += ["  </Score>", "</museScore>\n"]
    return _zip(
        [
            ("score.mscx", "\n".join(lines).encode(), zipfile.ZIP_DEFLATED),
            (
                "META-INF/container.xml",
                _container("score.mscx", "application/x-musescore+xml"),
                zipfile.ZIP_DEFLATED,
            ),
        ]
    )


def is_zip(data: bytes) -> bool:
    """Whether `data` is a zip archive whose table of contents reads."""
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    return True
