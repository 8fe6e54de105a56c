"""The operations of the fault matrix: one per provider and operation class.

Each `Operation` knows how to prepare its state without faults (`setup`), which requests a
fault must target (`pattern`, relative to the provider's base URL as `emu.faults.add` takes it)
and how to run the operation itself (`run`), returning a value the matrix checks for
correctness when the outcome is a success.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

from imuzekit import Client, MuseScoreConfig
from imuzekit.emulator import Emulator

__all__ = ["OPERATIONS", "Operation", "creations", "mscz_file", "musescore_config"]

Setup = Callable[[Emulator, Client, Path], Awaitable[Any]]
Run = Callable[[Emulator, Client, Any, Path], Awaitable[Any]]


def creations(emu: Emulator, provider: str) -> int:
    """The emulator's count of accepted creations for ``provider``."""
    return {
        "imuze": lambda: emu.imuze.songs_created,
        "joplin": lambda: emu.joplin.musics_created,
        "mureka": lambda: emu.mureka.creations,
        "musescore": lambda: emu.musescore.uploads,
    }[provider]()


def musescore_config(emu: Emulator, *, with_token: bool = True) -> MuseScoreConfig:
    """The demo MuseScore configuration, with or without the user's access token."""
    extra = emu.credentials["musescore"].extra
    return MuseScoreConfig(
        consumer_key=extra["consumer_key"],
        consumer_secret=extra["consumer_secret"],
        token=extra["token"] if with_token else None,
        token_secret=extra["token_secret"] if with_token else None,
        base_url=emu.urls["musescore"],
        oauth_url=emu.urls["musescore_oauth"],
        authorize_url=emu.urls["musescore_authorize"],
        static_url=emu.urls["musescore_static"],
        oembed_url=emu.urls["musescore_oembed"],
    )


def mscz_file(folder: Path) -> Path:
    """A minimal valid ``.mscz`` (a zip holding an ``.mscx``) written into ``folder``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("etude.mscx", "<museScore><Score/></museScore>")
    path = folder / "etude.mscz"
    path.write_bytes(buffer.getvalue())
    return path


@attrs.frozen
class Operation:
    """One operation class of one provider, as the matrix exercises it."""

    provider: str
    name: str
    pattern: str
    run: Run
    setup: Setup | None = None
    creates: bool = False
    """Whether the operation itself creates something (a POST that is not idempotent)."""
    is_job: bool = False
    """Whether the operation waits for a job (poll): its failures surface as JobTimeout."""
    is_download: bool = False
    no_user_token: bool = False
    """MuseScore's OAuth flow starts from a client without an access token."""

    @property
    def key(self) -> str:
        """``provider-operation``, the column of the matrix."""
        return f"{self.provider}-{self.name}"


WAIT = 1.5
"""Deadline of the jobs waited for under a fault, in seconds."""


async def _nothing(emu: Emulator, kit: Client, folder: Path) -> None:
    return None


# --- iMuze -----------------------------------------------------------------------------------


async def _imuze_job(emu: Emulator, kit: Client, folder: Path) -> Any:
    await kit.imuze.login()
    return await kit.imuze.songs.create(
        title="Morning Song", arrangement_id=1, tags=[], desired_length=2
    )


async def _imuze_song(emu: Emulator, kit: Client, folder: Path) -> Any:
    return await (await _imuze_job(emu, kit, folder)).wait(timeout=5)


