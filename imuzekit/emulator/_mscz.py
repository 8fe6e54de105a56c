"""What an uploaded MuseScore file (``.mscz``) says about itself: title, parts, measures...

MuseScore 1.x, 2.x and 3.x lay their ``.mscx`` out differently (see `read_mscz`); all three are
read. Everything is read with defusedxml and with size caps, so that a hostile upload (a zip
bomb, an entity-expansion attack) costs nothing. Pure: no aiohttp.
"""

from __future__ import annotations

import io
import zipfile
from xml.etree.ElementTree import Element

import attrs
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

__all__ = ["DRUMSET_PROGRAM", "MsczInfo", "PartSpec", "read_mscz"]

DRUMSET_PROGRAM = 128
"""MuseScore.com's program number for a drum set (General MIDI channel 10)."""

PartSpec = tuple[str, int]
"""A part as (name, program): program 0-127 General MIDI, 128 drum set, -1 undefined."""

# Limits on what `read_mscz` reads out of an upload.
_MAX_MSCX_BYTES = 4 * 1024 * 1024
_MAX_ZIP_ENTRIES = 200


@attrs.frozen
class MsczInfo:
    """What an uploaded ``.mscz`` tells about its score (empty values when it does not say)."""

    title: str = ""
    subtitle: str = ""
    composer: str = ""
    poet: str = ""
    parts: tuple[PartSpec, ...] = ()
    measures: int = 0
    keysig: int = 0
    lyrics: bool = False
    chordnames: bool = False


def _text(element: Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        return default


_MAX_CONTAINER_BYTES = 64 * 1024
# What a title frame's text is called: <subtype> in 1.x, <style> in 2.x ("Title") and 3.x
# ("title"); poets became lyricists in 3.x.
_FRAME_TEXTS = {"title": "title", "subtitle": "subtitle", "composer": "composer"}
_FRAME_TEXTS |= {"poet": "poet", "lyricist": "poet"}


def _mscx_entry(archive: zipfile.ZipFile) -> zipfile.ZipInfo | None:
    """The score a ``.mscz`` holds: the container's root file, else its first ``.mscx``."""
    infos = archive.infolist()[:_MAX_ZIP_ENTRIES]
    by_name = {info.filename: info for info in infos}
    container = by_name.get("META-INF/container.xml")
    if container is not None and container.file_size <= _MAX_CONTAINER_BYTES:
        try:
            with archive.open(container) as member:
                root = SafeET.fromstring(member.read(_MAX_CONTAINER_BYTES + 1))
        except (SafeET.ParseError, DefusedXmlException, ValueError):
            root = None
        if root is not None:
            for rootfile in root.iter("rootfile"):
                info = by_name.get(rootfile.get("full-path", ""))
                if info is not None and info.filename.endswith(".mscx"):
                    return info
    return next((info for info in infos if info.filename.endswith(".mscx")), None)


def _plain(element: Element) -> str:
    """The text of `element` and its children, whitespace collapsed (formatting dropped)."""
    return " ".join("".join(element.itertext()).split())


def _frame_text(text: Element) -> str:
    """What a frame's ``<Text>`` says: 1.x keeps rich text as HTML, 2.x and up as ``<text>``."""
    html = text.find("html-data")
    if html is not None:
        # The HTML's <head> holds a style sheet: only the <body> is the text.
        body = html.find(".//body")
        return _plain(body if body is not None else html)
    node = text.find("text")
    return _plain(node) if node is not None else ""


def _frame_texts(staff: Element | None) -> dict[str, str]:
    """Title, subtitle, composer and poet from the frames (``<VBox>``) of the first staff."""
    found: dict[str, str] = {}
    if staff is None:
        return found
    for box in staff.findall("VBox"):
        for text in box.findall("Text"):
            kind = _text(text.find("subtype")) or _text(text.find("style"))
            key = _FRAME_TEXTS.get(kind.lower())
            if key is not None and key not in found:
                value = _frame_text(text)
                if value:
                    found[key] = value
    return found


def _part_spec(part: Element) -> PartSpec:
    """A ``<Part>``'s name and program, wherever its generation keeps them."""
    instrument = part.find("Instrument")
    name = _text(part.find("trackName"))  # 2.x and up
    if instrument is not None:
        name = name or _text(instrument.find("trackName"))  # 1.x
        long_name = instrument.find("longName")
        name = name or (_frame_text(long_name) or _text(long_name) if long_name is not None else "")
    long_name = part.find("name")  # 1.x: the long name as rich text
    if not name and long_name is not None:
        name = _frame_text(long_name)
    program = -1
    if instrument is not None:
        if _text(instrument.find("useDrumset")) == "1":
            program = DRUMSET_PROGRAM
        else:
            node = instrument.find("Channel/program")
            if node is not None:
                program = min(127, max(-1, _int(node.get("value"), -1)))
    return (name or "Part", program)


def read_mscz(data: bytes) -> MsczInfo | None:
    """Read the metadata of a MuseScore file; None if it holds no readable ``.mscx``.

    MuseScore 1.x, 2.x and 3.x files are read: the score is the container's root file (else
    the first ``.mscx``); its parts and staves sit in ``<Score>`` (2.x and up) or directly in
    ``<museScore>`` (1.x); the title is the ``workTitle`` meta tag or, when that is empty, the
    title frame's text. At most 4 MB of the score are read, with defusedxml (no entity
    expansion, no external references): an upload cannot make the emulator work hard.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entry = _mscx_entry(archive)
            if entry is None:
                return None
            with archive.open(entry) as member:
                raw = member.read(_MAX_MSCX_BYTES + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
        return None
    if len(raw) > _MAX_MSCX_BYTES:
        return None
    try:
        root = SafeET.fromstring(raw)
    except (SafeET.ParseError, DefusedXmlException, ValueError):
        return None
    score = root.find("Score")
    if score is None and root.tag == "museScore" and root.find("Part") is not None:
        score = root  # MuseScore 1.x: no <Score> element
    if score is None:
        return None
    tags = {tag.get("name", ""): _text(tag) for tag in score.findall("metaTag")}
    parts = tuple(_part_spec(part) for part in score.findall("Part"))
    # The staves that hold the music (the <Staff> inside a <Part> only describes one).
    staves = score.findall("Staff")
    frames = _frame_texts(staves[0] if staves else None)
    measures = len(staves[0].findall("Measure")) if staves else 0
    key = score.find(".//KeySig/accidental")
    return MsczInfo(
        title=tags.get("workTitle", "") or frames.get("title", ""),
        subtitle=tags.get("subtitle", "") or frames.get("subtitle", ""),
        composer=tags.get("composer", "") or frames.get("composer", ""),
        poet=tags.get("lyricist", "") or tags.get("poet", "") or frames.get("poet", ""),
        parts=parts,
        measures=measures,
        keysig=min(7, max(-7, _int(key.text if key is not None else None))),
        lyrics=score.find(".//Lyrics") is not None,
        chordnames=score.find(".//Harmony") is not None,
    )
