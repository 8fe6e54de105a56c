"""The emulated iMuze music engine (joplin): creating musics (validation, the schema) and
the schema route. Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp
import pytest

from imuzekit.emulator import Emulator
from imuzekit.emulator.joplin import ENGINE_VERSION, InvalidMusic

from ._joplin_helpers import (
    MUSIC,
    create,
    url,
)
from .conftest import RENDER_SECONDS, call

# --- creating musics: validation -----------------------------------------------------------


def _with_movement(index: int, **changes: Any) -> list[dict[str, Any]]:
    structure = [dict(movement) for movement in MUSIC["structure"]]
    structure[index].update(changes)
    return [{k: v for k, v in m.items() if v is not None} for m in structure]


_INVALID_MUSICS: list[tuple[dict[str, Any], str]] = [
    ({"genre": None}, "genre"),
    ({"genre": "polka"}, "genre"),
    ({"genre": 5}, "genre"),
    ({"genre": "House"}, "genre"),
    ({"subgenre": None}, "subgenre"),
    ({"subgenre": "ballad"}, "subgenre"),  # a rock subgenre, not an electronic one
    ({"subgenre": "nope"}, "subgenre"),
    ({"subgenre": ["house"]}, "subgenre"),
    ({"duration_ms": None}, "duration_ms"),
    ({"duration_ms": 999}, "duration_ms"),
    ({"duration_ms": 1_200_001}, "duration_ms"),
    ({"duration_ms": 0}, "duration_ms"),
    ({"duration_ms": -5000}, "duration_ms"),
    ({"duration_ms": 30_000.5}, "duration_ms"),
    ({"duration_ms": 30_000.0}, "duration_ms"),
    ({"duration_ms": "30000"}, "duration_ms"),
    ({"duration_ms": True}, "duration_ms"),
    ({"duration_ms": 10**40}, "duration_ms"),
    ({"structure": None}, "structure"),
    ({"structure": []}, "structure"),
    ({"structure": "intro"}, "structure"),
    ({"structure": {"start": 0, "duration": 1, "energy": "calm"}}, "structure"),
    ({"structure": [5]}, "structure[0]"),
    ({"structure": _with_movement(1, start=None)}, "structure[1].start"),
    ({"structure": _with_movement(1, start=-0.1)}, "structure[1].start"),
    ({"structure": _with_movement(1, start=1.5)}, "structure[1].start"),
    ({"structure": _with_movement(1, start="0.5")}, "structure[1].start"),
    ({"structure": _with_movement(1, start=True)}, "structure[1].start"),
    ({"structure": _with_movement(0, duration=None)}, "structure[0].duration"),
    ({"structure": _with_movement(0, duration=2)}, "structure[0].duration"),
    ({"structure": _with_movement(2, duration=[0.3])}, "structure[2].duration"),
    ({"structure": _with_movement(1, movement="chorus")}, "structure[1]"),  # both
    ({"structure": _with_movement(1, energy="loud")}, "structure[1].energy"),
    ({"structure": _with_movement(1, energy=2)}, "structure[1].energy"),
    ({"structure": _with_movement(2, movement="solo")}, "structure[2].movement"),
    ({"structure": _with_movement(2, movement="Outro")}, "structure[2].movement"),
    ({"crop": "yes"}, "crop"),
    ({"crop": 1}, "crop"),
    ({"fadeout_ms": -1}, "fadeout_ms"),
    ({"fadeout_ms": 30_001}, "fadeout_ms"),
    ({"fadeout_ms": 1.5}, "fadeout_ms"),
    ({"fadeout_ms": "0"}, "fadeout_ms"),
    ({"voices_volume": 1.5}, "voices_volume"),
    ({"voices_volume": "loud"}, "voices_volume"),
    ({"voices_volume": True}, "voices_volume"),
]


@pytest.mark.parametrize(("change", "field"), _INVALID_MUSICS)
async def test_create_validation_names_the_field(
    emu: Emulator, jhttp: aiohttp.ClientSession, change: dict[str, Any], field: str
) -> None:
    music = {key: value for key, value in {**MUSIC, **change}.items() if value is not None}
    status, body = await call(jhttp, "POST", url(emu, "/musics"), json=music)
    assert (status, body["code"]) == (400, 400)
    assert body["error"].split()[0] == field, body["error"]
    assert emu.joplin.musics_created == 0
    with pytest.raises(InvalidMusic, match=field.replace("[", r"\[").replace("]", r"\]")):
        emu.joplin.create_music(music)


async def test_several_problems_are_reported_together(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    bad = {"genre": "polka", "duration_ms": 1, "structure": [{"start": 2}] * 100}
    status, body = await call(jhttp, "POST", url(emu, "/musics"), json=bad)
    assert status == 400
    problems = body["error"].split("; ")
    assert [problem.split()[0] for problem in problems] == [
        "genre",
        "subgenre",
        "duration_ms",
        "structure[0].start",
        "structure[0].duration",
    ]


@pytest.mark.parametrize(
    "data", [b"", b"{", b"[1, 2]", b'"music"', b"\xff\xfe", b"[" * 100_000, b"null"]
)
async def test_malformed_create_bodies_are_400(
    emu: Emulator, jhttp: aiohttp.ClientSession, data: bytes
) -> None:
    status, body = await call(jhttp, "POST", url(emu, "/musics"), data=data)
    assert (status, body["code"]) == (400, 400)
    assert emu.joplin.musics_created == 0


async def test_create_boundaries_and_extras_accepted(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    every_kind: list[dict[str, Any]] = [
        {"start": 0, "duration": 1, "energy": energy} for energy in ("calm", "medium")
    ]
    every_kind += [
        {"start": 1, "duration": 0.5, "movement": kind}
        for kind in ("intro", "verse", "refrain", "chorus", "bridge", "outro", "break", "drop")
    ]
    await create(emu, jhttp, duration_ms=1000, fadeout_ms=1000, crop=True, voices_volume=-39)
    await create(emu, jhttp, duration_ms=1_200_000, fadeout_ms=0, crop=False, voices_volume=0)
    await create(emu, jhttp, structure=every_kind, unknown_field={"ignored": True})
    await create(emu, jhttp, structure=[{"start": 0, "duration": 0, "energy": "dynamic"}])
    assert emu.joplin.musics_created == 4


# --- creating musics: the schema -----------------------------------------------------------


async def test_create_answers_the_schema(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    body = await create(emu, jhttp, fadeout_ms=2000, voices_volume=-12)
    assert list(body) == [
        "id",
        "genre",
        "subgenre",
        "music_engine_version",
        "bpm",
        "measure",
        "duration_ms",
        "structure",
        "mp3_uri",
    ]
    assert isinstance(body["id"], str)
    assert len(body["id"]) == 32
    int(body["id"], 16)
    assert (body["genre"], body["subgenre"]) == ("electronic", "house")
    assert body["music_engine_version"] == ENGINE_VERSION == "joplin-2.4.1"
    assert body["measure"] == "4/4"
    # Scheme-relative, at the host's /musics (iMuze's Ruby client plays "http:" + mp3_uri).
    assert body.pop("mp3_uri") == f"//{emu.urls['joplin'].split('/')[2]}/musics/{body['id']}/mp3"
    record = emu.joplin.musics[body["id"]]
    assert record.schema == body
    assert record.owner == emu.joplin.demo_user.id
    assert record.request == {**MUSIC, "fadeout_ms": 2000, "voices_volume": -12}
    assert record.fadeout_ms == 2000
    assert record.created_at == emu.clock.now()
    assert record.render_seconds == RENDER_SECONDS
    assert emu.joplin.schema(body["id"]) == body
    other = await create(emu, jhttp)
    assert other["id"] != body["id"]
    assert emu.joplin.musics_created == 2


async def test_structure_is_laid_out_in_order_and_tiles_the_unit_interval(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    # Starts as requested are overlapping nonsense and durations do not sum to 1 (as in the
    # reference's example): the engine plays the movements in order, scaled to fill the music.
    requested = [
        {"start": 0.7, "duration": 0.1, "movement": "intro"},
        {"start": 0.1, "duration": 0.25, "energy": "medium"},
        {"start": 0.5, "duration": 0.25, "movement": "chorus"},
        {"start": 0.9, "duration": 0.15, "energy": "calm"},
        {"start": 0.0, "duration": 0.05, "movement": "outro"},
    ]
    body = await create(emu, jhttp, structure=requested)
    structure = body["structure"]
    assert [set(item) - {"start", "duration"} for item in structure] == [
        {"movement"},
        {"energy"},
        {"movement"},
        {"energy"},
        {"movement"},
    ]
    assert [item.get("movement", item.get("energy")) for item in structure] == [
        "intro",
        "medium",
        "chorus",
        "calm",
        "outro",
    ]
    durations = [item["duration"] for item in structure]
    assert durations == pytest.approx([0.125, 0.3125, 0.3125, 0.1875, 0.0625])
    assert structure[0]["start"] == 0
    for before, after in itertools.pairwise(structure):
        assert before["start"] < after["start"]
        assert before["start"] + before["duration"] == pytest.approx(after["start"], abs=1e-9)
    last = structure[-1]
    assert last["start"] + last["duration"] == pytest.approx(1, abs=1e-9)


@pytest.mark.parametrize(
    ("genre", "subgenre", "base_bpm", "measure"),
    [
        ("electronic", "house", 124, "4/4"),
        ("electronic", "techno", 130, "4/4"),
        ("hip-hop", "boom-bap", 90, "4/4"),
        ("classical", "waltz", 90, "3/4"),
        ("lofi", "chillhop", 80, "4/4"),
    ],
)
async def test_bpm_follows_genre_and_energy(
    emu: Emulator,
    jhttp: aiohttp.ClientSession,
    genre: str,
    subgenre: str,
    base_bpm: int,
    measure: str,
) -> None:
    bpms = {}
    for energy in ("calm", "medium", "dynamic"):
        structure = [{"start": 0, "duration": 1, "energy": energy}]
        body = await create(emu, jhttp, genre=genre, subgenre=subgenre, structure=structure)
        assert isinstance(body["bpm"], int)
        assert body["measure"] == measure
        bpms[energy] = body["bpm"]
    assert 0 < bpms["calm"] < bpms["medium"] == base_bpm < bpms["dynamic"]
    assert bpms["dynamic"] <= base_bpm * 1.1
    # Movement types weigh like the energy they imply (a chorus is dynamic).
    chorus = await create(
        emu,
        jhttp,
        genre=genre,
        subgenre=subgenre,
        structure=[{"start": 0, "duration": 1, "movement": "chorus"}],
    )
    assert chorus["bpm"] == bpms["dynamic"]


@pytest.mark.parametrize(
    ("genre", "subgenre"),
    [("electronic", "house"), ("classical", "waltz"), ("jazz", "swing"), ("lofi", "sleep")],
)
@pytest.mark.parametrize("duration_ms", [1000, 29_964, 30_000, 61_234, 1_200_000])
async def test_duration_cropped_or_rounded_up_to_whole_measures(
    emu: Emulator, jhttp: aiohttp.ClientSession, genre: str, subgenre: str, duration_ms: int
) -> None:
    music = {"genre": genre, "subgenre": subgenre, "duration_ms": duration_ms}
    cropped = await create(emu, jhttp, **music, crop=True)
    assert cropped["duration_ms"] == duration_ms
    for extra in ({}, {"crop": False}):
        body = await create(emu, jhttp, **music, **extra)
        beats = int(body["measure"].split("/")[0])
        measure_ms = beats * 60_000 / body["bpm"]
        rendered = body["duration_ms"]
        assert isinstance(rendered, int)
        assert duration_ms <= rendered < duration_ms + measure_ms + 1
        measures = round(rendered / measure_ms)
        assert abs(measures * measure_ms - rendered) <= 0.5
        assert measures >= 1


# --- schema route --------------------------------------------------------------------------


async def test_schema_route(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    created = await create(emu, jhttp)
    created.pop("mp3_uri")  # only the create answer carries it (iMuze's Ruby client reads it there)
    status, body = await call(jhttp, "GET", url(emu, f"/musics/{created['id']}/schema"))
    assert (status, body) == (200, created)
    emu.clock.advance(RENDER_SECONDS)  # readiness does not change the schema
    status, body = await call(jhttp, "GET", url(emu, f"/musics/{created['id']}/schema"))
    assert (status, body) == (200, created)


async def test_musics_are_private_to_their_owner(
    emu: Emulator, jhttp: aiohttp.ClientSession, anon: aiohttp.ClientSession
) -> None:
    created = await create(emu, jhttp)
    emu.clock.advance(RENDER_SECONDS)
    emu.joplin.add_user("other@imuzekit.test", "secret")
    creds = {"email": "other@imuzekit.test", "password": "secret"}
    _, login = await call(anon, "PUT", url(emu, "/accounts/token"), json=creds)
    other = {"Authorization": login["token"]}
    for route in ("schema", "mp3"):
        path = url(emu, f"/musics/{created['id']}/{route}")
        status, body = await call(anon, "GET", path, headers=other)
        assert (status, body) == (404, {"error": "Not found", "code": 404, "status": 404})
    status, body = await call(jhttp, "GET", url(emu, f"/musics/{created['id']}/schema"))
    created.pop("mp3_uri")
    assert (status, body) == (200, created)  # still there for its owner


@pytest.mark.parametrize("music_id", ["nope", "0", "f" * 32, "%20", "x" * 500])
async def test_unknown_music_is_404(
    emu: Emulator, jhttp: aiohttp.ClientSession, music_id: str
) -> None:
    for route in ("schema", "mp3"):
        status, body = await call(jhttp, "GET", url(emu, f"/musics/{music_id}/{route}"))
        assert (status, body) == (404, {"error": "Not found", "code": 404, "status": 404})
