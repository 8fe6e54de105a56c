"""The emulated MuseScore.com's static files: every format is a valid file of its kind (PDF
structure and xref offsets, PNG chunks and CRCs, MIDI events, MusicXML and MuseScore zips, MP3
through mutagen), headers, Range and the 404s. Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import io
import re
import struct
import xml.etree.ElementTree as ET
import zipfile
import zlib
from typing import Any

import aiohttp
import pytest
from mutagen.mp3 import MP3

from imuzekit.emulator import Emulator
from imuzekit.emulator._files import MsczInfo, midi_file, mscz_archive, read_mscz
from imuzekit.emulator.musescore import MuseScoreScore, MuseScoreState


def static_url(emu: Emulator, score: MuseScoreScore, name: str, secret: str | None = None) -> str:
    """URL of a score's static file."""
    return f"{emu.urls['musescore_static']}/{score.id}/{secret or score.secret}/{name}"


def pick(ms: MuseScoreState, *, program: int | None = None, min_pages: int = 1) -> MuseScoreScore:
    """A public score with a part of `program` and at least `min_pages` pages."""
    return next(
        s
        for s in ms.scores.values()
        if s.sharing == "public"
        and s.metadata.pages >= min_pages
        and (program is None or program in s.metadata.programs)
    )


async def fetch(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any, bytes]:
    """Status, headers and body of a GET."""
    async with session.get(url, **kwargs) as response:
        return response.status, response.headers, await response.read()


# --- validators -----------------------------------------------------------------------------


def check_pdf(data: bytes) -> int:
    """Check the structure of a PDF (header, xref offsets, trailer, streams); return its pages."""
    assert data.startswith(b"%PDF-1.4\n")
    assert data.endswith(b"%%EOF\n")
    match = re.search(rb"startxref\n(\d+)\n%%EOF\n$", data)
    assert match is not None
    xref = int(match.group(1))
    assert data[xref : xref + 5] == b"xref\n"
    header = re.match(rb"xref\n0 (\d+)\n", data[xref:])
    assert header is not None
    size = int(header.group(1))
    entries = data[xref + header.end() :].split(b"trailer", 1)[0]
    assert len(entries) == size * 20  # fixed-width entries
    for number in range(1, size):
        entry = entries[number * 20 : number * 20 + 20]
        assert entry.endswith(b" 00000 n \n")
        offset = int(entry[:10])
        assert data[offset:].startswith(b"%d 0 obj\n" % number)
    assert f"/Size {size} /Root 1 0 R".encode() in data
    for stream in re.finditer(rb"<< /Length (\d+) /Filter /FlateDecode >>\nstream\n", data):
        length = int(stream.group(1))
        body = data[stream.end() : stream.end() + length]
        assert data[stream.end() + length :].startswith(b"\nendstream")
        assert b" l S" in zlib.decompress(body)
    pages = len(re.findall(rb"/Type /Page ", data))
    count = re.search(rb"/Type /Pages /Kids \[[^\]]*\] /Count (\d+)", data)
    assert count is not None and int(count.group(1)) == pages
    return pages


