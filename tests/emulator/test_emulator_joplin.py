"""The emulated iMuze music engine (joplin): shapes from seed 000, JWT auth, validation, schemas,
rendering and MP3 files, faults and counters. Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from mutagen.mp3 import MP3

from imuzekit.emulator import Clock, Emulator
from imuzekit.emulator._mp3 import FRAME_DURATION
from imuzekit.emulator.joplin import DEMO_EMAIL, DEMO_PASSWORD, ENGINE_VERSION, InvalidMusic

from .conftest import RENDER_SECONDS, TIMEOUT, call

MUSIC: dict[str, Any] = {
    "genre": "electronic",
    "subgenre": "house",
    "duration_ms": 30_000,
    "structure": [
        {"start": 0.0, "duration": 0.2, "movement": "intro"},
        {"start": 0.2, "duration": 0.5, "energy": "dynamic"},
        {"start": 0.7, "duration": 0.3, "movement": "outro"},
    ],
}


def url(emu: Emulator, path: str) -> str:
    """Absolute URL of a joplin path (``/musics``)."""
    return emu.urls["joplin"] + path


@pytest.fixture
async def jhttp(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A session sending the demo user's pre-issued JWT, raw, as the reference documents."""
    token = emu.credentials["joplin"].token
    assert token
    async with aiohttp.ClientSession(headers={"Authorization": token}, timeout=TIMEOUT) as session:
        yield session


async def create(emu: Emulator, session: aiohttp.ClientSession, **overrides: Any) -> dict[str, Any]:
    """Create a music over HTTP and return the 201 body."""
    status, body = await call(session, "POST", url(emu, "/musics"), json={**MUSIC, **overrides})
    assert status == 201, body
    assert isinstance(body, dict)
    return body


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def sign(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256-style JWT built by hand (what a forger with or without the key can make)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    digest = hashlib.sha512 if header.get("alg") == "HS512" else hashlib.sha256
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


# --- emulator wiring -----------------------------------------------------------------------


async def test_mounted_under_joplin_with_demo_credentials(emu: Emulator) -> None:
    assert emu.urls["joplin"] == f"http://127.0.0.1:{emu.port}/joplin"
    creds = emu.credentials["joplin"]
    assert (creds.email, creds.password) == (DEMO_EMAIL, DEMO_PASSWORD)
    assert creds.token is not None
    assert emu.joplin.user_for_token(creds.token) == emu.joplin.demo_user
    banner = emu.describe()
    assert f"joplin     {emu.urls['joplin']}" in banner
    assert f"token={creds.token}" in banner


async def test_client_is_configured_for_joplin(emu: Emulator) -> None:
    async with emu.client() as kit:
        assert "joplin" in repr(kit)


# --- authentication ------------------------------------------------------------------------


async def test_login_returns_a_working_jwt(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    creds = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    status, body = await call(anon, "PUT", url(emu, "/accounts/token"), json=creds)
    assert status == 200
    assert list(body) == ["token"]
    token = body["token"]
    assert token != emu.credentials["joplin"].token
    headers = {"Authorization": token}
    status, created = await call(anon, "POST", url(emu, "/musics"), json=MUSIC, headers=headers)
    assert status == 201
    assert emu.joplin.musics[created["id"]].owner == emu.joplin.demo_user.id


@pytest.mark.parametrize(
    ("email", "password"),
    [(DEMO_EMAIL, "wrong-password"), ("nobody@imuzekit.test", DEMO_PASSWORD), (DEMO_EMAIL, " ")],
)
async def test_login_with_wrong_credentials_is_401(
    emu: Emulator, anon: aiohttp.ClientSession, email: str, password: str
) -> None:
    creds = {"email": email, "password": password}
    status, body = await call(anon, "PUT", url(emu, "/accounts/token"), json=creds)
    assert (status, body) == (
        401,
        {"error": "Invalid email or password", "code": 401, "status": 401},
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b'["demo"]', "JSON object"),
        (b'{"password": "x"}', "email"),
        (b'{"email": 5, "password": "x"}', "email"),
        (b'{"email": "demo@imuzekit.test"}', "password"),
        (b'{"email": "demo@imuzekit.test", "password": ""}', "password"),
        (b'{"token": {"email": "demo@imuzekit.test", "password": "x"}}', "email"),
    ],
)
async def test_login_with_malformed_body_is_400(
    emu: Emulator, anon: aiohttp.ClientSession, data: bytes, field: str
) -> None:
    status, body = await call(anon, "PUT", url(emu, "/accounts/token"), data=data)
    assert (status, body["code"]) == (400, 400)
    assert field in body["error"]


