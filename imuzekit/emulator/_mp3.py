"""A pure-Python MPEG Layer III (MP3) writer for the emulator's audio files.

MPEG-1 (32, 44.1 and 48 kHz, joint stereo) and MPEG-2 (16, 22.05 and 24 kHz, mono, down to
8 kbit/s: long audio at one kilobyte a second) are both written. The frames are silent
(all-zero side information and main data), which every decoder plays as silence, but the
stream is otherwise real: constant bitrate, correct per-frame padding, and a leading Xing
"Info" frame carrying the frame and byte counts so that players and tag readers (mutagen and
ffprobe among them) report the exact duration instead of estimating it from the file size.

Layout of `mp3_bytes(...)`:

    [ID3v2.3 tag]             optional: TIT2, other text frames, TXXX
    [Info frame]              a silent frame whose side-info gap holds "Info", frames, bytes
    [audio frame] * N         N = frame_count(duration); the Info frame is not counted in N
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping

import attrs

__all__ = [
    "BITRATES_KBPS",
    "FRAME_DURATION",
    "LSF_BITRATES_KBPS",
    "LSF_SAMPLE_RATES",
    "SAMPLES_PER_FRAME",
    "SAMPLE_RATES",
    "Audio",
    "AudioCache",
    "frame_count",
    "id3v2_tag",
    "mp3_bytes",
    "samples_per_frame",
]

SAMPLES_PER_FRAME = 1152
"""PCM samples carried by one MPEG-1 Layer III frame."""

FRAME_DURATION = SAMPLES_PER_FRAME / 44100
"""Duration of one frame at 44.1 kHz, in seconds (about 26.12 ms)."""

BITRATES_KBPS: dict[int, int] = {
    32: 1, 40: 2, 48: 3, 56: 4, 64: 5, 80: 6, 96: 7, 112: 8,
    128: 9, 160: 10, 192: 11, 224: 12, 256: 13, 320: 14,
}  # fmt: skip
"""MPEG-1 Layer III bitrates (kbit/s) and their 4-bit header index."""

SAMPLE_RATES: dict[int, int] = {44100: 0, 48000: 1, 32000: 2}
"""MPEG-1 sample rates (Hz) and their 2-bit header index."""

LSF_BITRATES_KBPS: dict[int, int] = {
    8: 1, 16: 2, 24: 3, 32: 4, 40: 5, 48: 6, 56: 7, 64: 8,
    80: 9, 96: 10, 112: 11, 128: 12, 144: 13, 160: 14,
}  # fmt: skip
"""MPEG-2 ("low sampling frequencies") Layer III bitrates (kbit/s) and their header index."""

LSF_SAMPLE_RATES: dict[int, int] = {22050: 0, 24000: 1, 16000: 2}
"""MPEG-2 sample rates (Hz) and their 2-bit header index."""

# MPEG-1 frames are joint stereo, what encoders emit by default (32 bytes of side info);
# MPEG-2 frames are mono (9 bytes), so that even an 8 kbit/s frame holds the Info tag.
_CHANNEL_MODE_JOINT_STEREO = 0b01
_CHANNEL_MODE_MONO = 0b11
_HEADER_BYTES = 4
_BLOCK_FRAMES = 1024


def samples_per_frame(sample_rate: int = 44100) -> int:
    """PCM samples in one frame: 1152 for MPEG-1 rates, 576 for MPEG-2 ones."""
    return SAMPLES_PER_FRAME if sample_rate in SAMPLE_RATES else SAMPLES_PER_FRAME // 2


def frame_count(duration_seconds: float, sample_rate: int = 44100) -> int:
    """Number of audio frames `mp3_bytes` writes for `duration_seconds` (Info frame excluded)."""
    if not duration_seconds >= 0:
        raise ValueError(f"duration must be >= 0 seconds, got {duration_seconds!r}")
    return round(duration_seconds * sample_rate / samples_per_frame(sample_rate))


def _header(bitrate_index: int, rate_index: int, padding: int, *, mpeg1: bool = True) -> bytes:
    # 11 sync bits, MPEG-1 (11) or MPEG-2 (10), Layer III (01), no CRC (1), then
    # bitrate/rate/padding, private 0, channel mode, mode extension 0, not copyrighted,
    # original, no emphasis.
    mode = _CHANNEL_MODE_JOINT_STEREO if mpeg1 else _CHANNEL_MODE_MONO
    word = (
        (0x7FF << 21)
        | ((0b11 if mpeg1 else 0b10) << 19)
        | (0b01 << 17)
        | (1 << 16)
        | (bitrate_index << 12)
        | (rate_index << 10)
        | (padding << 9)
        | (mode << 6)
        | (1 << 2)
    )
    return word.to_bytes(4, "big")


def _syncsafe(size: int) -> bytes:
    return bytes(((size >> shift) & 0x7F) for shift in (21, 14, 7, 0))


def _encoded(*texts: str) -> bytes:
    """Encoding byte plus `texts`, each NUL-terminated but the last, as ID3v2.3 text frames hold."""
    try:
        return b"\x00" + b"\x00".join(text.encode("latin-1") for text in texts)
    except UnicodeEncodeError:
        # UTF-16 with a byte-order mark per string, and a two-byte terminator.
        return b"\x01" + b"\x00\x00".join(text.encode("utf-16") for text in texts)


def _frame(frame_id: str, payload: bytes) -> bytes:
    return frame_id.encode("ascii") + struct.pack(">IH", len(payload), 0) + payload


def id3v2_tag(
    title: str | None = None,
    *,
    text: Mapping[str, str] | None = None,
    user_text: Mapping[str, str] | None = None,
) -> bytes:
    """Return an ID3v2.3 tag: TIT2 (`title`), other text frames, and TXXX user text frames.

    `text` maps standard text frame ids (``"TBPM"``, ``"TCON"``, ...) to their value;
    `user_text` maps TXXX descriptions to values (mutagen reads them as ``tags["TXXX:<desc>"]``).
    Latin-1 text is stored as ISO-8859-1, anything else as UTF-16 with a byte-order mark, the
    two encodings ID3v2.3 allows.
    """
    frames: list[bytes] = []
    if title is not None:
        frames.append(_frame("TIT2", _encoded(title)))
    for frame_id, value in (text or {}).items():
        if len(frame_id) != 4 or not frame_id.isascii() or not frame_id.startswith("T"):
            raise ValueError(f"not an ID3v2.3 text frame id: {frame_id!r}")
        frames.append(_frame(frame_id, _encoded(value)))
    for description, value in (user_text or {}).items():
        frames.append(_frame("TXXX", _encoded(description, value)))
    if not frames:
        raise ValueError("an ID3 tag needs at least one frame")
    body = b"".join(frames)
    if len(body) >= 1 << 28:
        raise ValueError("ID3 tag too long")
    return b"ID3\x03\x00\x00" + _syncsafe(len(body)) + body


def mp3_bytes(
    duration_seconds: float,
    *,
    bitrate_kbps: int = 128,
    sample_rate: int = 44100,
    id3_title: str | None = None,
    id3_text: Mapping[str, str] | None = None,
    id3_user_text: Mapping[str, str] | None = None,
) -> bytes:
    """Return a valid, silent MPEG Layer III CBR stream lasting `duration_seconds`.

    The stream holds `frame_count(duration_seconds, sample_rate)` audio frames after a Xing
    "Info" frame (frame and byte counts), optionally preceded by an ID3v2.3 tag holding
    `id3_title`, the `id3_text` frames and the `id3_user_text` TXXX frames (see `id3v2_tag`).
    Its duration is therefore exact to within half a frame (`FRAME_DURATION / 2` at 44.1 kHz).
    MPEG-1 rates (`SAMPLE_RATES`) take `BITRATES_KBPS`; MPEG-2 rates (`LSF_SAMPLE_RATES`, mono)
    take `LSF_BITRATES_KBPS`.

    The audio frames are references to two prebuilt frames (with and without padding), joined
    once: an hour of audio costs its bytes and a pointer per frame, no more.
    """
    mpeg1 = sample_rate in SAMPLE_RATES
    bitrates = BITRATES_KBPS if mpeg1 else LSF_BITRATES_KBPS
    rates = SAMPLE_RATES if mpeg1 else LSF_SAMPLE_RATES
    if sample_rate not in SAMPLE_RATES and sample_rate not in LSF_SAMPLE_RATES:
        raise ValueError(f"sample_rate must be one of {sorted([*SAMPLE_RATES, *LSF_SAMPLE_RATES])}")
    try:
        bitrate_index = bitrates[bitrate_kbps]
    except KeyError:
        raise ValueError(
            f"bitrate_kbps must be one of {sorted(bitrates)} at {sample_rate} Hz"
        ) from None
    rate_index = rates[sample_rate]
    audio_frames = frame_count(duration_seconds, sample_rate)

    # Frame length is 144 (MPEG-1) or 72 (MPEG-2) * bitrate / sample_rate bytes, a fraction at
    # 44.1 kHz: a padding byte is added whenever the accumulated remainder crosses a whole
    # byte, as encoders do, so the average frame size (and so the real bitrate) is exact.
    numerator = (144 if mpeg1 else 72) * bitrate_kbps * 1000
    base_size, remainder = divmod(numerator, sample_rate)
    frames = [
        _header(bitrate_index, rate_index, 0, mpeg1=mpeg1) + bytes(base_size - _HEADER_BYTES),
        _header(bitrate_index, rate_index, 1, mpeg1=mpeg1) + bytes(base_size + 1 - _HEADER_BYTES),
    ]
    if remainder:
        paddings = bytearray(audio_frames + 1)
        accumulated = 0
        for index in range(audio_frames + 1):
            accumulated += remainder
            if accumulated >= sample_rate:
                accumulated -= sample_rate
                paddings[index] = 1
        padding_count = sum(paddings)
    else:
        paddings = None
        padding_count = 0
    total_bytes = base_size * (audio_frames + 1) + padding_count

    info = bytearray(frames[paddings[0] if paddings else 0])
    # The Xing tag follows the side information: 32 or 17 bytes (MPEG-1 stereo or mono),
    # 17 or 9 (MPEG-2).
    offset = _HEADER_BYTES + (32 if mpeg1 else 9)
    # Flags 0x1 | 0x2: the frame count and the byte count fields are present.
    info[offset : offset + 16] = b"Info" + struct.pack(">III", 0x3, audio_frames, total_bytes)

    parts: list[bytes] = []
    if id3_title is not None or id3_text or id3_user_text:
        parts.append(id3v2_tag(id3_title, text=id3_text, user_text=id3_user_text))
    parts.append(bytes(info))
    if paddings is None:
        # Every frame is the same: blocks of 1024 frames, repeated. One reference per frame
        # would cost `bytes.join` a buffer record (~80 bytes) each, more than a frame's bytes.
        whole, rest = divmod(audio_frames, _BLOCK_FRAMES)
        if whole:
            parts.extend(itertools.repeat(frames[0] * _BLOCK_FRAMES, whole))
        parts.append(frames[0] * rest)
    else:
        parts.extend(frames[pad] for pad in paddings[1:])
    return b"".join(parts)


@attrs.frozen
class Audio:
    """A rendered file the emulator serves: its bytes, their SHA-256 and an ETag."""

    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    sha256: str
    etag: str

    @classmethod
    def of(cls, data: bytes) -> Audio:
        """Wrap ``data`` with its digest and an ETag derived from it."""
        digest = hashlib.sha256(data).hexdigest()
        return cls(data, digest, f'"{digest[:32]}"')


@attrs.define
class AudioCache:
    """Rendered files by key; the least recently used go once the total passes a limit.

    Thousands of songs share a few durations, so rendering each distinct file once keeps big
    runs cheap; the byte limit keeps a long-running emulator's memory bounded.
    """

    _entries: OrderedDict[Hashable, Audio] = attrs.field(factory=OrderedDict, init=False)
    _size: int = attrs.field(default=0, init=False)

    def get(self, key: Hashable, render: Callable[[], bytes], *, limit: int) -> Audio:
        """The cached file for ``key``, rendering it with ``render()`` on a miss."""
        audio = self._entries.get(key)
        if audio is not None:
            self._entries.move_to_end(key)
            return audio
        audio = Audio.of(render())
        self._entries[key] = audio
        self._size += len(audio.data)
        # Keep the newest entry even if it alone exceeds the limit: it is about to be served.
        while self._size > limit and len(self._entries) > 1:
            _, evicted = self._entries.popitem(last=False)
            self._size -= len(evicted.data)
        return audio
