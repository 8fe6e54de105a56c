"""Seed 001 (iMuze API v4) row by row, through the public API against the emulator.

Each test names the seed rows it covers; `docs/conformance.md` points at these node ids. The raw
answer is read through the same client's transport (authenticated the same way), so a test checks
both that the emulator sends the seed's field and that the SDK reads it into its model.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from imuzekit import Client, JobState, errors
from imuzekit._http import Request
from imuzekit.emulator import Emulator


async def _raw(emu: Emulator, kit: Client, path: str) -> Any:
    response = await kit.transport.send(Request("GET", emu.urls["imuze"] + path, provider="imuze"))
    return json.loads(response.body)


async def test_token_is_created_from_email_and_password_and_sent_on_every_call(
    emu: Emulator, kit: Client
) -> None:
    # POST /tokens {"token": {"email", "password"}} -> {"response": "<token>"}; the token then
    # authorises GET /arrangements ("Authorization: API_KEY").
    await kit.imuze.login()
    assert emu.count("imuze", "POST", "/tokens") == 1
    _ = [a async for a in kit.imuze.arrangements.list()]
    assert [r.status for r in emu.requests if r.path == "/arrangements"] == [200]
    assert emu.count("imuze", "POST", "/tokens") == 1


async def test_arrangements_index_count_and_items(emu: Emulator, kit: Client) -> None:
    # GET /arrangements -> {"count", "response": [{"id", "name"}]}
    arrangements = [a async for a in kit.imuze.arrangements.list()]
    raw = await _raw(emu, kit, "/arrangements")
    assert raw["count"] == len(arrangements) == len(emu.imuze.arrangements)
    assert [(a.id, a.name) for a in arrangements] == [
        (item["id"], item["name"]) for item in raw["response"]
    ]


@pytest.mark.parametrize("field", ["id", "description", "image_url", "genre_list"])
async def test_arrangement_show_field(emu: Emulator, kit: Client, field: str) -> None:
    # GET /arrangements/:id (id: integer) -> {"description", "image_url", "id", "genre_list"}
    arrangement_id = next(iter(emu.imuze.arrangements))
    shown = await kit.imuze.arrangements.get(arrangement_id)
    raw = await _raw(emu, kit, f"/arrangements/{arrangement_id}")
    assert field in raw
    value = getattr(shown, field)
    assert (list(value) if field == "genre_list" else value) == raw[field]
    assert shown.id == arrangement_id


async def test_arrangement_show_unknown_id_is_not_found(kit: Client) -> None:
    with pytest.raises(errors.NotFoundError):
        await kit.imuze.arrangements.get(987_654)


async def test_song_create_sends_every_parameter(emu: Emulator, kit: Client) -> None:
    # POST /songs {"title", "arrangement_id", "tags", "desired_length"}: all four arrive.
    job = await kit.imuze.songs.create(
        title="Every Field", arrangement_id=2, tags=["calm", "piano"], desired_length=5
    )
    record = emu.imuze.songs[int(job.id)]
    assert (record.title, record.arrangement_id, record.tags, record.desired_length) == (
        "Every Field",
        2,
        ("calm", "piano"),
        5,
    )


@pytest.mark.parametrize(
    "field",
    ["title", "musical_mode", "arrangement_id", "timeline_url", "mp3", "status_channel", "id"],
)
async def test_song_create_answer_field(emu: Emulator, kit: Client, field: str) -> None:
    # The create answer: {"title", "musical_mode", "arrangement_id", "timeline_url", "mp3",
    # "status_channel", "id"}; the SDK keeps "mp3" as the song's mp3_url.
    job = await kit.imuze.songs.create(title="Answer", arrangement_id=1, tags=[], desired_length=3)
    song = job.result
    assert song is not None
    record = emu.imuze.songs[int(job.id)]
    expected: dict[str, Any] = {
        "title": "Answer",
        "musical_mode": record.musical_mode,
        "arrangement_id": 1,
        "id": record.id,
    }
    attribute = "mp3_url" if field == "mp3" else field
    value = getattr(song, attribute)
    if field in expected:
        assert value == expected[field]
    else:
        assert isinstance(value, str) and value


@pytest.mark.parametrize("field", ["id", "title", "status", "mp3_url", "arrangement_name"])
async def test_songs_index_field(emu: Emulator, kit: Client, field: str) -> None:
    # GET /songs -> {"count", "response": [{"id", "title", "status", "mp3_url",
    # "arrangement_name"}]}
    for title in ("First Song", "Second Song"):
        await kit.imuze.songs.create(title=title, arrangement_id=1, tags=[], desired_length=2)
    songs = [s async for s in kit.imuze.songs.list()]
    raw = await _raw(emu, kit, "/songs")
    assert raw["count"] == len(songs) == 2
    assert [getattr(s, field) for s in songs] == [item[field] for item in raw["response"]]


@pytest.mark.parametrize(
    "field", ["id", "title", "status", "mp3_url", "arrangement_name", "timeline_url"]
)
async def test_song_show_field(emu: Emulator, kit: Client, field: str) -> None:
    # GET /songs/:id (id: integer) -> {"id", "title", "status", "mp3_url", "arrangement_name",
    # "timeline_url"}
    job = await kit.imuze.songs.create(title="Shown", arrangement_id=1, tags=[], desired_length=2)
    song = await kit.imuze.songs.get(int(job.id))
    raw = await _raw(emu, kit, f"/songs/{job.id}")
    assert field in raw
    assert getattr(song, field) == raw[field]


async def test_song_status_goes_from_processing_to_ready(emu: Emulator, kit: Client) -> None:
    # "Wait until the status is 'ready' on song#show, then get the mp3 url".
    job = await kit.imuze.songs.create(
        title="Status Song", arrangement_id=1, tags=[], desired_length=2
    )
    first = await kit.imuze.songs.get(int(job.id))
    assert first.status == "processing" and first.state is not JobState.READY
    song = await job.wait(timeout=5)
    assert song.status == "ready" and song.state is JobState.READY and song.mp3_url


async def test_missing_token_is_an_authentication_error(emu: Emulator) -> None:
    # Every route but POST /tokens needs the token: a refused one is AuthenticationError.
    from imuzekit import ImuzeConfig

    config = ImuzeConfig(token="refused", base_url=emu.urls["imuze"])
    async with emu.client(imuze=config) as kit:
        with pytest.raises(errors.AuthenticationError):
            _ = [a async for a in kit.imuze.arrangements.list()]
