"""The iMuze music engine (joplin) declared once: its config, connection, jobs and create call.

Joplin has no list of musics, so a creation cannot be found again after a crash
(`find_created` is None).
"""

from __future__ import annotations

from typing import Any

import attrs

from imuzekit.jobs import Job, PollPolicy
from imuzekit.providers._spec import (
    Connected,
    Connection,
    CreateCall,
    FieldSpec,
    LoginConfig,
    ProviderSpec,
    driver_kind,
    token_login,
    url_field,
)
from imuzekit.providers.joplin import JoplinAPI, Movement, Structure, _api

__all__ = ["JoplinConfig", "job_for", "spec", "structure_argument"]


@attrs.frozen
class JoplinConfig(LoginConfig):
    """iMuze music engine ("joplin") credentials: a JWT `token` or `email`/`password`."""

    base_url: str = url_field("http://joplin.imuze.io")
    poll: PollPolicy | None = None


def _connect(config: JoplinConfig, connection: Connection) -> Connected:
    auth = connection.auth or token_login(
        _api.PROVIDER,
        config,
        build_login=_api.build_login,
        parse_login=_api.parse_login,
        expires_at=_api.jwt_expiry(config.token) if config.token else None,
    )
    api = JoplinAPI(
        sender=connection.sender,
        base_url=config.base_url,
        auth=auth,
        poller=connection.poller,
        poll_policy=connection.poll_policy,
    )
    return Connected(api, auth)


def structure_argument(value: Any) -> Any:
    """A manifest's structure as `musics.create` takes it: a list of movement objects
    (``{start, duration, energy | movement}``) becomes a `Structure`; a string or a
    `Structure` stays as it is."""
    if isinstance(value, list):
        return Structure([Movement(**item) for item in value])
    return value


def job_for(api: JoplinAPI, music_id: str) -> Job[Any]:
    """The job of music `music_id`."""
    return api.musics.job(music_id)


def _emulator_config(emulator: Any) -> JoplinConfig:
    credentials = emulator.joplin.credentials()
    return JoplinConfig(
        email=credentials.email, password=credentials.password, base_url=emulator.urls["joplin"]
    )


def spec() -> ProviderSpec:
    """The iMuze music engine (joplin) provider."""
    create = CreateCall(
        kind="create",
        method="musics.create",
        description="kit.joplin.musics.create(): an iMuze music engine (joplin) music.",
        fields=(
            FieldSpec(
                "genre",
                "string",
                "Genre (see `imuzekit joplin genres`).",
                required=True,
                max_length=_api.MAX_GENRE_LENGTH,
            ),
            FieldSpec(
                "subgenre",
                "string",
                "Subgenre of that genre.",
                required=True,
                max_length=_api.MAX_GENRE_LENGTH,
            ),
            FieldSpec(
                "duration_ms",
                "integer",
                "Length in milliseconds.",
                required=True,
                minimum=_api.MIN_DURATION_MS,
                maximum=_api.MAX_DURATION_MS,
            ),
            FieldSpec(
                "structure",
                "structure",
                "'calm:0.3,dynamic:0.7', or a list of movements"
                " {start, duration, energy | movement}.",
                required=True,
                parse=structure_argument,
            ),
            FieldSpec("crop", "boolean", "Cut at exactly duration_ms (not whole measures)."),
            FieldSpec(
                "fadeout_ms",
                "integer",
                "Fade-out length in milliseconds.",
                minimum=_api.MIN_FADEOUT_MS,
                at_most="duration_ms",
            ),
            FieldSpec("voices_volume", "integer", "Volume of the voices."),
        ),
    )
    return ProviderSpec(
        name=_api.PROVIDER,
        title="the iMuze music engine (joplin)",
        config=JoplinConfig,
        connect=_connect,
        job_kinds=(driver_kind(_api.MusicDriver),),
        creates=(create,),
        converter_hooks=(_api.configure_converter,),
        emulator_config=_emulator_config,
        job_for=job_for,
    )
