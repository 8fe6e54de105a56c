"""Seed 000 (joplin, the iMuze music engine) row by row, through the public API.

Each test names the seed rows it covers; `docs/conformance.md` points at these node ids.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from imuzekit import Client, errors
from imuzekit._http import Request
from imuzekit.emulator import Emulator
from imuzekit.providers.joplin import Energy


async def _raw(emu: Emulator, kit: Client, path: str) -> Any:
    response = await kit.transport.send(
        Request("GET", emu.urls["joplin"] + path, provider="joplin")
    )
    return json.loads(response.body)


async def test_token_from_email_and_password_authorises_the_music_routes(
    emu: Emulator, kit: Client
) -> None:
    # PUT /accounts/token {"email", "password"} -> {"token": "<JWT>"}, sent as Authorization.
    await kit.joplin.login()
    assert emu.count("joplin", "PUT", "/accounts/token") == 1
    job = await kit.joplin.musics.create("electronic", "house", 4_000, "calm:1")
    await kit.joplin.musics.schema(job.id)
    statuses = [r.status for r in emu.requests if r.provider == "joplin" and r.method != "PUT"]
    assert statuses == [201, 200]
    assert emu.count("joplin", "PUT", "/accounts/token") == 1


async def test_genres_list_names_and_subgenres_without_auth(emu: Emulator, kit: Client) -> None:
    # GET /genres/ ("auth": false) -> {"genres": [{"name", "subgenres": [...]}]}
    genres = await kit.joplin.genres()
    assert emu.count("joplin", "PUT", "/accounts/token") == 0  # no token needed
    raw = await _raw(emu, kit, "/genres/")
    assert [(g.name, list(g.subgenres)) for g in genres] == [
        (item["name"], item["subgenres"]) for item in raw["genres"]
    ]


async def test_create_sends_every_parameter(emu: Emulator, kit: Client) -> None:
    # POST /musics {"genre", "subgenre", "duration_ms", "crop", "fadeout_ms", "voices_volume",
    # "structure": [{"start", "duration", "energy" | "movement"}]}
    job = await kit.joplin.musics.create(
        "jazz",
        "swing",
        8_000,
        "calm:0.5,dynamic:0.5",
        crop=True,
        fadeout_ms=1_000,
        voices_volume=-12,
    )
    sent = emu.joplin.musics[job.id].request
    assert (sent["genre"], sent["subgenre"], sent["duration_ms"]) == ("jazz", "swing", 8_000)
    assert (sent["crop"], sent["fadeout_ms"], sent["voices_volume"]) == (True, 1_000, -12)
    assert sent["structure"] == [
        {"start": 0.0, "duration": 0.5, "energy": "calm"},
        {"start": 0.5, "duration": 0.5, "energy": "dynamic"},
    ]


async def test_movement_types_are_sent_and_read_back(emu: Emulator, kit: Client) -> None:
    # "Each movement has a duration and either an energy level ... or a type (intro, verse,
    # refrain, ...)": the schema answers a type as "movement".
    job = await kit.joplin.musics.create("rock", "indie", 6_000, "intro:0.3,verse:0.7")
    schema = await kit.joplin.musics.schema(job.id)
    assert [(m.movement, m.energy) for m in schema.structure] == [("intro", None), ("verse", None)]


@pytest.mark.parametrize("energy", ["calm", "medium", "dynamic"])
async def test_each_energy_level(kit: Client, energy: str) -> None:
    job = await kit.joplin.musics.create("pop", "acoustic", 4_000, f"{energy}:1")
    music = await job.wait(timeout=5)
    assert [m.energy for m in music.structure] == [Energy(energy)]


@pytest.mark.parametrize(
    "field",
    ["id", "genre", "subgenre", "music_engine_version", "bpm", "measure", "duration_ms"],
)
async def test_create_and_schema_answer_field(emu: Emulator, kit: Client, field: str) -> None:
    # The create answer and GET /musics/:id/schema carry {"id", "genre", "subgenre",
    # "music_engine_version", "bpm", "measure", "duration_ms", "structure"}.
    job = await kit.joplin.musics.create("classical", "waltz", 6_000, "calm:0.4,medium:0.6")
    created = job.result
    assert created is not None
    schema = await kit.joplin.musics.schema(job.id)
    raw = await _raw(emu, kit, f"/musics/{job.id}/schema")
    assert field in raw
    assert getattr(created, field) == getattr(schema, field) == raw[field]


async def test_schema_structure_starts_and_durations(emu: Emulator, kit: Client) -> None:
    job = await kit.joplin.musics.create("classical", "waltz", 6_000, "calm:0.4,medium:0.6")
    schema = await kit.joplin.musics.schema(job.id)
    raw = await _raw(emu, kit, f"/musics/{job.id}/schema")
    assert [(m.start, m.duration) for m in schema.structure] == [
        (item["start"], item["duration"]) for item in raw["structure"]
    ]


async def test_mp3_by_id_is_the_rendered_file(emu: Emulator, kit: Client) -> None:
    # GET /musics/:id/mp3 (id: string): the mp3 once rendered; unknown ids are not found.
    job = await kit.joplin.musics.create("lofi", "sleep", 4_000, "calm:1")
    await job.wait(timeout=5)
    data = b"".join([chunk async for chunk in kit.joplin.musics.mp3(job.id)])
    assert data == emu.joplin.audio_bytes(job.id)
    with pytest.raises(errors.NotFoundError):
        await kit.joplin.musics.schema("no-such-music")


async def test_music_routes_need_the_token(emu: Emulator) -> None:
    # "An authentication token is required for this route."
    from imuzekit import JoplinConfig

    config = JoplinConfig(token="refused", base_url=emu.urls["joplin"])
    async with emu.client(joplin=config) as kit:
        with pytest.raises(errors.AuthenticationError):
            await kit.joplin.musics.create("electronic", "house", 4_000, "calm:1")
    assert emu.joplin.musics_created == 0
