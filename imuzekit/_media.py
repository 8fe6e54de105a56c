"""What a downloadable thing is, and how to recognise its bytes.

Models that carry a file (a ready song, a music, a score file) describe it with a
`DownloadSpec`; the downloader fetches and verifies it. Pure values and functions only.
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["DownloadSpec", "Downloadable", "MediaKind", "looks_like"]


class MediaKind(enum.Enum):
    """The kind of file, which decides the format check applied after download."""

    MP3 = "mp3"
    PDF = "pdf"
    PNG = "png"
    MIDI = "mid"
    ZIP = "zip"  # mxl and mscz are zip containers
    OTHER = "other"


@attrs.frozen
class DownloadSpec:
    """Where a file is and what it should look like.

    ``name`` is a human title used (sanitised) for the file name; ``suffix`` includes the dot.
    ``auth`` tells whether the provider's credentials go with the request (CDN URLs need none).
    """

    url: str
    name: str
    suffix: str
    kind: MediaKind = MediaKind.OTHER
    provider: str = ""
    auth: bool = False
    size: int | None = None
    sha256: str | None = None


@runtime_checkable
class Downloadable(Protocol):
    """A model that can be passed to ``Client.download``."""

    def download_spec(self) -> DownloadSpec:
        """Describe the file (raises ValidationError when it is not available yet)."""
        ...


def _mp3_frame_sync(head: bytes) -> bool:
    if head.startswith(b"ID3") and len(head) >= 10:
        # ID3v2: 10-byte header whose size is a 28-bit synchsafe integer.
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        offset = 10 + size + (10 if head[5] & 0x10 else 0)
        head = head[offset:]
        if not head:
            return True  # the tag is larger than what we inspected; trust the tag
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0


_SIGNATURES: dict[MediaKind, tuple[bytes, ...]] = {
    MediaKind.PDF: (b"%PDF",),
    MediaKind.PNG: (b"\x89PNG\r\n\x1a\n",),
    MediaKind.MIDI: (b"MThd",),
    MediaKind.ZIP: (b"PK\x03\x04",),
}


def looks_like(kind: MediaKind, head: bytes) -> bool:
    """Whether the first bytes of a file (``head``, a few KiB) match ``kind``'s signature.

    For MP3: a frame sync at the start, or after an ID3v2 tag when ``head`` covers the tag.
    """
    if kind is MediaKind.MP3:
        return _mp3_frame_sync(head)
    signatures = _SIGNATURES.get(kind)
    if signatures is None:
        return True
    return any(head.startswith(sig) for sig in signatures)
