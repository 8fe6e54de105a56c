"""The provider configurations a `Client` takes, and how they are read from the environment.

Each config class lives with its provider's spec (`imuzekit.providers.<name>._spec`); this
module re-exports the built-in four and derives the per-provider tables from the provider
registry, so a provider plugged in with `registry().register(spec)` appears in them too.
Re-exported by `imuzekit.client` (and `imuzekit`): import them from there.

`CONFIGS` (name -> config class), `PROVIDER_NAMES` (name -> title) and `ENV_HINTS` (name ->
what to set) are computed from the registry each time they are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imuzekit.providers._registry import registry
from imuzekit.providers.imuze._spec import ImuzeConfig
from imuzekit.providers.joplin._spec import JoplinConfig
from imuzekit.providers.mureka._spec import MurekaConfig
from imuzekit.providers.musescore._spec import MuseScoreConfig

__all__ = [
    "ImuzeConfig",
    "JoplinConfig",
    "MurekaConfig",
    "MuseScoreConfig",
    "config_from_env",
    "configs",
    "env_hints",
    "provider_names",
]


def configs() -> dict[str, type[Any]]:
    """Every provider's config class, by provider name."""
    return {spec.name: spec.config for spec in registry()}


def provider_names() -> dict[str, str]:
    """Every provider's title (`"iMuze API v4"`), by provider name."""
    return {spec.name: spec.title for spec in registry()}


def env_hints() -> dict[str, str]:
    """What to set in the environment to configure each provider, by provider name."""
    return {spec.name: spec.env_hint for spec in registry()}


_DERIVED = {"CONFIGS": configs, "PROVIDER_NAMES": provider_names, "ENV_HINTS": env_hints}


def __getattr__(name: str) -> Any:
    """`CONFIGS`, `PROVIDER_NAMES` and `ENV_HINTS`, derived from the registry when read."""
    try:
        return _DERIVED[name]()
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def config_from_env(provider: str, env: Mapping[str, str]) -> Any:
    """`provider`'s config from `IMUZEKIT_<PROVIDER>_<FIELD>` variables, or None when they set
    no credentials."""
    return registry().get(provider).config_from_env(env)
