"""iMuze API v4 declared once: its config, connection, jobs, create call and crash search."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import attrs

from imuzekit import errors
from imuzekit.jobs import Job, PollPolicy
from imuzekit.providers._spec import (
    Connected,
    Connection,
    CreateCall,
    FieldSpec,
    Found,
    LoginConfig,
    ProviderSpec,
    driver_kind,
    markers_in,
    text_field,
    token_login,
    url_field,
)
from imuzekit.providers.imuze import ImuzeAPI, _api

__all__ = ["ImuzeConfig", "find_created", "job_for", "spec"]


@attrs.frozen
class ImuzeConfig(LoginConfig):
    """iMuze API v4 credentials: a `token`, or `email` and `password` (logged in on first
    use and again once on a 401), or both. `auth_scheme` prefixes the token in the
    `Authorization` header (the API documents the raw token: leave it None)."""

    base_url: str = url_field("https://api.imuze.io/api/4")
    auth_scheme: str | None = text_field()
    poll: PollPolicy | None = None


def _connect(config: ImuzeConfig, connection: Connection) -> Connected:
    auth = connection.auth or token_login(
        _api.PROVIDER,
        config,
        build_login=_api.build_login,
        parse_login=_api.parse_login,
        scheme=config.auth_scheme,
    )
    api = ImuzeAPI(
        sender=connection.sender,
        base_url=config.base_url,
        auth=auth,
        poller=connection.poller,
        poll_policy=connection.poll_policy,
    )
    return Connected(api, auth)


def job_for(api: ImuzeAPI, song_id: str) -> Job[Any]:
    """The job of song `song_id` (a number); ValidationError for anything else."""
    if not song_id.isdigit():
        raise errors.ValidationError("remote_id", f"an iMuze song id is a number, got {song_id!r}")
    return api.songs.job(int(song_id))


async def find_created(api: ImuzeAPI, markers: Collection[str]) -> dict[str, Found]:
    """The songs whose title (either spelling, see `markers_in`) or tags (journals from
    before the marker went in the title only) carry one of `markers`, each with its job.

    Reads the account's song list (`GET /songs`) once. Should two songs carry one marker,
    the oldest is kept (the list is newest first). A marker not in the result was not found.
    """
    wanted = set(markers)
    found: dict[str, Found] = {}
    async for song in api.songs.list():
        for marker in markers_in(song.title, *song.tags) & wanted:
            found[marker] = Found(marker, remote_id=str(song.id), job=api.songs.job(song.id))
    return found


def _emulator_config(emulator: Any) -> ImuzeConfig:
    credentials = emulator.imuze.credentials()
    return ImuzeConfig(
        email=credentials.email,
        password=credentials.password,
        base_url=emulator.urls["imuze"],
    )


def spec() -> ProviderSpec:
    """The iMuze API v4 provider."""
    create = CreateCall(
        kind="create",
        method="songs.create",
        description="kit.imuze.songs.create(): an iMuze API v4 song.",
        fields=(
            FieldSpec(
                "title",
                "string",
                f"Song title: {_api.TITLE_RULE} (the marker ' ik <12 letters>' is appended).",
                required=True,
                min_length=_api.TITLE_MIN_LENGTH,
                max_length=_api.TITLE_MAX_LENGTH,
                pattern=_api.TITLE_PATTERN,
                rule=f"iMuze does not allow ({_api.TITLE_RULE})",
            ),
            FieldSpec(
                "arrangement_id",
                "integer",
                "Arrangement id.",
                required=True,
                minimum=_api.MIN_ARRANGEMENT_ID,
            ),
            FieldSpec(
                "tags",
                "tags",
                "Tags (they steer the arrangement: the marker never goes there).",
                max_length=_api.MAX_TAG_LENGTH,
            ),
            FieldSpec(
                "desired_length",
                "integer",
                "Length in seconds.",
                required=True,
                minimum=_api.MIN_DESIRED_LENGTH,
            ),
        ),
        # A title holds letters and spaces only: the marker goes there spelled in letters
        # (" ik <12 letters a-p>"). Not in the tags: iMuze reaches arrangements by tags, so a
        # marker tag could change what is generated.
        marker_title="title",
        marker_letters=True,
        defaults={"tags": []},
    )
    return ProviderSpec(
        name=_api.PROVIDER,
        title="iMuze API v4",
        config=ImuzeConfig,
        connect=_connect,
        job_kinds=(driver_kind(_api.SongDriver),),
        creates=(create,),
        converter_hooks=(_api.configure_converter,),
        find_created=find_created,
        emulator_config=_emulator_config,
        job_for=job_for,
    )
