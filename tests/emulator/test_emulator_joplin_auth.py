"""The emulated iMuze music engine (joplin): wiring, JWT authentication, genres.
Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import aiohttp
import pytest

from imuzekit.emulator import Emulator
from imuzekit.emulator.joplin import DEMO_EMAIL, DEMO_PASSWORD

from ._joplin_helpers import (
    MUSIC,
    b64,
    sign,
    unb64,
    url,
)
from .conftest import call

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