async def _imuze_login(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    return await kit.imuze.login()


async def _imuze_list(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    items = [a async for a in kit.imuze.arrangements.list()]
    assert items
    return items


async def _imuze_get(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    detail = await kit.imuze.arrangements.get(1)
    assert detail.id == 1
    return detail


async def _imuze_create(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    job = await kit.imuze.songs.create(
        title="Morning Song", arrangement_id=1, tags=[], desired_length=2
    )
    assert job.id
    return job


async def _wait(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    result = await ctx.wait(timeout=WAIT)
    assert result is not None
    return result


async def _download(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    path = await kit.download(ctx, folder)
    assert path.parent == folder and path.stat().st_size > 0
    return path


async def _imuze_login_first(emu: Emulator, kit: Client, folder: Path) -> None:
    await kit.imuze.login()


# --- joplin ----------------------------------------------------------------------------------


async def _joplin_job(emu: Emulator, kit: Client, folder: Path) -> Any:
    return await kit.joplin.musics.create("electronic", "house", 2_000, "calm:1")


async def _joplin_music(emu: Emulator, kit: Client, folder: Path) -> Any:
    return await (await _joplin_job(emu, kit, folder)).wait(timeout=5)


async def _joplin_login(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    return await kit.joplin.login()


async def _joplin_list(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    genres = await kit.joplin.genres()
    assert genres
    return genres


async def _joplin_get(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    schema = await kit.joplin.musics.schema(ctx.id)
    assert schema
    return schema


async def _joplin_create(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    return await kit.joplin.musics.create("electronic", "house", 2_000, "calm:1")


async def _joplin_login_first(emu: Emulator, kit: Client, folder: Path) -> None:
    await kit.joplin.login()


# --- Mureka ----------------------------------------------------------------------------------


def _account(emu: Emulator) -> str:
    return next(iter(emu.mureka.accounts))


async def _mureka_job(emu: Emulator, kit: Client, folder: Path) -> Any:
    return await kit.mureka.music.create("a song", account=_account(emu))


async def _mureka_feed(emu: Emulator, kit: Client, folder: Path) -> Any:
    return await (await _mureka_job(emu, kit, folder)).wait(timeout=5)


async def _mureka_song(emu: Emulator, kit: Client, folder: Path) -> Any:
    return (await _mureka_feed(emu, kit, folder)).songs[0]


async def _mureka_feeds(emu: Emulator, kit: Client, folder: Path) -> None:
    emu.mureka.add_feeds(_account(emu), 3)


async def _mureka_list(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    feeds = [f async for f in kit.mureka.music.list(account=_account(emu))]
    assert len(feeds) == 3
    return feeds


async def _mureka_get(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    detail = await kit.mureka.music.get(ctx.song_id)
    assert detail.song.song_id == ctx.song_id
    return detail


async def _mureka_create(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    return await kit.mureka.music.create("a song", account=_account(emu))


# --- MuseScore -------------------------------------------------------------------------------


async def _musescore_login(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    request_token = await kit.musescore.oauth.request_token()
    verifier = emu.musescore.approve(request_token.oauth_token)
    return await kit.musescore.oauth.access_token(request_token, verifier)


async def _musescore_list(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    scores = await kit.musescore.scores.search(limit=3).collect()
    assert len(scores) == 3
    return scores


async def _musescore_first(emu: Emulator, kit: Client, folder: Path) -> Any:
    return (await kit.musescore.scores.search(limit=1).collect())[0]


async def _musescore_get(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    score = await kit.musescore.scores.get(ctx.id)
    assert score.id == ctx.id
    return score


async def _musescore_upload_file(emu: Emulator, kit: Client, folder: Path) -> Path:
    return mscz_file(folder.parent)


async def _musescore_create(emu: Emulator, kit: Client, ctx: Any, folder: Path) -> Any:
    return await kit.musescore.scores.upload(ctx, "Etude")


async def _musescore_job(emu: Emulator, kit: Client, folder: Path) -> Any:
    return await kit.musescore.scores.upload(mscz_file(folder.parent), "Etude")


async def _musescore_file(emu: Emulator, kit: Client, folder: Path) -> Any:
    return (await _musescore_first(emu, kit, folder)).file("mp3")


OPERATIONS: tuple[Operation, ...] = (
    Operation("imuze", "login", "POST /tokens", _imuze_login),
    Operation("imuze", "list", "GET /arrangements", _imuze_list, _imuze_login_first),
    Operation("imuze", "get", "GET /arrangements/*", _imuze_get, _imuze_login_first),
    Operation("imuze", "create", "POST /songs", _imuze_create, _imuze_login_first, creates=True),
    Operation("imuze", "poll", "GET /songs*", _wait, _imuze_job, is_job=True),
    Operation("imuze", "download", "GET /files/*", _download, _imuze_song, is_download=True),
    Operation("joplin", "login", "PUT /accounts/token", _joplin_login),
    Operation("joplin", "list", "GET /genres*", _joplin_list),
    Operation("joplin", "get", "GET /musics/*/schema", _joplin_get, _joplin_job),
    Operation(
        "joplin", "create", "POST /musics", _joplin_create, _joplin_login_first, creates=True
    ),
    Operation("joplin", "poll", "* /musics/*/mp3", _wait, _joplin_job, is_job=True),
    Operation(
        "joplin", "download", "GET /musics/*/mp3", _download, _joplin_music, is_download=True
    ),
    Operation("mureka", "list", "GET /music*", _mureka_list, _mureka_feeds),
    Operation("mureka", "get", "GET /music/*", _mureka_get, _mureka_song),
    Operation("mureka", "create", "POST /music/create*", _mureka_create, creates=True),
    Operation("mureka", "poll", "GET /jobs*", _wait, _mureka_job, is_job=True),
    Operation("mureka", "download", "GET /cdn/*.mp3", _download, _mureka_song, is_download=True),
    Operation("musescore", "login", "* /oauth/*", _musescore_login, no_user_token=True),
    Operation("musescore", "list", "GET /score*", _musescore_list),
    Operation("musescore", "get", "GET /score/*", _musescore_get, _musescore_first),
    Operation(
        "musescore",
        "create",
        "POST /score*",
        _musescore_create,
        _musescore_upload_file,
        creates=True,
    ),
    Operation("musescore", "poll", "GET /score/*", _wait, _musescore_job, is_job=True),
    Operation(
        "musescore", "download", "GET /static/*", _download, _musescore_file, is_download=True
    ),
)
