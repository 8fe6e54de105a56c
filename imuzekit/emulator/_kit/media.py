"""Files the providers serve: silent MP3s shared between items of one length, a cover image.

Pure: no aiohttp.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping

import attrs

from imuzekit.emulator._mp3 import Audio, AudioCache, mp3_bytes

__all__ = ["COVER_PNG", "AudioStore"]

COVER_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
    "0000000a49444154789c636800000082008177cd72b60000000049454e44ae426082"
)
"""A valid 1x1 grey PNG, served as every cover so that image URLs stay on the emulator."""


@attrs.define
class AudioStore:
    """Rendered files of one provider, each rendered once and kept within a byte limit.

    A thin layer over `AudioCache` (least recently used first out): `mp3` keys a silent MP3 by
    everything that shapes its bytes, so two songs of one length share one file.
    """

    _cache: AudioCache = attrs.field(factory=AudioCache, init=False)

    def mp3(
        self,
        seconds: float,
        *,
        bitrate_kbps: int,
        limit: int,
        title: str,
        id3_text: Mapping[str, str] | None = None,
        id3_user_text: Mapping[str, str] | None = None,
    ) -> Audio:
        """The silent MP3 lasting `seconds` with these tags, rendered on first use."""
        key = (
            seconds,
            bitrate_kbps,
            title,
            tuple(sorted((id3_text or {}).items())),
            tuple(sorted((id3_user_text or {}).items())),
        )
        return self._cache.get(
            key,
            lambda: mp3_bytes(
                seconds,
                bitrate_kbps=bitrate_kbps,
                id3_title=title,
                id3_text=id3_text,
                id3_user_text=id3_user_text,
            ),
            limit=limit,
        )

    def file(self, key: Hashable, render: Callable[[], bytes], *, limit: int) -> Audio:
        """Any other rendered file (a PDF, a PNG...) under `key`, rendered on first use."""
        return self._cache.get(key, render, limit=limit)
