"""The provider configurations a `Client` takes, and how they are read from the environment.

Re-exported by `imuzekit.client` (and `imuzekit`): import them from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from imuzekit import errors
from imuzekit.jobs import PollPolicy

__all__ = [
    "CONFIGS",
    "ENV_HINTS",
    "PROVIDER_NAMES",
    "ImuzeConfig",
    "JoplinConfig",
    "MurekaConfig",
    "MuseScoreConfig",
    "config_from_env",
]


def _mask(value: object) -> str:
    return "None" if value is None else "'***'"


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _ints(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _secret() -> Any:
    return attrs.field(default=None, repr=_mask)


@attrs.frozen
class ImuzeConfig:
    """iMuze API v4 credentials: a ``token``, or ``email`` and ``password`` (logged in on first
    use and again once on a 401), or both. ``auth_scheme`` prefixes the token in the
    ``Authorization`` header (the API documents the raw token: leave it None)."""

    token: str | None = _secret()
    email: str | None = None
    password: str | None = _secret()
    base_url: str = "https://api.imuze.io/api/4"
    auth_scheme: str | None = None
    poll: PollPolicy | None = None

    @property
    def has_credentials(self) -> bool:
        """Whether a token or an email/password pair is set."""
        return bool(self.token) or bool(self.email and self.password)


@attrs.frozen
class JoplinConfig:
    """iMuze music engine ("joplin") credentials: a JWT ``token`` or ``email``/``password``."""

    token: str | None = _secret()
    email: str | None = None
    password: str | None = _secret()
    base_url: str = "http://joplin.imuze.io"
    poll: PollPolicy | None = None

    @property
    def has_credentials(self) -> bool:
        """Whether a token or an email/password pair is set."""
        return bool(self.token) or bool(self.email and self.password)


@attrs.frozen
class MurekaConfig:
    """Mureka through useapi.net: the useapi.net ``token`` and the Mureka ``accounts`` it drives.

    ``max_parallel_per_account``: Mureka's limit of simultaneous generations per account (10).
    ``failure_states``: feed ``state`` values to treat as failed (only 3, complete, is
    documented; other values mean "still processing" unless listed here). ``poll`` defaults to
    a Mureka-specific policy (first read after 30 s: a generation takes ~45 s).
    """

    token: str | None = _secret()
    accounts: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    base_url: str = "https://api.useapi.net/v1/mureka"
    max_parallel_per_account: int = 10
    failure_states: tuple[int, ...] = attrs.field(default=(), converter=_ints)
    poll: PollPolicy | None = None

    @property
    def has_credentials(self) -> bool:
        """Whether the token is set."""
        return bool(self.token)


@attrs.frozen
class MuseScoreConfig:
    """MuseScore.com OAuth 1.0 credentials and endpoints.

    A ``consumer_key`` alone allows public calls; signed calls need ``consumer_secret``, and a
    user's calls also ``token`` and ``token_secret`` (from the three-legged flow).
    """

    consumer_key: str | None = None
    consumer_secret: str | None = _secret()
    token: str | None = _secret()
    token_secret: str | None = _secret()
    base_url: str = "http://api.musescore.com/services/rest"
    oauth_url: str = "http://api.musescore.com/oauth"
    authorize_url: str = "http://musescore.com/oauth/authorize"
    static_url: str = "http://static.musescore.com"
    oembed_url: str = "http://musescore.com/oembed/endpoint"
    poll: PollPolicy | None = None

    @property
    def has_credentials(self) -> bool:
        """Whether the consumer key is set."""
        return bool(self.consumer_key)


CONFIGS: dict[str, type[Any]] = {
    "imuze": ImuzeConfig,
    "joplin": JoplinConfig,
    "mureka": MurekaConfig,
    "musescore": MuseScoreConfig,
}
PROVIDER_NAMES = {
    "imuze": "iMuze API v4",
    "joplin": "the iMuze music engine (joplin)",
    "mureka": "Mureka (useapi.net)",
    "musescore": "MuseScore.com",
}
ENV_HINTS = {
    "imuze": "IMUZEKIT_IMUZE_TOKEN, or IMUZEKIT_IMUZE_EMAIL and IMUZEKIT_IMUZE_PASSWORD",
    "joplin": "IMUZEKIT_JOPLIN_TOKEN, or IMUZEKIT_JOPLIN_EMAIL and IMUZEKIT_JOPLIN_PASSWORD",
    "mureka": "IMUZEKIT_MUREKA_TOKEN (and IMUZEKIT_MUREKA_ACCOUNTS)",
    "musescore": "IMUZEKIT_MUSESCORE_CONSUMER_KEY (and ..._CONSUMER_SECRET)",
}


def config_from_env(provider: str, env: Mapping[str, str]) -> Any:
    cls = CONFIGS[provider]
    values: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name == "poll":
            continue
        raw = env.get(f"IMUZEKIT_{provider.upper()}_{field.name.upper()}")
        if raw is None or raw == "":
            continue
        if field.name == "accounts":
            values[field.name] = tuple(a.strip() for a in raw.split(",") if a.strip())
        elif field.name == "failure_states":
            try:
                values[field.name] = tuple(int(a) for a in raw.split(",") if a.strip())
            except ValueError as exc:
                raise errors.ConfigurationError(
                    "IMUZEKIT_MUREKA_FAILURE_STATES must be comma-separated integers"
                ) from exc
        elif field.type in (int, "int"):
            try:
                values[field.name] = int(raw)
            except ValueError as exc:
                raise errors.ConfigurationError(
                    f"IMUZEKIT_{provider.upper()}_{field.name.upper()} must be an integer"
                ) from exc
        else:
            values[field.name] = raw
    config = cls(**values)
    return config if config.has_credentials else None
