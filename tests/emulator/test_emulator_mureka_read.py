"""The emulated Mureka (useapi.net): wiring, authentication and accounts, the music list,
song details. Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from imuzekit.emulator import Emulator

from ._mureka_helpers import (
    FIRST,
    SECOND,
    SEED_SONG_KEYS,
    SONG_ID,
    listing,
    song_url,
    url,
)
from .conftest import call

# --- wiring ----------------------------------------------------------------------------------


async def test_mounted_with_a_token_and_two_accounts(emu: Emulator) -> None:
    assert emu.urls["mureka"] == f"http://127.0.0.1:{emu.port}/mureka/v1/mureka"
    creds = emu.credentials["mureka"]
    assert creds.token == emu.mureka.token
    assert creds.token is not None and creds.token.startswith("user:777-")
    assert creds.extra == {"accounts": f"{FIRST},{SECOND}"}
    assert list(emu.mureka.accounts) == [FIRST, SECOND]
    assert all(a.isdigit() for a in emu.mureka.accounts)
    banner = emu.describe()
    assert f"mureka     {emu.urls['mureka']}" in banner
    assert f"token={creds.token} accounts={FIRST},{SECOND}" in banner
    emu.mureka.add_account("55555555555555")
    assert emu.credentials["mureka"].extra["accounts"] == f"{FIRST},{SECOND},55555555555555"
    assert emu.mureka.max_running["55555555555555"] == 0
    for bad in ("abc", "", "1" * 19, FIRST):
        with pytest.raises(ValueError, match="account"):
            emu.mureka.add_account(bad)


async def test_client_is_configured_for_mureka(emu: Emulator) -> None:
    async with emu.client() as kit:
        assert "mureka" in repr(kit)
        config = kit._configs["mureka"]
        assert config.token == emu.mureka.token
        assert config.accounts == (FIRST, SECOND)
        assert config.base_url == emu.urls["mureka"]
    async with emu.client(mureka=None) as kit:
        assert "mureka" not in repr(kit)


# --- authentication and accounts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/music/"),
        ("GET", "/music/user:777-mureka:1-song:1"),
        ("POST", "/music/create"),
        ("POST", "/music/create-advanced"),
        ("POST", "/music/create-instrumental"),
        ("GET", "/jobs"),
        ("GET", "/jobs/j1m-u777-a1-bot:mureka"),
    ],
)
async def test_every_route_needs_the_token(
    emu: Emulator, anon: aiohttp.ClientSession, method: str, path: str
) -> None:
    token = emu.mureka.token
    for headers in (
        {},
        {"Authorization": token},  # no scheme
        {"Authorization": f"Token {token}"},
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer é"},
    ):
        status, body = await call(anon, method, url(emu, path), headers=headers, json={})
        assert (status, body) == (401, {"error": "Unauthorized", "code": 401}), headers
    assert emu.mureka.creations == 0


async def test_reissued_token_replaces_the_old_one(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    old = emu.mureka.token
    new = emu.mureka.reissue_token()
    assert new != old and emu.credentials["mureka"].token == new
    for token, expected in ((old, 401), (new, 200)):
        headers = {"Authorization": f"bearer {token}"}  # the scheme is case-insensitive
        status, _ = await call(anon, "GET", url(emu, "/jobs"), headers=headers)
        assert status == expected


async def test_account_is_required_with_several_accounts(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    error = "Parameter account is required when multiple accounts configured"
    expected = {"error": error, "code": 400}
    assert await call(mhttp, "GET", url(emu, "/music/")) == (400, expected)
    assert await call(mhttp, "GET", url(emu, "/music/?account=")) == (400, expected)
    status, body = await call(mhttp, "POST", url(emu, "/music/create"), json={"async": True})
    assert (status, body) == (400, expected)
    assert emu.mureka.creations == 0


async def test_unknown_account_is_named(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    status, body = await call(mhttp, "GET", url(emu, "/music/?account=424242"))
    assert (status, body) == (400, {"error": "Account 424242 is not configured", "code": 400})
    payload: dict[str, Any] = {"account": "31337", "async": True}
    status, body = await call(mhttp, "POST", url(emu, "/music/create"), json=payload)
    assert (status, body) == (400, {"error": "Account 31337 is not configured", "code": 400})
    payload["account"] = 31337
    status, body = await call(mhttp, "POST", url(emu, "/music/create"), json=payload)
    assert (status, body) == (400, {"error": "account: must be a string", "code": 400})


async def test_account_is_optional_with_a_single_account(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    emu.mureka.remove_account(SECOND)
    assert emu.credentials["mureka"].extra["accounts"] == FIRST
    status, body = await call(
        mhttp, "POST", url(emu, "/music/create"), json={"prompt": "x", "async": True}
    )
    assert status == 201
    assert body["request"] == {"prompt": "x", "async": True, "account": FIRST}
    assert f"-a{FIRST}-" in body["jobid"]
    page = await listing(emu, mhttp, account="")
    assert page["total"] == 1
    emu.mureka.remove_account(FIRST)
    status, body = await call(mhttp, "GET", url(emu, "/music/"))
    assert (status, body) == (400, {"error": "No Mureka accounts configured", "code": 400})


# --- music list ------------------------------------------------------------------------------


async def test_list_pages_newest_first_with_last_id(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    feeds = emu.mureka.add_feeds(FIRST, 65)
    emu.mureka.add_feeds(SECOND, 3)  # another account's feeds never show up
    ids = [feed.feed_id for feed in feeds][::-1]
    pages = [await listing(emu, mhttp)]
    while pages[-1]["more"]:
        pages.append(await listing(emu, mhttp, last_id=str(pages[-1]["last_id"])))
    assert [len(page["list"]) for page in pages] == [20, 20, 20, 5]
    assert [page["more"] for page in pages] == [True, True, True, False]
    assert {page["total"] for page in pages} == {65}
    seen = [feed["feed_id"] for page in pages for feed in page["list"]]
    assert seen == ids
    assert [page["last_id"] for page in pages] == [ids[19], ids[39], ids[59], ids[64]]
    assert list(pages[0]) == ["list", "last_id", "more", "total"]
    # The route also answers without the trailing slash, as the SDK may send it.
    status, body = await call(mhttp, "GET", url(emu, f"/music?account={FIRST}"))
    assert (status, body) == (200, pages[0])
    assert emu.count("mureka", "GET", "/music*") == 5


async def test_list_feed_and_song_shapes_follow_seed_002(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    emu.mureka.add_feeds(FIRST, 1, prompt="latin love song")
    (feed,) = (await listing(emu, mhttp))["list"]
    assert list(feed) == ["feed_id", "state", "songs", "is_accelerated"]
    assert (feed["state"], feed["is_accelerated"]) == (3, True)
    assert isinstance(feed["feed_id"], int)
    first, second = feed["songs"]
    assert (first["version"], second["version"]) == ("1", "2")
    for song in (first, second):
        assert list(song) == SEED_SONG_KEYS
        match = SONG_ID.match(song["song_id"])
        assert match is not None and match.group(1) == FIRST
        assert song["title"] == "Latin Love Song"
        assert 20_000 <= song["duration_milliseconds"] <= 40_000
        assert abs(song["generate_at"] - emu.clock.wall()) < 5
        assert song["genres"][0] == "latin" and len(song["genres"]) == 2
        assert len(song["moods"]) == 3
        assert song["mp3_url"].startswith(f"{emu.base_url}/mureka/cdn/")
        assert song["mp3_url"].endswith(".mp3")
        assert song["cover"].endswith(".png")
        assert song["share_link"] == f"{emu.base_url}/mureka/cdn/share/{song['share_key']}"
        assert (song["machine_audit_state"], song["credit_type"]) == (1, 1)
    assert first["song_id"] != second["song_id"]


async def test_expand_adds_lyrics(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    emu.mureka.add_feeds(FIRST, 2)
    plain = await listing(emu, mhttp, expand="false")
    assert all("lyrics" not in song for feed in plain["list"] for song in feed["songs"])
    expanded = await listing(emu, mhttp, expand="true")
    for feed in expanded["list"]:
        for song in feed["songs"]:
            assert list(song) == [*SEED_SONG_KEYS[:-1], "lyrics", "share_link"]
            rows = [row for section in song["lyrics"] for row in section["rows"]]
            assert len(rows) == 6 and all(row["text"] for row in rows)
            assert all(0 < r["start"] < r["end"] < song["duration_milliseconds"] for r in rows)
    status, body = await call(mhttp, "GET", url(emu, f"/music/?account={FIRST}&expand=maybe"))
    assert (status, body) == (400, {"error": "expand: must be true or false", "code": 400})


async def test_empty_list_and_bad_last_id(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    assert await listing(emu, mhttp) == {"list": [], "more": False, "total": 0}
    feeds = emu.mureka.add_feeds(FIRST, 2)
    # A cursor older than every feed gives an empty last page, without a cursor of its own.
    page = await listing(emu, mhttp, last_id=str(feeds[0].feed_id))
    assert page == {"list": [], "more": False, "total": 2}
    for bad in ("x", "-1", "1.5", "9" * 21):
        status, body = await call(
            mhttp, "GET", url(emu, "/music/"), params={"account": FIRST, "last_id": bad}
        )
        assert (status, body) == (400, {"error": "last_id: must be an integer", "code": 400})


# --- song details ----------------------------------------------------------------------------


async def test_song_details_follow_seed_003(emu: Emulator, mhttp: aiohttp.ClientSession) -> None:
    (feed,) = emu.mureka.add_feeds(SECOND, 1, prompt="rock anthem for the night")
    song = feed.songs[1]
    status, body = await call(mhttp, "GET", song_url(emu, song.song_id))
    assert status == 200
    assert list(body) == ["song", "user", "feed_id"]
    assert body["feed_id"] == feed.feed_id
    detail = body["song"]
    assert list(detail) == [*SEED_SONG_KEYS[:-1], "lyrics", "video", "share_link"]
    assert (detail["song_id"], detail["version"], detail["video"]) == (song.song_id, "2", {})
    verse, chorus = detail["lyrics"]
    assert [row["text"] for row in verse["rows"]] == [
        "Rock anthem for the night",
        "Every step a story to be told",
        "Hold the moment, never let it go",
        "Sing it louder than the radio",
    ]
    # The chorus names the subject, not the prompt's dangling "for".
    assert [row["text"] for row in chorus["rows"]] == [
        "Oh, rock anthem",
        "We sing it all night long",
    ]
    starts = [row["start"] for section in detail["lyrics"] for row in section["rows"]]
    assert starts == sorted(starts)
    user = body["user"]
    assert list(user) == ["id", "user_id", "stage_name", "profile_image"]
    assert (user["id"], user["user_id"]) == (SECOND, int(SECOND))
    assert user["stage_name"] and user["profile_image"].endswith(".png")
    # The colons may also be sent raw: the server decodes the path either way.
    status, raw = await call(mhttp, "GET", url(emu, f"/music/{song.song_id}"))
    assert (status, raw) == (200, body)
    assert emu.count("mureka", "GET", "/music/{song_id}") == 2


async def test_deleted_and_unknown_songs_are_404(
    emu: Emulator, mhttp: aiohttp.ClientSession
) -> None:
    emu.mureka.add_feeds(FIRST, 1)
    (feed,) = emu.mureka.add_feeds(FIRST, 1)
    deleted = {"error": "The song has been deleted"}
    emu.mureka.delete_song(feed.songs[0].song_id)
    assert await call(mhttp, "GET", song_url(emu, feed.songs[0].song_id)) == (404, deleted)
    for unknown in ("user:777-mureka:1-song:1", "nope", feed.songs[0].song_id + "0"):
        assert await call(mhttp, "GET", song_url(emu, unknown)) == (404, deleted)
    # The feed stays listed with its other song until that one is deleted too.
    page = await listing(emu, mhttp)
    assert page["total"] == 2
    assert [s["song_id"] for s in page["list"][0]["songs"]] == [feed.songs[1].song_id]
    emu.mureka.delete_song(feed.songs[1].song_id)
    page = await listing(emu, mhttp)
    assert page["total"] == 1 and page["list"][0]["feed_id"] != feed.feed_id
    async with mhttp.get(emu.mureka.cdn_url(emu.base_url, feed.songs[1].key, "mp3")) as response:
        assert response.status == 404
    with pytest.raises(KeyError):
        emu.mureka.delete_song("user:777-mureka:1-song:1")
