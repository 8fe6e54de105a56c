"""Provider configurations pointing at a running emulator, shared by the test packages."""

from __future__ import annotations

from typing import Any

from imuzekit import MuseScoreConfig
from imuzekit.emulator import Emulator


def musescore_config(emu: Emulator, **overrides: Any) -> MuseScoreConfig:
    """The emulator's demo MuseScore configuration (consumer and user token), with overrides."""
    extra = emu.credentials["musescore"].extra
    values: dict[str, Any] = {
        "consumer_key": extra["consumer_key"],
        "consumer_secret": extra["consumer_secret"],
        "token": extra["token"],
        "token_secret": extra["token_secret"],
        "base_url": emu.urls["musescore"],
        "oauth_url": emu.urls["musescore_oauth"],
        "authorize_url": emu.urls["musescore_authorize"],
        "static_url": emu.urls["musescore_static"],
        "oembed_url": emu.urls["musescore_oembed"],
    }
    values.update(overrides)
    return MuseScoreConfig(**values)
