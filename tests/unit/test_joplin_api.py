"""joplin: builders and parsers on the seed's bodies (verbatim), validation, Structure.parse."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from imuzekit import errors
from imuzekit.jobs import JobState
from imuzekit.providers.joplin import Energy, Genre, Movement, Music, Structure, _api
from tests.conftest import require_seed, response_for, sample

BASE = "http://joplin.example.test"


def _jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_seed_token_parses_verbatim() -> None:
    result = _api.parse_login(response_for(sample("joplin", "token"), provider="joplin"))
    assert result.token == "ea"
    assert result.expires_at is None  # not a JWT: used until the server says 401


def test_login_reads_jwt_expiry_without_verifying() -> None:
    token = _jwt({"sub": "1", "exp": 1_900_000_000})
    result = _api.parse_login(response_for({"token": token}))
    assert result.token == token
    assert result.expires_at == 1_900_000_000.0
    assert _api.jwt_expiry(_jwt({"sub": "1"})) is None
    assert _api.jwt_expiry(_jwt({"exp": "soon"})) is None
    assert _api.jwt_expiry("a.b") is None
    assert _api.jwt_expiry("not a jwt at all") is None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_HEADER = _b64(b'{"alg":"HS256","typ":"JWT"}')


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # base64url without padding: payload lengths of every residue that exists (0, 2, 3 mod 4)
        (b'{"exp":1900000000}', 1_900_000_000.0),
        (b'{"exp":50}', 50.0),
        (b'{"exp": 1900000000}', 1_900_000_000.0),
        (b'{"exp":1900000000.5}', 1_900_000_000.5),
        # "-" and "_" (base64url's 62 and 63) decode as such, not as "+" and "/"
        (b'{"exp":5,"n":">>>???"}', 5.0),
    ],
)
def test_jwt_expiry_decodes_unpadded_base64url(payload: bytes, expected: float) -> None:
    token = f"{_HEADER}.{_b64(payload)}.c2lnbmF0dXJl"
    assert _api.jwt_expiry(token) == expected


_EXP = b'{"exp":5}'  # 9 bytes: 12 base64 characters, no padding
_PADDED = b'{"exp":50}'  # 10 bytes: 14 base64url characters, "==" when padded
_ODD = b'{"exp":5,"n":">>>???"}'  # its base64 holds "+" and "/" (base64url: "-" and "_")


@pytest.mark.parametrize(
    "token",
    [
        # padding is not base64url in a JWS (RFC 7515, section 2)
        f"{_HEADER}.{base64.urlsafe_b64encode(_PADDED).decode()}.c2ln",
        f"{_HEADER}.{_b64(_PADDED)}=.c2ln",
        # standard base64's alphabet
        f"{_HEADER}.{base64.b64encode(_ODD).decode()}.c2ln",
        # a length no base64 string has (1 mod 4)
        f"{_HEADER}.{_b64(_EXP)}A.c2ln",
        f"{_HEADER}.!!!.c2ln",
        f"{_HEADER}..c2ln",
        f"{_HEADER}.{_b64(b'not json')}.c2ln",
        f"{_HEADER}.{_b64(b'[1, 2]')}.c2ln",
        f"{_HEADER}.{_b64(b'{')}.c2ln",
        f"{_HEADER}.{_b64(bytes([0xFF, 0xFE]))}.c2ln",
        f"{_HEADER}.{_b64(_EXP)}.c2ln.extra",
        f"{_HEADER}.{_b64(_EXP)}",
        f".{_b64(_EXP)}.c2ln",
        f"!!.{_b64(_EXP)}.c2ln",
        f"{_b64(b'[1]')}.{_b64(_EXP)}.c2ln",
        f"{_b64(b'not json')}.{_b64(_EXP)}.c2ln",
        f" {_HEADER}.{_b64(_EXP)}.c2ln",
        f"{_HEADER}.{_b64(_EXP)}.sign\u00e9",
        "",
        "..",
    ],
)
def test_jwt_expiry_of_a_malformed_token_is_none(token: str) -> None:
    assert _api.jwt_expiry(token) is None


@pytest.mark.parametrize(
    "claims",
    [
        b'{"exp":true}',
        b'{"exp":null}',
        b'{"exp":NaN}',
        b'{"exp":Infinity}',
        b'{"exp":1e999}',
        b'{"exp":' + b"9" * 400 + b"}",
        b'{"exp":[5]}',
        b"{}",
    ],
)
def test_jwt_expiry_without_a_usable_exp_is_none(claims: bytes) -> None:
    assert _api.jwt_expiry(f"{_HEADER}.{_b64(claims)}.c2ln") is None


def test_seed_genres_parse_verbatim() -> None:
    genres = _api.parse_genres(response_for(sample("joplin", "genres")))
    assert genres[0] == Genre(name="veniam officia ut", subgenres=("pariatur ea", "officia"))
    assert [g.name for g in genres] == ["veniam officia ut", "ex incididunt magna", "Duis sint"]
    assert genres[2].subgenres == ("est reprehenderit enim", "culp")


def test_seed_music_create_parses_verbatim_with_odd_values() -> None:
    music = _api.parse_music(response_for(sample("joplin", "music_create")), base_url=BASE)
    assert music.id == "ut eu in mollit"
    assert music.bpm == -84422265  # a placeholder value: parsed, not judged
    assert music.measure == "4/4"
    assert music.duration_ms == 293813
    assert music.structure == (Movement(start=0.2889910754747689, duration=0.6239416964817792),)
    assert music.mp3_url == f"{BASE}/musics/ut%20eu%20in%20mollit/mp3"


def test_seed_music_schema_parses_verbatim() -> None:
    music = _api.parse_music(response_for(sample("joplin", "music_schema")))
    assert music.genre == "id nostrud labore" and music.subgenre == "in"
    assert music.music_engine_version == "ipsum pariatur magna"
    assert [m.energy for m in music.structure] == [None, Energy.DYNAMIC, None, None]
    assert music.structure[2].movement == "incididunt ex velit"


def test_seed_mp3_body_is_the_rendering_reply() -> None:
    # The reference's example body for the mp3 route is {"id": ...}: the engine's answer while
    # the audio is not rendered yet (served with 202).
    driver = _api.MusicDriver(BASE)
    response = response_for(sample("joplin", "music_mp3"), status=202)
    status = driver.parse_status("commodo fugiat", response, None)
    assert status.state is JobState.PROCESSING
    assert status.result is not None and status.result.id == "commodo fugiat"


def test_samples_are_the_seed_bodies_verbatim() -> None:
    seed = require_seed("000_dab64e63c5e343e3.txt")
    blocks = re.findall(r"```moonscript\n(.*?)```", seed.read_text(), re.S)
    names = ["token", "genres", "music_create", "music_mp3", "music_schema"]
    assert len(blocks) == len(names)
    for name, block in zip(names, blocks, strict=True):
        assert sample("joplin", name) == block


def test_unknown_energy_is_kept_raw() -> None:
    music = _api.parse_music(
        response_for({"id": "m", "structure": [{"start": 0, "duration": 1, "energy": "frantic"}]})
    )
    assert music.structure[0].energy == "frantic"
    assert not isinstance(music.structure[0].energy, Energy)


def test_structure_parse_builds_consecutive_movements() -> None:
    structure = Structure.parse("calm:0.2,medium:0.4,dynamic:0.2,calm:0.2")
    assert [m.energy for m in structure] == [
        Energy.CALM,
        Energy.MEDIUM,
        Energy.DYNAMIC,
        Energy.CALM,
    ]
    assert [round(m.start, 6) for m in structure] == [0.0, 0.2, 0.6, 0.8]
    assert structure[-1].end == pytest.approx(1.0, abs=1e-12)
    typed = Structure.parse("intro:0.1, verse:0.4, refrain:0.5")
    assert [m.movement for m in typed] == ["intro", "verse", "refrain"]
    assert all(m.energy is None for m in typed)
    assert str(Structure.parse("calm:0.5,dynamic:0.5")) == "calm:0.5,dynamic:0.5"
    assert len(Structure.parse("calm:0.3336,dynamic:0.6666")) == 2  # within +-0.001


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("calm:0.2,medium:0.2", "structure"),
        ("calm:0.7,medium:0.7", "structure"),
        ("calm", "structure[0]"),
        ("calm:x", "structure[0].duration"),
        ("calm:0", "structure[0].duration"),
        ("calm:0.5,:0.5", "structure[1]"),
        ("calm:0.5,Bad Name!:0.5", "structure[1].movement"),
        ("", "structure"),
    ],
)
def test_structure_parse_errors_name_the_item(text: str, field: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        Structure.parse(text)
    assert info.value.field == field


def _create(**overrides: Any) -> Any:
    args: dict[str, Any] = {
        "genre": "electronic",
        "subgenre": "house",
        "duration_ms": 30_000,
        "structure": "calm:0.5,dynamic:0.5",
    }
    args.update(overrides)
    return _api.build_create_music(BASE, **args)


def test_build_create_music_sends_the_seed_shape() -> None:
    request = _create(crop=True, fadeout_ms=2000, voices_volume=-39)
    assert (request.method, request.url) == ("POST", f"{BASE}/musics")
    assert request.json == {
        "genre": "electronic",
        "subgenre": "house",
        "duration_ms": 30_000,
        "structure": [
            {"start": 0.0, "duration": 0.5, "energy": "calm"},
            {"start": 0.5, "duration": 0.5, "energy": "dynamic"},
        ],
        "crop": True,
        "fadeout_ms": 2000,
        "voices_volume": -39,
    }
    assert not request.is_idempotent
    optional_left_out = _create().json
    assert set(optional_left_out) == {"genre", "subgenre", "duration_ms", "structure"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"genre": ""}, "genre"),
        ({"subgenre": None}, "subgenre"),
        ({"duration_ms": 0}, "duration_ms"),
        ({"duration_ms": -5}, "duration_ms"),
        ({"duration_ms": 1.5}, "duration_ms"),
        ({"duration_ms": "30000"}, "duration_ms"),
        ({"structure": []}, "structure"),
        ({"structure": [Movement(0, 1, energy="calm", movement="intro")]}, "structure[0].energy"),
        (
            {"structure": [Movement(0, 0.5, energy="calm"), Movement(0.5, 0.5, energy="loud")]},
            "structure[1].energy",
        ),
        ({"structure": [Movement(-0.1, 1, energy="calm")]}, "structure[0].start"),
        ({"structure": [Movement(0, 1.5, energy="calm")]}, "structure[0].duration"),
        ({"structure": [Movement(0, float("nan"), energy="calm")]}, "structure[0].duration"),
        ({"structure": [Movement(0, 1, movement="")]}, "structure[0].movement"),
        ({"structure": 42}, "structure"),
        ({"fadeout_ms": -1}, "fadeout_ms"),
        ({"fadeout_ms": 30_001}, "fadeout_ms"),
        ({"voices_volume": 1.5}, "voices_volume"),
        ({"crop": "yes"}, "crop"),
    ],
)
def test_create_validation_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        _create(**overrides)
    assert info.value.field == field


def test_movements_given_as_energy_enum_or_string_both_work() -> None:
    request = _create(
        structure=[Movement(0, 0.5, energy=Energy.CALM), Movement(0.5, 0.5, energy="medium")]
    )
    assert [m["energy"] for m in request.json["structure"]] == ["calm", "medium"]


def test_driver_states_from_mp3_probe() -> None:
    driver = _api.MusicDriver(BASE)
    probe = driver.status_request("abc")
    assert probe.header("Range") == "bytes=0-0"
    assert probe.url == f"{BASE}/musics/abc/mp3"
    ready = driver.parse_status("abc", response_for(b"\xff", status=206), None)
    assert ready.state is JobState.READY
    assert ready.result is not None and ready.result.mp3_url == f"{BASE}/musics/abc/mp3"
    waiting = driver.parse_status(
        "abc", response_for({"error": "rendering"}, status=404, headers={"Retry-After": "1"}), None
    )
    assert waiting.state is JobState.PROCESSING
    with pytest.raises(errors.NotFoundError):
        driver.parse_status("abc", response_for({"error": "Not found"}, status=404), None)


def test_driver_token_data_round_trips_the_schema() -> None:
    driver = _api.MusicDriver(BASE)
    music = _api.with_mp3_url(
        Music(
            id="m1",
            genre="jazz",
            bpm=96,
            duration_ms=1000,
            structure=(Movement(0, 1, energy=Energy.CALM),),
        ),
        BASE,
    )
    data = json.loads(json.dumps(driver.token_data("m1", music)))
    assert driver.from_token_data("m1", data) == music


def test_music_download_spec_needs_auth() -> None:
    music = _api.with_mp3_url(Music(id="m1", genre="jazz", subgenre="swing"), BASE)
    spec = music.download_spec()
    assert spec.auth is True and spec.provider == "joplin"
    assert spec.name == "jazz-swing-m1" and spec.suffix == ".mp3"


def test_movement_with_neither_energy_nor_type_is_sent_as_start_and_duration() -> None:
    # Seed 000's own create example has movements with only "start" and "duration".
    request = _create(
        structure=[Movement(0, 0.5, energy="dynamic"), Movement(0.5, 0.5)],
    )
    assert request.json["structure"] == [
        {"start": 0.0, "duration": 0.5, "energy": "dynamic"},
        {"start": 0.5, "duration": 0.5},
    ]


def test_movement_with_both_energy_and_type_is_still_refused() -> None:
    with pytest.raises(errors.ValidationError, match="not both") as info:
        _create(structure=[Movement(0, 1, energy="calm", movement="intro")])
    assert info.value.field == "structure[0].energy"


def test_structure_parse_reads_a_bare_fraction_as_a_plain_movement() -> None:
    structure = Structure.parse("calm:0.5,0.25,intro:0.25")
    assert [(m.energy, m.movement, m.start) for m in structure] == [
        (Energy.CALM, None, 0.0),
        (None, None, 0.5),
        (None, "intro", 0.75),
    ]
    assert str(structure) == "calm:0.5,0.25,intro:0.25"
    assert Structure.parse(str(structure)) == structure