async def test_login_is_put_only(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    creds = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    status, body = await call(anon, "POST", url(emu, "/accounts/token"), json=creds)
    assert (status, body["code"]) == (405, 405)


async def test_jwt_is_hs256_signed_with_the_emulator_secret(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    before = int(time.time())
    creds = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    _, body = await call(anon, "PUT", url(emu, "/accounts/token"), json=creds)
    after = time.time()
    for token in (body["token"], emu.credentials["joplin"].token):
        assert isinstance(token, str)
        header_b64, claims_b64, signature_b64 = token.split(".")
        assert unb64(header_b64) == {"alg": "HS256", "typ": "JWT"}
        expected = hmac.new(
            emu.joplin.secret, f"{header_b64}.{claims_b64}".encode(), hashlib.sha256
        ).digest()
        assert b64(expected) == signature_b64
        claims = unb64(claims_b64)
        assert claims["sub"] == str(emu.joplin.demo_user.id)
        assert claims["email"] == DEMO_EMAIL
        assert isinstance(claims["iat"], int)
        assert isinstance(claims["exp"], int)
        assert before - 5 <= claims["iat"] <= after
        assert claims["exp"] - claims["iat"] == 3600
    assert len(emu.joplin.secret) >= 32
    assert Emulator().joplin.secret != emu.joplin.secret


async def test_token_ttl_and_expiry_follow_the_emulator_clock(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    emu.joplin.token_ttl = 60
    creds = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    _, body = await call(anon, "PUT", url(emu, "/accounts/token"), json=creds)
    claims = unb64(body["token"].split(".")[1])
    assert claims["exp"] - claims["iat"] == 60
    headers = {"Authorization": body["token"]}
    emu.clock.advance(50)
    status, _ = await call(anon, "GET", url(emu, "/musics/nope/schema"), headers=headers)
    assert status == 404  # authenticated, the music just does not exist
    emu.clock.advance(10)
    status, error = await call(anon, "GET", url(emu, "/musics/nope/schema"), headers=headers)
    assert (status, error) == (
        401,
        {"error": "Unauthorized: token expired", "code": 401, "status": 401},
    )
    with pytest.raises(ValueError, match="token_ttl"):
        emu.joplin.token_ttl = 0


async def test_pre_issued_token_expires_and_credentials_renew_it(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    old = emu.credentials["joplin"].token
    assert (await call(jhttp, "POST", url(emu, "/musics"), json=MUSIC))[0] == 201
    emu.clock.advance(emu.joplin.token_ttl)
    status, body = await call(jhttp, "POST", url(emu, "/musics"), json=MUSIC)
    assert (status, body["error"]) == (401, "Unauthorized: token expired")
    new = emu.credentials["joplin"].token
    assert new is not None
    assert new != old
    headers = {"Authorization": new}
    assert (await call(jhttp, "POST", url(emu, "/musics"), json=MUSIC, headers=headers))[0] == 201
    assert emu.joplin.musics_created == 2


async def test_revoke_tokens(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    old_secret = emu.joplin.secret
    login = emu.joplin.issue_token()
    emu.joplin.revoke_tokens()
    assert emu.joplin.secret != old_secret
    for token in (login, jhttp.headers["Authorization"]):
        headers = {"Authorization": token}
        status, body = await call(jhttp, "POST", url(emu, "/musics"), json=MUSIC, headers=headers)
        assert (status, body) == (
            401,
            {"error": "Unauthorized: invalid token", "code": 401, "status": 401},
        )
    fresh = emu.credentials["joplin"].token
    assert fresh is not None
    headers = {"Authorization": fresh}
    assert (await call(jhttp, "POST", url(emu, "/musics"), json=MUSIC, headers=headers))[0] == 201


async def test_issue_token_with_negative_ttl_is_already_expired(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": emu.joplin.issue_token(ttl=-1)}
    status, body = await call(anon, "POST", url(emu, "/musics"), json=MUSIC, headers=headers)
    assert (status, body["error"]) == (401, "Unauthorized: token expired")


@pytest.mark.parametrize("scheme", ["{t}", "Bearer {t}", "bearer {t}", "JWT {t}", "  {t}  "])
async def test_token_schemes(emu: Emulator, anon: aiohttp.ClientSession, scheme: str) -> None:
    header = scheme.format(t=emu.credentials["joplin"].token)
    status, _ = await call(
        anon, "POST", url(emu, "/musics"), json=MUSIC, headers={"Authorization": header}
    )
    assert status == 201


def _forgeries(emu: Emulator) -> dict[str, str]:
    """Every kind of token that must be refused, keyed by what is wrong with it."""
    state = emu.joplin
    now = int(emu.clock.wall())
    good = {"sub": "1", "email": DEMO_EMAIL, "iat": now, "exp": now + 3600}
    hs256 = {"alg": "HS256", "typ": "JWT"}
    valid = state.issue_token()
    header, claims, signature = valid.split(".")
    tampered = {**unb64(claims), "exp": now + 10**6}
    none_header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    state.add_user("other@imuzekit.test", "secret")
    return {
        "missing": "",
        "garbage": "garbage",
        "three dots": "a.b.c",
        "empty segments": "..",
        "not base64": "%%%.%%%.%%%",
        "non-ascii": "é.é.é",
        "huge": "a" * 3000 + "." + "b" * 3000 + ".c",  # under aiohttp's 8 KiB header limit
        "json array payload": f"{header}.{b64(b'[1, 2]')}.{signature}",
        "wrong secret": sign(hs256, good, b"not-the-secret" * 3),
        "alg none, no signature": f"{none_header}.{claims}.",
        "alg none, old signature": f"{none_header}.{claims}.{signature}",
        "alg HS512": sign({"alg": "HS512", "typ": "JWT"}, good, state.secret),
        "tampered payload": f"{header}.{b64(json.dumps(tampered).encode())}.{signature}",
        "tampered signature": f"{header}.{claims}.{signature[:-4]}AAAA",
        "truncated": valid[:-10],
        "unknown user": sign(hs256, {**good, "sub": "999"}, state.secret),
        "non-numeric sub": sign(hs256, {**good, "sub": "demo"}, state.secret),
        "no exp": sign(hs256, {"sub": "1", "iat": now}, state.secret),
        "string exp": sign(hs256, {**good, "exp": "tomorrow"}, state.secret),
        "expired": sign(hs256, {**good, "exp": now - 1}, state.secret),
        "crit header": sign({**hs256, "crit": ["x"]}, good, state.secret),
    }


async def test_forged_garbage_and_expired_tokens_are_401(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    created = emu.joplin.create_music(MUSIC)
    forgeries = _forgeries(emu)
    for kind, token in forgeries.items():
        headers = {"Authorization": token}
        for method, path in [
            ("POST", "/musics"),
            ("GET", f"/musics/{created.id}/schema"),
            ("GET", f"/musics/{created.id}/mp3"),
        ]:
            status, body = await call(anon, method, url(emu, path), json=MUSIC, headers=headers)
            assert (status, body["code"]) == (401, 401), kind
            assert body["error"].startswith("Unauthorized: "), kind
    assert emu.joplin.musics_created == 1
    assert all(entry.status == 401 for entry in emu.requests)
    # The hand-made signer is right: with the real claims it produces an accepted token.
    now = int(emu.clock.wall())
    genuine = sign({"alg": "HS256"}, {"sub": "1", "exp": now + 60}, emu.joplin.secret)
    assert emu.joplin.user_for_token(genuine) == emu.joplin.demo_user


async def test_no_authorization_header_is_401(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    status, body = await call(anon, "POST", url(emu, "/musics"), json=MUSIC)
    assert (status, body) == (
        401,
        {"error": "Unauthorized: missing token", "code": 401, "status": 401},
    )


# --- genres --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/genres/", "/genres"])
@pytest.mark.parametrize("authorization", [None, "garbage"])
async def test_genres_need_no_auth(
    emu: Emulator, anon: aiohttp.ClientSession, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    status, body = await call(anon, "GET", url(emu, path), headers=headers)
    assert status == 200
    assert list(body) == ["genres"]
    genres = body["genres"]
    assert len(genres) == 8
    assert all(set(genre) == {"name", "subgenres"} for genre in genres)
    names = [genre["name"] for genre in genres]
    assert len(set(names)) == len(names)
    assert {"electronic", "classical", "rock", "hip-hop", "jazz", "pop", "lofi"} <= set(names)
    for genre in genres:
        assert 2 <= len(genre["subgenres"]) <= 4
        assert all(isinstance(sub, str) and sub for sub in genre["subgenres"])
    by_name = {genre["name"]: genre["subgenres"] for genre in genres}
    assert {"house", "techno", "ambient"} <= set(by_name["electronic"])


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


# --- rendering and the MP3 -----------------------------------------------------------------


async def _mp3_rendering(
    session: aiohttp.ClientSession, emu: Emulator, music_id: str, **kwargs: Any
) -> None:
    async with session.get(url(emu, f"/musics/{music_id}/mp3"), **kwargs) as response:
        assert response.status == 202
        assert response.headers["Retry-After"] == "1"
        assert response.content_type == "application/json"
        assert await response.json() == {"id": music_id}


async def test_the_rendering_hint_is_settable_and_never_negative(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    music_id = (await create(emu, jhttp))["id"]
    emu.joplin.retry_after_seconds = 0
    async with jhttp.get(url(emu, f"/musics/{music_id}/mp3")) as response:
        assert (response.status, response.headers["Retry-After"]) == (202, "0")
    with pytest.raises(ValueError, match="retry_after_seconds"):
        emu.joplin.retry_after_seconds = -1
    assert emu.joplin.retry_after_seconds == 0


async def test_mp3_is_202_while_rendering_then_the_audio(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    created = await create(emu, jhttp, duration_ms=12_345, crop=True, fadeout_ms=2500)
    music_id = created["id"]
    mp3_url = url(emu, f"/musics/{music_id}/mp3")
    await _mp3_rendering(jhttp, emu, music_id)
    await _mp3_rendering(jhttp, emu, music_id, headers={"Range": "bytes=0-0"})
    async with jhttp.head(mp3_url) as response:
        assert response.status == 202
        assert response.headers["Retry-After"] == "1"
    emu.clock.advance(RENDER_SECONDS - 0.01)
    await _mp3_rendering(jhttp, emu, music_id)
    emu.clock.advance(0.01)
    async with jhttp.get(mp3_url) as response:
        data = await response.read()
        assert response.status == 200
        assert response.content_type == "audio/mpeg"
        assert int(response.headers["Content-Length"]) == len(data)
        assert response.headers["Accept-Ranges"] == "bytes"
        etag = response.headers["ETag"]
        assert etag.startswith('"')
    assert data == emu.joplin.audio_bytes(music_id)
    assert hashlib.sha256(data).hexdigest() == emu.joplin.audio_sha256(music_id)
    mp3 = MP3(io.BytesIO(data))
    assert abs(mp3.info.length - 12.345) <= FRAME_DURATION
    assert mp3.tags["TXXX:fadeout_ms"].text == ["2500"]
    assert mp3.tags["TBPM"].text == [str(created["bpm"])]
    async with jhttp.get(mp3_url, headers={"If-None-Match": etag}) as response:
        assert response.status == 304


async def test_mp3_lasts_the_rounded_up_duration(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    created = await create(emu, jhttp, genre="classical", subgenre="waltz", duration_ms=7_001)
    assert created["duration_ms"] > 7_001
    emu.clock.advance(RENDER_SECONDS)
    async with jhttp.get(url(emu, f"/musics/{created['id']}/mp3")) as response:
        data = await response.read()
    mp3 = MP3(io.BytesIO(data))
    assert abs(mp3.info.length - created["duration_ms"] / 1000) <= FRAME_DURATION
    assert mp3.tags["TXXX:fadeout_ms"].text == ["0"]


async def test_range_probe_head_and_ranges_on_a_ready_music(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    created = await create(emu, jhttp)
    emu.clock.advance(RENDER_SECONDS)
    mp3_url = url(emu, f"/musics/{created['id']}/mp3")
    data = emu.joplin.audio_bytes(created["id"])
    size = len(data)
    async with jhttp.get(mp3_url, headers={"Range": "bytes=0-0"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 0-0/{size}"
        assert await response.read() == b"I"  # the ID3 tag's first byte
    async with jhttp.get(mp3_url, headers={"Range": "bytes=100-"}) as response:
        assert response.status == 206
        assert await response.read() == data[100:]
    async with jhttp.get(mp3_url, headers={"Range": f"bytes={size}-"}) as response:
        assert response.status == 416
        assert response.headers["Content-Range"] == f"bytes */{size}"
    async with jhttp.head(mp3_url) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == size
        assert response.headers["Content-Type"] == "audio/mpeg"
        assert await response.read() == b""


async def test_set_ready_overrides_the_clock(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    created = await create(emu, jhttp)
    music_id = created["id"]
    mp3_url = url(emu, f"/musics/{music_id}/mp3")
    emu.joplin.set_ready(music_id, True)
    async with jhttp.get(mp3_url) as response:
        assert response.status == 200
    emu.joplin.set_ready(music_id, False)
    emu.clock.advance(RENDER_SECONDS * 10)
    await _mp3_rendering(jhttp, emu, music_id)
    assert not emu.joplin.is_ready(music_id)
    emu.joplin.set_ready(music_id, None)
    assert emu.joplin.is_ready(music_id)
    async with jhttp.get(mp3_url) as response:
        assert response.status == 200
    with pytest.raises(KeyError):
        emu.joplin.set_ready("nope", True)


async def test_render_seconds_range_is_seeded() -> None:
    def draws(seed: int) -> list[tuple[str, float]]:
        state = Emulator(render_seconds=(1.0, 3.0), seed=seed).joplin
        musics = [state.create_music(MUSIC) for _ in range(20)]
        return [(music.id, music.render_seconds) for music in musics]

    first = draws(7)
    assert all(1.0 <= seconds <= 3.0 for _, seconds in first)
    assert len({seconds for _, seconds in first}) == 20
    assert len({music_id for music_id, _ in first}) == 20
    assert draws(7) == first
    assert draws(8) != first


# --- faults, log, counters -----------------------------------------------------------------


async def test_faults_apply_to_joplin_routes(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    fault = emu.faults.add("joplin", "POST /musics", status=503, retry_after=1.5)
    async with jhttp.post(url(emu, "/musics"), json=MUSIC) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "2"
        assert await response.json() == {"error": "injected fault", "code": 503}
    assert (fault.hits, emu.joplin.musics_created) == (1, 0)

    emu.faults.add("joplin", "POST /musics", status=500, after_handler=True)
    status, _ = await call(jhttp, "POST", url(emu, "/musics"), json=MUSIC)
    assert (status, emu.joplin.musics_created) == (500, 1)  # the work is done, the answer lost

    music_id = next(iter(emu.joplin.musics))
    emu.clock.advance(RENDER_SECONDS)
    emu.faults.add("joplin", "GET /musics/*/mp3", truncate=100)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with jhttp.get(url(emu, f"/musics/{music_id}/mp3")) as response:
            await response.read()

    emu.faults.add("joplin", "PUT /accounts/token", reset=True, times=2)
    creds = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(jhttp, "PUT", url(emu, "/accounts/token"), json=creds)
    # Faults are per provider: the same path on iMuze is untouched.
    emu.faults.add("imuze", "GET /genres/", status=500, times=None)
    status, _ = await call(jhttp, "GET", url(emu, "/genres/"))
    assert status == 200


async def test_log_and_counters(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    created = await create(emu, jhttp)
    music_id = created["id"]
    for _ in range(3):
        await call(jhttp, "GET", url(emu, f"/musics/{music_id}/mp3"))
    await call(jhttp, "GET", url(emu, f"/musics/{music_id}/schema"))
    await call(jhttp, "GET", url(emu, "/genres/"))
    await call(jhttp, "GET", url(emu, "/genres"))
    creds = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    await call(jhttp, "PUT", url(emu, "/accounts/token"), json=creds)
    async with jhttp.head(url(emu, f"/musics/{music_id}/mp3")):
        pass
    assert [(e.provider, e.method, e.path, e.status) for e in emu.requests][:2] == [
        ("joplin", "POST", "/musics", 201),
        ("joplin", "GET", f"/musics/{music_id}/mp3", 202),
    ]
    assert emu.requests[1].route == "/musics/{id}/mp3"
    assert emu.count("joplin") == 9
    assert emu.count("joplin", "POST", "/musics") == 1
    assert emu.count("joplin", "GET", "/musics/*/mp3") == 3
    assert emu.count("joplin", "HEAD", "/musics/{id}/mp3") == 1
    assert emu.count("joplin", "GET", "/musics/*/schema") == 1
    assert emu.count("joplin", path_glob="/genres*") == 2
    assert emu.count("joplin", "PUT", "/accounts/token") == 1
    assert emu.count("imuze") == 0
    assert emu.joplin.musics_created == 1


async def test_unknown_routes_are_json(emu: Emulator, jhttp: aiohttp.ClientSession) -> None:
    for path in ("/nope", "/musics/x", "", "/musics/x/wav", "/accounts"):
        status, body = await call(jhttp, "GET", url(emu, path))
        assert (status, body) == (404, {"error": "Not found", "code": 404})
    for method, path in [("GET", "/musics"), ("DELETE", "/musics"), ("POST", "/genres/")]:
        status, body = await call(jhttp, method, url(emu, path))
        assert (status, body["code"]) == (405, 405)


async def test_many_concurrent_jobs(anon: aiohttp.ClientSession) -> None:
    async with Emulator(render_seconds=(0.0, 5.0), clock=Clock(frozen=True)) as emu:
        headers = {"Authorization": emu.credentials["joplin"].token or ""}

        async def one(n: int) -> dict[str, Any]:
            music = {**MUSIC, "duration_ms": 1000 + 10 * n}
            status, body = await call(
                anon, "POST", url(emu, "/musics"), json=music, headers=headers
            )
            assert status == 201
            return dict(body)

        created = await asyncio.gather(*(one(n) for n in range(200)))
        assert len({body["id"] for body in created}) == 200
        emu.clock.advance(5)

        async def probe(music_id: str) -> int:
            async with anon.get(
                url(emu, f"/musics/{music_id}/mp3"),
                headers={**headers, "Range": "bytes=0-0"},
            ) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(probe(body["id"]) for body in created))
        assert set(statuses) == {206}
        assert emu.joplin.musics_created == 200
        assert emu.count("joplin") == 400


async def test_movement_with_neither_energy_nor_type_is_accepted(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    # Seed 000's create example: movements 2 and 4 have only "start" and "duration".
    structure = [
        {"start": 0.0, "duration": 0.5, "energy": "dynamic"},
        {"start": 0.5, "duration": 0.5},
    ]
    body = await create(emu, jhttp, structure=structure)
    assert body["structure"] == structure
    status, schema = await call(jhttp, "GET", url(emu, f"/musics/{body['id']}/schema"))
    assert (status, schema["structure"]) == (200, structure)


async def test_movement_with_neither_plays_at_the_neutral_tempo(
    emu: Emulator, jhttp: aiohttp.ClientSession
) -> None:
    # A movement without energy or type weighs like "medium" on the tempo.
    plain = await create(emu, jhttp, structure=[{"start": 0, "duration": 1}])
    medium = await create(emu, jhttp, structure=[{"start": 0, "duration": 1, "energy": "medium"}])
    assert plain["bpm"] == medium["bpm"]
