"""Seeds 002 and 003 (Mureka through useapi.net) row by row, through the public API.

Each test names the seed rows it covers; `docs/conformance.md` points at these node ids. The raw
answer is read through the same client's transport (the same Bearer token), so a test checks both
that the emulator sends the seed's field and that the SDK reads it into its model.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from imuzekit import Client, MurekaConfig, errors
from imuzekit._http import Request
from imuzekit.emulator import Emulator
from imuzekit.providers.mureka import Feed
from tests.e2e.conftest import FAST_POLL, FAST_RETRY

SONG_FIELDS = [
    "song_id",
    "title",
    "version",
    "duration_milliseconds",
    "generate_at",
    "genres",
    "moods",
    "mp3_url",
    "share_key",
    "machine_audit_state",
    "credit_type",
    "cover",
    "share_link",
]


def _accounts(emu: Emulator) -> tuple[str, ...]:
    return tuple(emu.credentials["mureka"].extra["accounts"].split(","))


async def _raw(emu: Emulator, kit: Client, path: str, **params: str) -> Any:
    request = Request("GET", emu.urls["mureka"] + path, provider="mureka", params=params)
    return json.loads((await kit.transport.send(request)).body)


async def _feed(emu: Emulator, kit: Client) -> Feed:
    job = await kit.mureka.music.create("a song about trains", account=_accounts(emu)[0])
    return await job.wait(timeout=10)


def _same(value: Any, raw: Any) -> bool:
    return bool((list(value) if isinstance(value, tuple) else value) == raw)


async def test_list_sends_the_bearer_token_and_the_account(emu: Emulator, kit: Client) -> None:
    # GET /music/?account=... with "Authorization: Bearer {API token}"
    account = _accounts(emu)[1]
    emu.mureka.add_feeds(account, 2)
    feeds = [feed async for feed in kit.mureka.music.list(account=account)]
    assert len(feeds) == 2
    (sent,) = [r for r in emu.requests if r.path == "/music/"]
    assert sent.status == 200 and sent.query["account"] == account


async def test_list_follows_last_id_while_more(emu: Emulator, kit: Client) -> None:
    # last_id: "set its value to the last_id returned in the previous response when more is true"
    account = _accounts(emu)[0]
    emu.mureka.add_feeds(account, 25)
    feeds = kit.mureka.music.list(account=account)
    seen = [feed.feed_id async for feed in feeds]
    pages = [r for r in emu.requests if r.path == "/music/"]
    assert len(seen) == 25 and feeds.pages == len(pages) >= 2
    assert "last_id" not in pages[0].query
    assert all(int(p.query["last_id"]) in seen for p in pages[1:])


@pytest.mark.parametrize("field", ["last_id", "more", "total"])
async def test_list_page_field(emu: Emulator, kit: Client, field: str) -> None:
    # {"list", "last_id", "more", "total"}
    account = _accounts(emu)[0]
    emu.mureka.add_feeds(account, 25)
    feeds = kit.mureka.music.list(account=account)
    seen = [feed.feed_id async for feed in feeds]
    raw = await _raw(emu, kit, "/music/", account=account)
    assert field in raw
    pages = [r for r in emu.requests if r.path == "/music/"]
    if field == "total":
        assert feeds.total == raw["total"] == len(seen) == 25
    elif field == "more":
        # more=true made the SDK fetch the next page: every feed was seen, over several pages
        assert raw["more"] is True and len(seen) == 25 and feeds.pages >= 2
    else:
        # the second request carries the first answer's last_id
        assert pages[1].query["last_id"] == str(raw["last_id"])
        assert seen[len(raw["list"]) - 1] == raw["last_id"]


@pytest.mark.parametrize("field", ["feed_id", "state", "is_accelerated"])
async def test_list_feed_field(emu: Emulator, kit: Client, field: str) -> None:
    # list[]: {"feed_id", "state", "songs", "is_accelerated"}
    feed = await _feed(emu, kit)
    listed = [f async for f in kit.mureka.music.list(account=_accounts(emu)[0])]
    raw = await _raw(emu, kit, "/music/", account=_accounts(emu)[0])
    assert field in raw["list"][0]
    assert listed[0].feed_id == feed.feed_id
    assert getattr(listed[0], field) == raw["list"][0][field]
    assert len(listed[0].songs) == len(raw["list"][0]["songs"]) == 2


@pytest.mark.parametrize("field", SONG_FIELDS)
async def test_list_song_field(emu: Emulator, kit: Client, field: str) -> None:
    # list[].songs[]: every field of the seed's example song
    await _feed(emu, kit)
    listed = [f async for f in kit.mureka.music.list(account=_accounts(emu)[0])]
    raw = await _raw(emu, kit, "/music/", account=_accounts(emu)[0])
    for song, raw_song in zip(listed[0].songs, raw["list"][0]["songs"], strict=True):
        assert field in raw_song
        assert _same(getattr(song, field), raw_song[field])


@pytest.mark.parametrize("field", SONG_FIELDS)
async def test_song_detail_field(emu: Emulator, kit: Client, field: str) -> None:
    # GET /music/{song_id} -> {"song": {...}, "user", "feed_id"}
    feed = await _feed(emu, kit)
    song_id = feed.songs[0].song_id
    detail = await kit.mureka.music.get(song_id)
    raw = await _raw(emu, kit, f"/music/{song_id}")
    assert field in raw["song"]
    assert _same(getattr(detail.song, field), raw["song"][field])


async def test_song_detail_lyrics_rows(emu: Emulator, kit: Client) -> None:
    # song.lyrics[].rows[]: {"start", "end", "text"}
    feed = await _feed(emu, kit)
    song_id = feed.songs[0].song_id
    detail = await kit.mureka.music.get(song_id)
    raw = await _raw(emu, kit, f"/music/{song_id}")
    assert [[(r.start, r.end, r.text) for r in s.rows] for s in detail.song.lyrics] == [
        [(r.get("start"), r.get("end"), r["text"]) for r in s["rows"]]
        for s in raw["song"]["lyrics"]
    ]
    assert any(row.text for section in detail.song.lyrics for row in section.rows)


async def test_song_detail_video_object(emu: Emulator, kit: Client) -> None:
    # song.video: {} in the example (every field optional)
    feed = await _feed(emu, kit)
    detail = await kit.mureka.music.get(feed.songs[0].song_id)
    raw = await _raw(emu, kit, f"/music/{feed.songs[0].song_id}")
    assert "video" in raw["song"]
    assert detail.song.video is not None
    assert detail.song.video.video_url == raw["song"]["video"].get("video_url")


@pytest.mark.parametrize("field", ["id", "user_id", "stage_name", "profile_image"])
async def test_song_detail_user_field(emu: Emulator, kit: Client, field: str) -> None:
    # user: {"id": string, "user_id": number, "stage_name", "profile_image"}
    feed = await _feed(emu, kit)
    detail = await kit.mureka.music.get(feed.songs[0].song_id)
    raw = await _raw(emu, kit, f"/music/{feed.songs[0].song_id}")
    assert detail.user is not None
    assert getattr(detail.user, field) == raw["user"][field]
    assert isinstance(detail.user.id, str) and isinstance(detail.user.user_id, int)


async def test_song_detail_feed_id(emu: Emulator, kit: Client) -> None:
    feed = await _feed(emu, kit)
    detail = await kit.mureka.music.get(feed.songs[1].song_id)
    raw = await _raw(emu, kit, f"/music/{feed.songs[1].song_id}")
    assert detail.feed_id == raw["feed_id"] == feed.feed_id


async def test_400_error_and_code_is_a_bad_request(emu: Emulator) -> None:
    # 400 {"error": "<Error message>", "code": 400}: an account the service does not know.
    credentials = emu.credentials["mureka"]
    config = MurekaConfig(
        token=credentials.token, accounts=("55555555555",), base_url=emu.urls["mureka"]
    )
    async with emu.client(mureka=config, poll=FAST_POLL, retry=FAST_RETRY) as kit:
        with pytest.raises(errors.BadRequestError) as info:
            _ = [feed async for feed in kit.mureka.music.list(account="55555555555")]
    assert info.value.status == 400 and info.value.message
    assert [r.status for r in emu.requests if r.path == "/music/"] == [400]


@pytest.mark.parametrize("route", ["list", "song"])
async def test_401_unauthorized_is_an_authentication_error(emu: Emulator, route: str) -> None:
    # 401 {"error": "Unauthorized", "code": 401} on both GET routes
    config = MurekaConfig(
        token="user:1-not-a-token", accounts=_accounts(emu), base_url=emu.urls["mureka"]
    )
    async with emu.client(mureka=config, poll=FAST_POLL, retry=FAST_RETRY) as kit:

        async def call() -> None:
            if route == "list":
                _ = [feed async for feed in kit.mureka.music.list(account=_accounts(emu)[0])]
            else:
                await kit.mureka.music.get("user:777-mureka:1-song:2")

        with pytest.raises(errors.AuthenticationError, match="Unauthorized"):
            await call()


async def test_404_song_deleted(emu: Emulator, kit: Client) -> None:
    # 404 {"error": "The song has been deleted"}
    feed = await _feed(emu, kit)
    emu.mureka.delete_song(feed.songs[0].song_id)
    with pytest.raises(errors.NotFoundError, match="The song has been deleted"):
        await kit.mureka.music.get(feed.songs[0].song_id)
