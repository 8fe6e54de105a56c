"""The emulated iMuze API v4: shapes from seed 001, auth, validation, statuses, listing, tags
(the files: `test_emulator_imuze_files.py`)."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest

from imuzekit.emulator import Emulator
from imuzekit.emulator.imuze import DEMO_EMAIL, DEMO_PASSWORD
from tests._titles import numbered_title

from .conftest import RENDER_SECONDS, SONG, api, call, create_song

# --- authentication ------------------------------------------------------------------------


async def test_login_returns_a_working_token(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    creds = {"token": {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}}
    status, body = await call(anon, "POST", api(emu, "/tokens"), json=creds)
    assert status == 200
    assert list(body) == ["response"]
    token = body["response"]
    assert isinstance(token, str)
    assert len(token) >= 32
    assert token != emu.credentials["imuze"].token
    status, _ = await call(anon, "GET", api(emu, "/arrangements"), headers={"Authorization": token})
    assert status == 200


async def test_login_token_style(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    emu.imuze.token_response_style = "token"
    creds = {"token": {"email": DEMO_EMAIL.upper(), "password": DEMO_PASSWORD}}
    status, body = await call(anon, "POST", api(emu, "/tokens"), json=creds)
    assert status == 200
    assert set(body) == {"token", "user_id"}
    assert body["user_id"] == emu.imuze.demo_user.id
    assert emu.imuze.user_for_token(body["token"]) == emu.imuze.demo_user


@pytest.mark.parametrize(
    ("email", "password"),
    [(DEMO_EMAIL, "wrong-password"), ("nobody@imuzekit.test", DEMO_PASSWORD)],
)
async def test_login_with_wrong_credentials_is_401(
    emu: Emulator, anon: aiohttp.ClientSession, email: str, password: str
) -> None:
    creds = {"token": {"email": email, "password": password}}
    status, body = await call(anon, "POST", api(emu, "/tokens"), json=creds)
    assert (status, body["code"]) == (401, 401)
    assert body["error"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b'"token"', "token"),
        (b'{"token": "demo"}', "token"),
        (b'{"email": "demo@imuzekit.test", "password": "x"}', "token"),
        (b'{"token": {"email": "demo@imuzekit.test"}}', "token.password"),
        (b'{"token": {"email": 5, "password": "x"}}', "token.email"),
    ],
)
async def test_login_with_malformed_body_is_400(
    emu: Emulator, anon: aiohttp.ClientSession, data: bytes, field: str
) -> None:
    status, body = await call(anon, "POST", api(emu, "/tokens"), data=data)
    assert status == 400
    assert body["code"] == 400
    assert field in body["error"]


@pytest.mark.parametrize("header", [None, "", "nope", "Bearer ", "Token nope"])
async def test_bad_or_missing_token_is_401(
    emu: Emulator, anon: aiohttp.ClientSession, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in [("GET", "/arrangements"), ("GET", "/songs"), ("POST", "/songs")]:
        status, body = await call(anon, method, api(emu, path), headers=headers, json=SONG)
        assert (status, body) == (401, {"error": "Unauthorized", "code": 401})
    assert emu.imuze.songs_created == 0


@pytest.mark.parametrize(
    "scheme", ["{t}", "Token {t}", "Bearer {t}", "bearer {t}", 'Token token="{t}"']
)
async def test_token_schemes(emu: Emulator, anon: aiohttp.ClientSession, scheme: str) -> None:
    header = scheme.format(t=emu.credentials["imuze"].token)
    status, _ = await call(anon, "GET", api(emu, "/songs"), headers={"Authorization": header})
    assert status == 200


async def test_revoke_and_reissue(emu: Emulator, http: aiohttp.ClientSession) -> None:
    old = emu.credentials["imuze"].token
    emu.imuze.revoke_tokens()
    status, _ = await call(http, "GET", api(emu, "/arrangements"))
    assert status == 401
    new = emu.imuze.reissue_api_token()
    assert new != old
    assert emu.credentials["imuze"].token == new
    status, _ = await call(http, "GET", api(emu, "/arrangements"), headers={"Authorization": new})
    assert status == 200
    other = emu.imuze.issue_token(DEMO_EMAIL)
    status, _ = await call(http, "GET", api(emu, "/songs"), headers={"Authorization": other})
    assert status == 200


# --- arrangements --------------------------------------------------------------------------


async def test_arrangements_index(emu: Emulator, http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", api(emu, "/arrangements"))
    assert status == 200
    assert set(body) == {"count", "response"}
    assert body["count"] == len(body["response"]) == 12
    assert all(set(item) == {"id", "name"} for item in body["response"])
    names = {item["name"] for item in body["response"]}
    assert "Cinematic Strings" in names
    assert len({item["id"] for item in body["response"]}) == 12


async def test_arrangement_show(emu: Emulator, http: aiohttp.ClientSession) -> None:
    images = []
    for arrangement_id in range(1, 13):
        status, body = await call(http, "GET", api(emu, f"/arrangements/{arrangement_id}"))
        assert status == 200
        assert {"description", "image_url", "id", "genre_list"} <= set(body)
        assert body["id"] == arrangement_id
        assert body["genre_list"]
        assert all(isinstance(genre, str) for genre in body["genre_list"])
        images.append(body["image_url"])
    assert None in images
    url = next(image for image in images if image is not None)
    assert url.startswith(emu.base_url)
    async with http.get(url) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        assert (await response.read()).startswith(b"\x89PNG")


@pytest.mark.parametrize("arrangement_id", ["999", "0", "abc", "-1", "1.5", "9" * 60, "%20"])
async def test_unknown_arrangement_is_404(
    emu: Emulator, http: aiohttp.ClientSession, arrangement_id: str
) -> None:
    status, body = await call(http, "GET", api(emu, f"/arrangements/{arrangement_id}"))
    assert (status, body) == (404, {"error": "Not found", "code": 404})


# --- creating songs ------------------------------------------------------------------------


async def test_create_song_shape(emu: Emulator, http: aiohttp.ClientSession) -> None:
    body = await create_song(emu, http, title="Sunrise", arrangement_id=4, desired_length=42)
    assert set(body) == {
        "title",
        "musical_mode",
        "arrangement_id",
        "timeline_url",
        "mp3",
        "status_channel",
        "id",
    }
    song = emu.imuze.songs[body["id"]]
    assert (body["title"], body["arrangement_id"]) == ("Sunrise", 4)
    assert body["status_channel"] == f"songs:{song.id}"
    assert body["mp3"] == emu.base_url + emu.imuze.mp3_path(song.id)
    assert body["mp3"].endswith(f"/imuze/api/4/files/songs/{song.id}/{song.key}.mp3")
    assert body["timeline_url"] == emu.base_url + emu.imuze.timeline_path(song.id)
    assert body["musical_mode"] == song.musical_mode
    assert (song.desired_length, song.tags, song.owner) == (42, ("upbeat",), 1)
    assert emu.imuze.songs_created == 1
    other = await create_song(emu, http)
    assert other["id"] == body["id"] + 1
    assert emu.imuze.songs[other["id"]].key != song.key


_INVALID_SONGS: list[tuple[dict[str, Any], str]] = [
    ({"title": None}, "title"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "x" * 256}, "title"),
    ({"title": 12}, "title"),
    # iMuze's own schema (createSong.input.json): minLength 4, pattern ^[a-zA-Z ]*$.
    ({"title": "abc"}, "title"),
    ({"title": "    "}, "title"),
    ({"title": "Song 42"}, "title"),
    ({"title": "rock-n-roll"}, "title"),
    ({"title": "Caf\u00e9 Noir"}, "title"),
    ({"title": "Morning\n"}, "title"),
    # Without an arrangement id the tags choose one (seed 001: "by ids ... or by tags"): these
    # match none, or there are none to match.
    ({"arrangement_id": None, "tags": ["no-such-style"]}, "arrangement_id"),
    ({"arrangement_id": None, "tags": []}, "arrangement_id"),
    ({"arrangement_id": "1"}, "arrangement_id"),
    ({"arrangement_id": 999}, "arrangement_id"),
    ({"arrangement_id": True}, "arrangement_id"),
    ({"arrangement_id": 1.0}, "arrangement_id"),
    ({"tags": None}, "tags"),
    ({"tags": "rock"}, "tags"),
    ({"tags": ["rock", 3]}, "tags"),
    ({"desired_length": None}, "desired_length"),
    ({"desired_length": 0}, "desired_length"),
    ({"desired_length": 901}, "desired_length"),
    ({"desired_length": 60.5}, "desired_length"),
    ({"desired_length": "60"}, "desired_length"),
    ({"desired_length": 10**40}, "desired_length"),
]


@pytest.mark.parametrize(("change", "field"), _INVALID_SONGS)
async def test_create_song_validation(
    emu: Emulator, http: aiohttp.ClientSession, change: dict[str, Any], field: str
) -> None:
    song = {key: value for key, value in {**SONG, **change}.items() if value is not None}
    status, body = await call(http, "POST", api(emu, "/songs"), json=song)
    assert status == 400
    assert body["code"] == 400
    assert body["error"].startswith(field)
    assert emu.imuze.songs_created == 0


async def test_create_song_boundaries_accepted(emu: Emulator, http: aiohttp.ClientSession) -> None:
    await create_song(emu, http, title="x" * 255, desired_length=900, tags=[])
    await create_song(emu, http, title="Song", desired_length=1)
    await create_song(emu, http, title=" a b ")
    assert emu.imuze.songs_created == 3


async def test_create_song_title_refusal_names_imuzes_rule(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    song = {**SONG, "title": "Song 42"}
    status, body = await call(http, "POST", api(emu, "/songs"), json=song)
    assert (status, set(body)) == (400, {"error", "code"})
    assert body["error"] == (
        "title must be 4 to 255 characters, ASCII letters and spaces only (^[a-zA-Z ]*$), "
        "not only spaces"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"[1, 2]",
        b'"song"',
        b"\xff\xfe",
        b"[" * 100_000,
        b'{"desired_length": ' + b"9" * 5000 + b"}",
    ],
)
async def test_malformed_song_bodies_are_400(
    emu: Emulator, http: aiohttp.ClientSession, data: bytes
) -> None:
    status, body = await call(http, "POST", api(emu, "/songs"), data=data)
    assert status == 400
    assert body["code"] == 400


async def test_oversized_body_is_413_json(emu: Emulator, http: aiohttp.ClientSession) -> None:
    data = json.dumps({**SONG, "tags": ["x" * 1000] * 3000}).encode()
    status, body = await call(http, "POST", api(emu, "/songs"), data=io.BytesIO(data))
    assert (status, body["code"]) == (413, 413)


async def test_songs_are_private_to_their_owner(emu: Emulator, http: aiohttp.ClientSession) -> None:
    created = await create_song(emu, http)
    emu.imuze.add_user("other@imuzekit.test", "secret")
    other = {"Authorization": emu.imuze.issue_token("other@imuzekit.test")}
    status, body = await call(http, "GET", api(emu, f"/songs/{created['id']}"), headers=other)
    assert (status, body) == (404, {"error": "Not found", "code": 404})
    status, body = await call(http, "GET", api(emu, "/songs"), headers=other)
    assert body == {"count": 0, "response": []}


# --- statuses ------------------------------------------------------------------------------


async def _status(emu: Emulator, http: aiohttp.ClientSession, song_id: int) -> Any:
    status, body = await call(http, "GET", api(emu, f"/songs/{song_id}"))
    assert status == 200
    _, listing = await call(http, "GET", api(emu, "/songs"))
    listed = {item["id"]: item["status"] for item in listing["response"]}
    assert listed[song_id] == body["status"]
    return body["status"]


async def test_song_show_shape_and_clock_driven_status(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    created = await create_song(emu, http)
    status, body = await call(http, "GET", api(emu, f"/songs/{created['id']}"))
    assert status == 200
    assert set(body) == {"id", "title", "status", "mp3_url", "arrangement_name", "timeline_url"}
    assert body["mp3_url"] == created["mp3"]
    assert body["timeline_url"] == created["timeline_url"]
    assert body["arrangement_name"] == "Cinematic Strings"
    assert body["status"] == "processing"
    emu.clock.advance(RENDER_SECONDS - 0.01)
    assert await _status(emu, http, created["id"]) == "processing"
    emu.clock.advance(0.01)
    assert await _status(emu, http, created["id"]) == "ready"


async def test_set_status_overrides_until_cleared(
    emu: Emulator, http: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    created = await create_song(emu, http)
    song_id = created["id"]
    for forced in ("failed", "queued", "weird", 3):
        emu.imuze.set_status(song_id, forced)
        assert await _status(emu, http, song_id) == forced
    emu.clock.advance(RENDER_SECONDS)
    emu.imuze.set_status(song_id, "failed")
    assert await _status(emu, http, song_id) == "failed"
    async with anon.get(created["mp3"]) as response:
        assert response.status == 404
    emu.imuze.set_status(song_id, None)
    assert await _status(emu, http, song_id) == "ready"
    with pytest.raises(KeyError):
        emu.imuze.set_status(99999, "failed")


async def test_forced_ready_serves_files_early(
    emu: Emulator, http: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    created = await create_song(emu, http)
    emu.imuze.set_status(created["id"], "ready")
    async with anon.get(created["mp3"]) as response:
        assert response.status == 200


async def test_render_seconds_range_is_seeded() -> None:
    def draws(seed: int) -> list[float]:
        emulator = Emulator(render_seconds=(1.0, 3.0), seed=seed)
        songs = [emulator.imuze.create_song(title="t", arrangement_id=1) for _ in range(20)]
        return [song.render_seconds for song in songs]

    first = draws(7)
    assert all(1.0 <= value <= 3.0 for value in first)
    assert len(set(first)) == 20
    assert draws(7) == first
    assert draws(8) != first


# --- listing -------------------------------------------------------------------------------


async def test_list_songs_newest_first_and_paged(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    ids = [(await create_song(emu, http, title=numbered_title(n)))["id"] for n in range(7)]
    newest_first = ids[::-1]
    status, body = await call(http, "GET", api(emu, "/songs"))
    assert status == 200
    assert body["count"] == 7
    assert [item["id"] for item in body["response"]] == newest_first
    first = body["response"][0]
    assert set(first) == {"id", "title", "status", "mp3_url", "arrangement_name"}
    assert (first["title"], first["status"]) == ("Song g", "processing")

    pages = []
    for page in (1, 2, 3, 4):
        status, body = await call(http, "GET", api(emu, f"/songs?page={page}&per_page=3"))
        assert status == 200
        assert body["count"] == 7
        pages.append([item["id"] for item in body["response"]])
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:], []]
    _, body = await call(http, "GET", api(emu, "/songs?per_page=2"))
    assert [item["id"] for item in body["response"]] == newest_first[:2]
    _, body = await call(http, "GET", api(emu, "/songs?page=1"))
    assert [item["id"] for item in body["response"]] == newest_first


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=-1", "page"),
        ("per_page=0", "per_page"),
        ("per_page=1001", "per_page"),
        ("per_page=" + "9" * 100, "per_page"),
    ],
)
async def test_list_songs_bad_paging_is_400(
    emu: Emulator, http: aiohttp.ClientSession, query: str, field: str
) -> None:
    status, body = await call(http, "GET", api(emu, f"/songs?{query}"))
    assert (status, body["code"]) == (400, 400)
    assert body["error"].startswith(field + " ")


# --- songs from tags (seed 001: arrangements "by ids ... or by tags") ------------------------


@pytest.mark.parametrize("absent", ["missing", "null"])
async def test_create_song_by_tags_chooses_the_best_matching_arrangement(
    emu: Emulator, http: aiohttp.ClientSession, absent: str
) -> None:
    song: dict[str, Any] = {**SONG, "tags": ["Swing", "chill", "jazz"]}
    if absent == "missing":
        del song["arrangement_id"]
    else:
        song["arrangement_id"] = None
    status, body = await call(http, "POST", api(emu, "/songs"), json=song)
    # "Jazz Piano Trio" (jazz, swing) shares two tags, "Lo-Fi Study Beats" (chill) one.
    assert status == 201, body
    assert body["arrangement_id"] == 7
    record = emu.imuze.songs[body["id"]]
    assert (record.arrangement_id, record.tags) == (7, ("Swing", "chill", "jazz"))
    status, shown = await call(http, "GET", api(emu, f"/songs/{body['id']}"))
    assert (status, shown["arrangement_name"]) == (200, "Jazz Piano Trio")


async def test_arrangement_for_tags_breaks_ties_by_lowest_id(emu: Emulator) -> None:
    # "electronic" is in Ambient Drift (4), Synthwave Nights (8) and Deep House Groove (12).
    state = emu.imuze
    assert state.arrangement_for_tags(["electronic"]) == state.arrangements[4]
    assert state.arrangement_for_tags(["ELECTRONIC ", "dance"]) == state.arrangements[12]
    assert state.arrangement_for_tags(["polka"]) is None
    assert state.arrangement_for_tags([]) is None


async def test_create_song_by_tags_that_match_nothing_is_400(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    song = {key: value for key, value in SONG.items() if key != "arrangement_id"}
    status, body = await call(http, "POST", api(emu, "/songs"), json={**song, "tags": ["polka"]})
    assert status == 400
    assert set(body) == {"error", "code"} and body["code"] == 400
    assert body["error"].startswith("arrangement_id") and "polka" in body["error"]
    assert emu.imuze.songs_created == 0


async def test_count_as_string_sends_numeric_string_counts(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    await create_song(emu, http)
    emu.imuze.count_as_string = True
    status, songs = await call(http, "GET", api(emu, "/songs"))
    assert (status, songs["count"]) == (200, "1")
    status, arrangements = await call(http, "GET", api(emu, "/arrangements"))
    assert (status, arrangements["count"]) == (200, str(len(emu.imuze.arrangements)))
