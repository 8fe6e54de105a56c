"""The MP3 writer produces streams that mutagen (and a frame walker) read exactly."""

from __future__ import annotations

import io
import tracemalloc

import pytest
from mutagen.mp3 import MP3, BitrateMode

from imuzekit.emulator._mp3 import FRAME_DURATION, frame_count, mp3_bytes, samples_per_frame

_BITRATES = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
_RATES = [44100, 48000, 32000]


def _walk_frames(data: bytes) -> list[int]:
    """Lengths of the MPEG-1 Layer III frames in `data`, decoded from each header."""
    offset = 0
    if data.startswith(b"ID3"):
        size = 0
        for byte in data[6:10]:
            size = (size << 7) | byte
        offset = 10 + size
    lengths = []
    while offset < len(data):
        header = int.from_bytes(data[offset : offset + 4], "big")
        assert header >> 21 == 0x7FF, f"lost frame sync at byte {offset}"
        assert (header >> 19) & 0b11 == 0b11, "not MPEG-1"
        assert (header >> 17) & 0b11 == 0b01, "not Layer III"
        bitrate = _BITRATES[(header >> 12) & 0xF] * 1000
        rate = _RATES[(header >> 10) & 0b11]
        padding = (header >> 9) & 1
        length = 144 * bitrate // rate + padding
        lengths.append(length)
        offset += length
    assert offset == len(data), "stream does not end on a frame boundary"
    return lengths


@pytest.mark.parametrize("duration", [1, 60, 93.5, 0.3])
@pytest.mark.parametrize("title", [None, "Morning Run ☃"])
def test_mutagen_reads_exact_length(duration: float, title: str | None) -> None:
    data = mp3_bytes(duration, id3_title=title)
    info = MP3(io.BytesIO(data)).info
    assert abs(info.length - duration) <= FRAME_DURATION / 2 + 1e-9
    assert info.sample_rate == 44100
    assert info.bitrate_mode == BitrateMode.CBR
    assert abs(info.bitrate - 128_000) <= 128  # within 0.1 %: the padding averages out
    tags = MP3(io.BytesIO(data)).tags
    if title is None:
        assert tags is None
        assert data[:2] == b"\xff\xfb"
    else:
        assert data.startswith(b"ID3\x03")
        assert tags["TIT2"].text == [title]


def test_frames_are_well_formed_and_padded_like_an_encoder() -> None:
    data = mp3_bytes(60)
    lengths = _walk_frames(data)
    assert len(lengths) == frame_count(60) + 1  # plus the Info frame
    assert frame_count(60) == 2297
    assert set(lengths) == {417, 418}
    # 144 * 128000 / 44100 = 417.959...: the average frame size must match it closely.
    assert abs(sum(lengths) / len(lengths) - 144 * 128_000 / 44_100) < 0.01
    info = data[4 + 32 : 4 + 32 + 16]
    assert info[:4] == b"Info"
    assert int.from_bytes(info[8:12], "big") == frame_count(60)
    assert int.from_bytes(info[12:16], "big") == len(data)


def test_other_bitrate_and_sample_rate() -> None:
    data = mp3_bytes(10, bitrate_kbps=320, sample_rate=48000, id3_title="x")
    info = MP3(io.BytesIO(data)).info
    assert info.sample_rate == 48000
    assert info.bitrate == 320_000
    assert abs(info.length - 10) <= 1152 / 48000
    assert set(_walk_frames(data)) == {960}


def test_frame_count_and_constant() -> None:
    assert abs(FRAME_DURATION - 0.0261224) < 1e-7
    assert frame_count(0) == 0
    assert frame_count(1) == 38
    with pytest.raises(ValueError, match="duration"):
        frame_count(-1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bitrate_kbps": 100}, "bitrate_kbps"),
        ({"sample_rate": 11025}, "sample_rate"),  # MPEG-2.5: not written
        ({"sample_rate": 16000, "bitrate_kbps": 320}, "bitrate_kbps"),  # not an MPEG-2 rate
        ({"sample_rate": 44100, "bitrate_kbps": 8}, "bitrate_kbps"),  # not an MPEG-1 rate
    ],
)
def test_rejects_unsupported_parameters(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mp3_bytes(1, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rate", "kbps"), [(16000, 8), (22050, 32), (24000, 160)])
def test_mpeg2_mono_streams_read_exactly(rate: int, kbps: int) -> None:
    # MPEG-2 frames carry 576 samples; 8 kbit/s at 16 kHz is a kilobyte a second.
    data = mp3_bytes(93.5, bitrate_kbps=kbps, sample_rate=rate, id3_title="low")
    info = MP3(io.BytesIO(data)).info
    frames = frame_count(93.5, rate)
    assert frames == round(93.5 * rate / 576) == round(93.5 * rate / samples_per_frame(rate))
    assert abs(info.length - frames * 576 / rate) < 1e-6
    assert (info.bitrate, info.sample_rate, info.channels) == (kbps * 1000, rate, 1)
    assert info.bitrate_mode == BitrateMode.CBR
    tag = MP3(io.BytesIO(data)).tags
    assert tag is not None and str(tag["TIT2"]) == "low"


def test_long_low_rate_audio_is_cheap() -> None:
    # An hour at 8 kbit/s: a kilobyte a second, built without a record per frame.
    tracemalloc.start()
    try:
        data = mp3_bytes(3600, bitrate_kbps=8, sample_rate=16000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(data) == 36 * (frame_count(3600, 16000) + 1)
    assert peak < len(data) * 1.1
