"""Mureka through useapi.net declared once: its config, connection, jobs, create calls and how
a creation is found again after a crash."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping
from typing import Any, ClassVar

import attrs

from imuzekit import errors
from imuzekit.auth import TokenLogin
from imuzekit.jobs import Job, PollPolicy
from imuzekit.providers._spec import (
    Connected,
    Connection,
    CreateCall,
    ErrorDialect,
    FieldSpec,
    Found,
    ProviderConfig,
    ProviderSpec,
    driver_kind,
    markers_in,
    secret_field,
    url_field,
)
from imuzekit.providers.mureka import MUREKA_POLL, SESSION_EXPIRED, MurekaAPI, _api
from imuzekit.providers.mureka.models import Feed

__all__ = ["SONGS_PER_GENERATION", "MurekaConfig", "feed_songs", "find_created", "job_for", "spec"]

SONGS_PER_GENERATION = 2
"""Songs a Mureka generation makes (a batch line's files ``<key>-1``, ``<key>-2``)."""


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _accounts(instance: object, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
    for index, account in enumerate(value):
        if not isinstance(account, str):
            raise errors.ValidationError(
                f"mureka.accounts[{index}]", f"must be a string, got {type(account).__name__}"
            )


def _ints(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


@attrs.frozen
class MurekaConfig(ProviderConfig):
    """Mureka through useapi.net: the useapi.net `token` and the Mureka `accounts` it drives.

    `max_parallel_per_account`: Mureka's limit of simultaneous generations per account (10).
    `failure_states`: feed `state` values to treat as failed (only 3, complete, is
    documented; other values mean "still processing" unless listed here). `poll` defaults to
    a Mureka-specific policy (first read after 30 s: a generation takes ~45 s).
    """

    CREDENTIALS: ClassVar[tuple[tuple[str, ...], ...]] = (("token",),)
    SUGGESTED: ClassVar[tuple[str, ...]] = ("accounts",)

    token: str | None = secret_field()
    accounts: tuple[str, ...] = attrs.field(default=(), converter=_strings, validator=_accounts)
    base_url: str = url_field("https://api.useapi.net/v1/mureka")
    max_parallel_per_account: int = 10
    failure_states: tuple[int, ...] = attrs.field(default=(), converter=_ints)
    poll: PollPolicy | None = None


def _connect(config: MurekaConfig, connection: Connection) -> Connected:
    assert config.token is not None
    auth = connection.auth or TokenLogin(
        provider=_api.PROVIDER, token=config.token, scheme="Bearer"
    )
    api = MurekaAPI(
        sender=connection.sender,
        base_url=config.base_url,
        accounts=config.accounts,
        max_parallel_per_account=config.max_parallel_per_account,
        poller=connection.poller,
        poll_policy=connection.poll_policy,
        retry=connection.retry,
        failure_states=config.failure_states,
        webhooks=connection.webhooks,
    )
    return Connected(api, auth)


async def _running_jobs(api: MurekaAPI, wanted: set[str]) -> dict[str, str]:
    """Marker -> jobid for the running jobs whose request's title carries a wanted marker."""
    jobs: dict[str, str] = {}
    running = await api.jobs.running()
    for jobid in sorted(running.jobids()):
        record = await api.jobs.get(jobid)
        request: Mapping[str, Any] = record.request if isinstance(record.request, Mapping) else {}
        for marker in markers_in(str(request.get("title") or "")) & wanted:
            jobs.setdefault(marker, jobid)
    return jobs


async def _feeds(api: MurekaAPI, wanted: set[str]) -> tuple[dict[str, Feed], set[str]]:
    """Marker -> complete feed whose songs' titles carry it, and the markers of half-made ones."""
    complete: dict[str, Feed] = {}
    halfway: set[str] = set()
    for account in api.accounts or (None,):
        async for feed in api.music.list(account=account):
            for marker in markers_in(*(song.title for song in feed.songs)) & wanted:
                if feed.complete:
                    complete.setdefault(marker, feed)
                else:
                    halfway.add(marker)
    return complete, halfway


async def find_created(
    api: MurekaAPI, markers: Collection[str], *, rounds: int = 3, pause: float = 1.0
) -> dict[str, Found]:
    """The generations whose title carries one of `markers`.

    A running job (`GET /jobs`, then each job's record for its title) is found with its job;
    a finished one by its complete feed in the accounts' lists (`result` is the `Feed`,
    `remote_id` ``"feed:<id>"``). A feed seen half-made whose job was not running when looked
    at finished in between: the search looks again, up to `rounds` times `pause` seconds
    apart, and then reports it with `settled` False. A marker not in the result was not found.
    """
    wanted = set(markers)
    jobs: dict[str, str] = {}
    complete: dict[str, Feed] = {}
    halfway: set[str] = set()
    for attempt in range(max(1, rounds)):
        # Running jobs first: their records hold the request, title included.
        for marker, jobid in (await _running_jobs(api, wanted)).items():
            jobs.setdefault(marker, jobid)
        feeds, halfway = await _feeds(api, wanted - jobs.keys())
        for marker, feed in feeds.items():
            complete.setdefault(marker, feed)
        halfway -= jobs.keys() | complete.keys()
        if not halfway:
            break
        if attempt + 1 < rounds:
            await asyncio.sleep(pause)
    found = {m: Found(m, remote_id=j, job=api.jobs.job(j)) for m, j in jobs.items()}
    for marker, feed in complete.items():
        found.setdefault(marker, Found(marker, remote_id=f"feed:{feed.feed_id}", result=feed))
    for marker in halfway:
        found.setdefault(marker, Found(marker, settled=False))
    return found


def feed_songs(feed: Feed) -> list[tuple[str, Any]]:
    """A finished generation's files: its songs, each with its song id."""
    return [(str(song.song_id), song) for song in feed.songs]


async def song_again(api: MurekaAPI, song_id: str) -> Any:
    """Song `song_id` read again (for a fresh file link)."""
    return (await api.music.get(song_id)).song


def job_for(api: MurekaAPI, jobid: str) -> Job[Any]:
    """The job of generation `jobid`."""
    return api.jobs.job(jobid)


def _emulator_config(emulator: Any) -> MurekaConfig:
    return MurekaConfig(
        token=emulator.mureka.credentials().token,
        accounts=tuple(emulator.mureka.accounts),
        base_url=emulator.urls["mureka"],
    )


def _limit(route: str, name: str) -> int | None:
    return _api.CREATE_LIMITS[route].get(name)


def _text(route: str, name: str, description: str, *, required: bool = False) -> FieldSpec:
    return FieldSpec(name, "string", description, required=required, max_length=_limit(route, name))


def _id(name: str, description: str) -> FieldSpec:
    return FieldSpec(name, "string", description, max_length=_api.MAX_TEXT_LENGTH)


def spec() -> ProviderSpec:
    """The Mureka (useapi.net) provider."""
    common = (
        _id("model", "Mureka model: V9 (the service's default), V8, O2 or V7.6."),
        FieldSpec(
            "account",
            "string",
            "Account id (default: the least busy configured account).",
            max_length=_api.MAX_ACCOUNT_LENGTH,
            choices="accounts",
        ),
    )
    made: dict[str, Any] = {
        "outputs": feed_songs,
        "files": SONGS_PER_GENERATION,
        "output_again": song_again,
    }
    creates = (
        CreateCall(
            kind="create",
            method="music.create",
            description=(
                "kit.mureka.music.create(): a song with AI-written lyrics (cannot be reconciled)."
            ),
            fields=(_text("create", "prompt", "What the song is about."), *common),
            **made,
        ),
        CreateCall(
            kind="create_advanced",
            method="music.create_advanced",
            description="kit.mureka.music.create_advanced(): a song from your lyrics.",
            fields=(
                _text("create-advanced", "lyrics", "The lyrics.", required=True),
                _text(
                    "create-advanced", "title", "Title (shortened to fit the marker ' [ik:...]')."
                ),
                _text("create-advanced", "desc", "Style description."),
                _id("vocal_id", "Vocal id."),
                _id("ref_id", "Reference track id."),
                _id("motif_id", "Motif id."),
                *common,
            ),
            marker_title="title",
            **made,
        ),
        CreateCall(
            kind="create_instrumental",
            method="music.create_instrumental",
            description="kit.mureka.music.create_instrumental(): an instrumental.",
            fields=(
                _text("create-instrumental", "prompt", "What the music is like."),
                _text(
                    "create-instrumental",
                    "title",
                    "Title (shortened to fit the marker ' [ik:...]').",
                ),
                _id("ref_id", "Reference track id."),
                *common,
            ),
            marker_title="title",
            **made,
        ),
    )
    return ProviderSpec(
        name=_api.PROVIDER,
        title="Mureka (useapi.net)",
        config=MurekaConfig,
        connect=_connect,
        job_kinds=(driver_kind(_api.FeedDriver),),
        creates=creates,
        error_dialect=ErrorDialect(
            statuses={
                SESSION_EXPIRED: "the Mureka account session expired: refresh it on useapi.net"
            }
        ),
        converter_hooks=(_api.configure_converter,),
        default_poll=MUREKA_POLL,
        find_created=find_created,
        emulator_config=_emulator_config,
        job_for=job_for,
    )