def check_png(data: bytes) -> tuple[int, int, bytes]:
    """Check a PNG's chunks and CRCs; return width, height and the raw scanlines."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position = 8
    kinds: list[bytes] = []
    idat = b""
    width = height = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        kinds.append(kind)
        if kind == b"IHDR":
            width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", body)
            assert (depth, colour) == (8, 4)  # 8-bit grey + alpha
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + width * 2)
    assert all(raw[row * (1 + width * 2)] == 0 for row in range(height))  # filter bytes
    return width, height, raw


def read_vlq(data: bytes, position: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[position]
        position += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, position


def midi_events(data: bytes) -> list[tuple[int, ...]]:
    """Parse a format-0 MIDI file into (status, *data) events (meta events as (0xFF, type))."""
    assert data[:4] == b"MThd"
    length, fmt, tracks, division = struct.unpack(">IHHH", data[4:14])
    assert (length, fmt, tracks, division) == (6, 0, 1, 480)
    assert data[14:18] == b"MTrk"
    (track_length,) = struct.unpack(">I", data[18:22])
    track = data[22:]
    assert len(track) == track_length
    events: list[tuple[int, ...]] = []
    position = 0
    while position < len(track):
        _, position = read_vlq(track, position)
        status = track[position]
        assert status & 0x80, "no running status in these files"
        position += 1
        if status == 0xFF:
            kind = track[position]
            size, position = read_vlq(track, position + 1)
            events.append((0xFF, kind))
            position += size
        elif status & 0xF0 in (0xC0, 0xD0):
            events.append((status, track[position]))
            position += 1
        else:
            events.append((status, track[position], track[position + 1]))
            position += 2
    assert events[-1] == (0xFF, 0x2F)
    return events


# --- tests ----------------------------------------------------------------------------------


async def test_pdf_has_one_page_per_score_page(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    score = pick(emu.musescore, min_pages=3)
    status, headers, data = await fetch(anon, static_url(emu, score, "score.pdf"))
    assert status == 200
    assert headers["Content-Type"] == "application/pdf"
    assert int(headers["Content-Length"]) == len(data)
    assert check_pdf(data) == score.metadata.pages
    assert data == emu.musescore.file_bytes(score.id, "score.pdf")


async def test_png_pages_and_thumbnail(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    score = pick(emu.musescore, min_pages=2)
    width_mm, height_mm = (int(v) for v in score.metadata.dimensions.split("x"))
    for page in range(score.metadata.pages):
        status, headers, data = await fetch(anon, static_url(emu, score, f"score_{page}.png"))
        assert (status, headers["Content-Type"]) == (200, "image/png")
        width, height, raw = check_png(data)
        # 100 dpi, as the reference says of its PNGs.
        assert (width, height) == (round(width_mm / 25.4 * 100), round(height_mm / 25.4 * 100))
        stride = 1 + width * 2
        alphas = b"".join(raw[row * stride + 2 : (row + 1) * stride : 2] for row in range(height))
        assert alphas.count(0xFF) > 100  # the staves
        assert alphas.count(0) > len(alphas) * 0.8  # a transparent page
    status, _, data = await fetch(anon, static_url(emu, score, "thumb.png"))
    width, height, _ = check_png(data)
    assert (status, width) == (200, 200)
    assert abs(height / width - height_mm / width_mm) < 0.02


@pytest.mark.parametrize("program", [0, 128, -1])
async def test_midi_has_a_program_change_per_part(
    emu: Emulator, anon: aiohttp.ClientSession, program: int
) -> None:
    score = pick(emu.musescore, program=program)
    status, headers, data = await fetch(anon, static_url(emu, score, "score.mid"))
    assert (status, headers["Content-Type"]) == (200, "audio/midi")
    events = midi_events(data)
    assert events[0] == (0xFF, 0x51)  # tempo first
    changes = [e for e in events if e[0] & 0xF0 == 0xC0]
    melodic = [p.program for p in score.metadata.parts if 0 <= p.program <= 127]
    assert [e[1] for e in changes] == melodic[:15]
    assert all(e[0] & 0x0F != 9 for e in changes)  # channel 10 is the drum set's
    notes_on = [e for e in events if e[0] & 0xF0 == 0x90]
    notes_off = [e for e in events if e[0] & 0xF0 == 0x80]
    # A note per part in every measure (it used to be one 8-note phrase for the whole score).
    assert (
        len(notes_on)
        == len(notes_off)
        == (score.metadata.measures * min(15, len(score.metadata.parts)))
    )
    markers = [e for e in events if e == (0xFF, 0x06)]
    assert len(markers) == score.metadata.measures
    drum_channel = any(e[0] == 0x99 for e in notes_on)
    assert drum_channel == (128 in score.metadata.programs)


async def test_mxl_is_compressed_musicxml(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    score = pick(emu.musescore, program=128)
    status, headers, data = await fetch(anon, static_url(emu, score, "score.mxl"))
    assert (status, headers["Content-Type"]) == (200, "application/vnd.recordare.musicxml")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        first = archive.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
        assert archive.read("mimetype") == b"application/vnd.recordare.musicxml"
        container = ET.fromstring(archive.read("META-INF/container.xml"))
        rootfile = container.find("rootfiles/rootfile")
        assert rootfile is not None
        document = ET.fromstring(archive.read(rootfile.get("full-path", "")))
    assert document.tag == "score-partwise"
    assert document.findtext("work/work-title") == score.metadata.title
    score_parts = document.findall("part-list/score-part")
    assert [p.findtext("part-name") for p in score_parts] == [
        part.name for part in score.metadata.parts
    ]
    for element, part in zip(score_parts, score.metadata.parts, strict=True):
        channel = element.findtext("midi-instrument/midi-channel")
        program = element.findtext("midi-instrument/midi-program")
        if part.program == 128:
            assert (channel, program) == ("10", "1")
        else:
            assert program == str(max(part.program, 0) + 1)  # MusicXML counts from 1
    parts = document.findall("part")
    assert len(parts) == len(score.metadata.parts)
    assert all(len(p.findall("measure")) == score.metadata.measures for p in parts)


async def test_mscz_reads_back_as_the_score(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    score = pick(ms, program=128)
    status, headers, data = await fetch(anon, static_url(emu, score, "score.mscz"))
    assert (status, headers["Content-Type"]) == (200, "application/x-musescore")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert "score.mscx" in archive.namelist()
    meta = score.metadata
    info = read_mscz(data)
    assert info == MsczInfo(
        title=meta.title,
        subtitle=meta.subtitle or "",
        composer=meta.composer or "",
        poet=meta.poet or "",
        parts=tuple((p.name, p.program) for p in meta.parts),
        measures=meta.measures,
        keysig=meta.keysig,
    )


async def test_mp3_lasts_the_whole_score(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    # No cap any more (it was two minutes): MPEG-2 mono at 8 kbit/s, a kilobyte a second.
    ms = emu.musescore
    short = next(
        s for s in ms.scores.values() if s.sharing == "public" and s.metadata.duration < 60
    )
    long = max(
        (s for s in ms.scores.values() if s.sharing == "public"),
        key=lambda s: s.metadata.duration,
    )
    assert long.metadata.duration > 600
    for score in (short, long):
        seconds = score.metadata.duration
        status, headers, data = await fetch(anon, static_url(emu, score, "score.mp3"))
        assert (status, headers["Content-Type"]) == (200, "audio/mpeg")
        info = MP3(io.BytesIO(data)).info
        assert (info.bitrate, info.sample_rate, info.channels) == (8000, 16000, 1)
        assert abs(info.length - seconds) <= 576 / 16000
        assert len(data) < seconds * 1000 + 4096


async def test_headers_range_and_conditional_requests(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    score = pick(emu.musescore)
    url = static_url(emu, score, "score.pdf")
    full = emu.musescore.file_bytes(score.id, "score.pdf")
    status, headers, data = await fetch(anon, url)
    assert status == 200 and data == full
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Length"] == str(len(full))
    etag = headers["ETag"]
    status, headers, data = await fetch(anon, url, headers={"Range": "bytes=10-109"})
    assert (status, data) == (206, full[10:110])
    assert headers["Content-Range"] == f"bytes 10-109/{len(full)}"
    status, _, data = await fetch(anon, url, headers={"Range": "bytes=-6"})
    assert (status, data) == (206, b"%%EOF\n")
    status, headers, _ = await fetch(anon, url, headers={"Range": f"bytes={len(full)}-"})
    assert (status, headers["Content-Range"]) == (416, f"bytes */{len(full)}")
    status, _, _ = await fetch(anon, url, headers={"If-None-Match": etag})
    assert status == 304
    async with anon.head(url) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == str(len(full))
        assert await response.read() == b""


async def test_wrong_secret_page_or_name_is_404(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    score = pick(ms)
    pages = score.metadata.pages
    urls = [
        static_url(emu, score, "score.pdf", secret="0123456789"),
        static_url(emu, score, "score.pdf", secret=score.secret.upper()),
        static_url(emu, score, f"score_{pages}.png"),
        static_url(emu, score, "score_01.png"),
        static_url(emu, score, "score_-1.png"),
        static_url(emu, score, "score.txt"),
        static_url(emu, score, "thumb.jpg"),
        f"{emu.urls['musescore_static']}/999999999/{score.secret}/score.pdf",
        f"{emu.urls['musescore_static']}/{score.id}/score.pdf",
    ]
    for url in urls:
        status, headers, _ = await fetch(anon, url)
        assert status == 404, url
        assert headers["Content-Type"].startswith("application/json")
    # Private scores' files are reachable with their secret: the secret is the key.
    hidden = next(s for s in ms.scores.values() if s.sharing == "private")
    status, _, _ = await fetch(anon, static_url(emu, hidden, "thumb.png"))
    assert status == 200
    with pytest.raises(KeyError):
        ms.file_bytes(score.id, f"score_{pages}.png")
    with pytest.raises(KeyError):
        ms.file_bytes(999_999_999, "score.pdf")


async def test_files_are_deterministic_and_cached(emu: Emulator) -> None:
    score = pick(emu.musescore, min_pages=2)
    names = ["score.pdf", "score.mid", "score.mxl", "score.mscz", "score_1.png", "thumb.png"]
    first = {name: emu.musescore.file_bytes(score.id, name) for name in names}
    assert all(emu.musescore.file_bytes(score.id, name) is first[name] for name in names)
    async with Emulator(seed=0) as twin:
        assert {name: twin.musescore.file_bytes(score.id, name) for name in names} == first


def zip_with(name: str, data: bytes) -> bytes:
    """A zip holding one entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<museScore><Score><metaTag name="workTitle">&lol3;</metaTag></Score></museScore>"""


@pytest.mark.parametrize(
    "data",
    [
        b"not a zip",
        b"PK\x03\x04 truncated",
        zip_with("readme.txt", b"hello"),
        zip_with("score.mscx", b"<museScore><Score>"),
        zip_with("score.mscx", b"<other/>"),
        zip_with("score.mscx", BILLION_LAUGHS),
        zip_with("score.mscx", b"<museScore>" + b" " * (5 * 1024 * 1024) + b"</museScore>"),
    ],
    ids=["text", "truncated", "no-mscx", "broken-xml", "no-score", "entities", "too-big"],
)
def test_read_mscz_refuses_what_it_cannot_read(data: bytes) -> None:
    assert read_mscz(data) is None


def test_read_mscz_round_trip_with_odd_text() -> None:
    data = mscz_archive(
        'Héléna <"&"> \u266d', [("Drumset", 128), ("Staff", -1)], measures=3, keysig=-7
    )
    info = read_mscz(data)
    assert info is not None
    assert info.title == 'Héléna <"&"> \u266d'
    assert info.parts == (("Drumset", 128), ("Staff", -1))
    assert (info.measures, info.keysig) == (3, -7)


def test_read_mscz_follows_the_container_to_the_score() -> None:
    # A .mscz names its score in META-INF/container.xml; other .mscx entries (excerpts) are not it.
    container = b'<container><rootfiles><rootfile full-path="main.mscx"/></rootfiles></container>'
    score = b'<museScore><Score><metaTag name="workTitle">Main</metaTag></Score></museScore>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("excerpt.mscx", b"<museScore><Score/></museScore>")
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("main.mscx", score)
    info = read_mscz(buffer.getvalue())
    assert info is not None and info.title == "Main"


def test_midi_with_a_late_first_measure_keeps_the_starts() -> None:
    # A first measure after 0 s gets a silent bar before it; the markers still land on time.
    data = midi_file([("Piano", 0)], measure_starts=[0.5, 1.7, 3.0], duration=4.25)
    events = midi_events(data)
    assert events.count((0xFF, 0x06)) == 3
    assert events.count((0xFF, 0x51)) == 4  # the silent bar and three measures
