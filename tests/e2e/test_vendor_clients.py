"""The emulator answers the requests the providers' own clients send (`tests/samples/vendor`).

Each test replays, with a plain aiohttp session, what a published client does: its URLs and URL
forms, headers, bodies and the order of its calls (the endpoint it calls first), and checks the
answer has every field that client reads, in the shape the vendored material gives. A test
marked `xfail(strict=True)` is a difference the emulator has not closed yet; it becomes an
XPASS failure, asking for the mark to go, once it is closed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from authlib.oauth1 import ClientAuth

from imuzekit._http import Request, Response
from imuzekit.emulator import Emulator
from imuzekit.emulator.imuze import MUSICAL_MODES
from imuzekit.providers.imuze import _api as imuze
from imuzekit.providers.joplin import _api as joplin
from imuzekit.providers.mureka import _api as mureka
from imuzekit.providers.musescore import _api as musescore
from tests.vendor import schema_problems, vendored, vendored_bytes


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


def _response(status: int, body: bytes, provider: str) -> Response:
    request = Request("GET", "http://127.0.0.1/", provider=provider)
    headers = {"Content-Type": "application/json"}
    return Response(status=status, headers=headers, body=body, request=request)


async def _eventually(check: Any, *, seconds: float = 5.0) -> Any:
    """Call the coroutine function `check` until it returns something truthy."""
    for _ in range(int(seconds / 0.05)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")


# -- joplin: iMuze's Ruby client (imuze/ruby-imuzer) ------------------------------------------


async def _joplin_login(emu: Emulator, http: aiohttp.ClientSession) -> str:
    call = vendored("joplin", "client.json")["calls"][0]
    creds = emu.credentials["joplin"]
    body = {**vendored("joplin", "token.request.json")}
    body.update(email=creds.email, password=creds.password)
    async with http.request(
        call["method"], emu.urls["joplin"] + call["path"], json=body, headers=call["headers"]
    ) as answer:
        assert answer.status == 200
        token = (await answer.json())[call["reads"][0]]
    assert isinstance(token, str) and token
    return token


async def test_joplin_ruby_client_lists_genres_logs_in_and_composes(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    calls = {call["name"]: call for call in vendored("joplin", "client.json")["calls"]}
    base = emu.urls["joplin"]
    # `imuzer genres`: no token, and no trailing slash (the seed writes /genres/).
    async with http.get(base + calls["genres"]["path"], headers=calls["genres"]["headers"]) as got:
        assert got.status == 200
        genres = (await got.json())["genres"]
    assert genres and all(isinstance(g["name"], str) for g in genres)
    assert all(isinstance(s, str) for g in genres for s in g["subgenres"])

    token = await _joplin_login(emu, http)
    body = vendored("joplin", "create_music.request.json")
    # The client's README composes "rock dynamic"; the emulator's catalogue has other names.
    body.update(genre=genres[0]["name"], subgenre=genres[0]["subgenres"][0])
    headers = {**calls["create_music"]["headers"], "authorization": token}  # raw, no scheme
    async with http.post(base + calls["create_music"]["path"], json=body, headers=headers) as got:
        raw = await got.read()
        status = got.status
    assert status == 201
    answer = json.loads(raw)
    # format_response.rb takes a 'status' of 500 or 403 in the answer for a failure.
    assert answer.get("status") not in (403, 500)
    music = joplin.parse_music(_response(status, raw, "joplin"), base_url=base)
    assert [m.start for m in music.structure] == pytest.approx(
        [m["start"] for m in body["structure"]]
    )


async def test_joplin_create_answer_carries_the_mp3_uri_the_client_plays(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    token = await _joplin_login(emu, http)
    async with http.get(emu.urls["joplin"] + "/genres") as got:
        genre = (await got.json())["genres"][0]
    body = vendored("joplin", "create_music.request.json")
    body.update(genre=genre["name"], subgenre=genre["subgenres"][0])
    async with http.post(
        emu.urls["joplin"] + "/musics", json=body, headers={"authorization": token}
    ) as got:
        answer = await got.json()
    mp3_uri = answer["mp3_uri"]
    assert mp3_uri.startswith("//")
    assert mp3_uri.split("/")[4] == answer["id"]  # get_music.rb takes the id from there

    async def ready() -> bool:
        async with http.get("http:" + mp3_uri, headers={"Authorization": token}) as got:
            return got.status == 200 and (await got.read())[:3] in (b"ID3", b"\xff\xfb")

    await _eventually(ready)


async def test_joplin_error_answers_carry_their_status(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        emu.urls["joplin"] + "/musics", json={}, headers={"authorization": "not-a-token"}
    ) as got:
        assert (await got.json())["status"] == got.status


# -- iMuze API v4: iMuze's schemas (imuze/jslate) ---------------------------------------------


async def test_imuze_answers_conform_to_imuzes_schemas(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    base, creds = emu.urls["imuze"], emu.credentials["imuze"]
    login = {"token": {"email": creds.email, "password": creds.password}}
    assert schema_problems(login, vendored("imuze", "authenticate.input.json")) == []
    async with http.post(base + "/tokens", json=login) as got:
        assert got.status in (200, 201)
        token = await got.json()
    assert schema_problems(token, vendored("imuze", "authenticate.output.json")) == []
    auth = {"Authorization": token["response"], "Content-Type": "application/json"}

    async with http.get(base + "/arrangements", headers=auth) as got:
        arrangements = await got.json()
    assert schema_problems(arrangements, vendored("imuze", "indexArrangement.output.json")) == []
    first = arrangements["response"][0]["id"]
    async with http.get(f"{base}/arrangements/{first}", headers=auth) as got:
        arrangement = await got.json()
    assert schema_problems(arrangement, vendored("imuze", "showArrangement.output.json")) == []

    song = {"title": "Summer Rain", "arrangement_id": first, "tags": ["calm"], "desired_length": 30}
    assert schema_problems(song, vendored("imuze", "createSong.input.json")) == []
    async with http.post(base + "/songs", json=song, headers=auth) as got:
        assert got.status in (200, 201)
        created = await got.json()
    assert schema_problems(created, vendored("imuze", "createSong.output.json")) == []
    async with http.get(f"{base}/songs/{created['id']}", headers=auth) as got:
        shown = await got.json()
    assert schema_problems(shown, vendored("imuze", "showSong.output.json")) == []
    async with http.get(base + "/songs", headers=auth) as got:
        index = await got.json()
    assert schema_problems(index, vendored("imuze", "indexSong.output.json")) == []
    # And the SDK reads every one of them.
    assert (
        imuze.parse_song(_response(200, json.dumps(created).encode(), "imuze")).id == created["id"]
    )


async def test_imuze_song_from_tags_alone_conforms_to_imuzes_schemas(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    base = emu.urls["imuze"]
    auth = {"Authorization": str(emu.credentials["imuze"].token)}
    async with http.get(f"{base}/arrangements/1", headers=auth) as got:
        tag = (await got.json())["genre_list"][0]
    song = {"title": "Summer Rain", "arrangement_id": None, "tags": [tag], "desired_length": 30}
    assert schema_problems(song, vendored("imuze", "createSong.input.json")) == []
    async with http.post(base + "/songs", json=song, headers=auth) as got:
        assert got.status in (200, 201)
        created = await got.json()
    assert schema_problems(created, vendored("imuze", "createSong.output.json")) == []


@pytest.mark.parametrize("title", ["abc", "Song 42", "rock-n-roll"])
async def test_imuze_title_outside_imuzes_rules_is_a_400(
    emu: Emulator, http: aiohttp.ClientSession, title: str
) -> None:
    auth = {"Authorization": str(emu.credentials["imuze"].token)}
    song = {"title": title, "arrangement_id": 1, "tags": ["calm"], "desired_length": 30}
    async with http.post(emu.urls["imuze"] + "/songs", json=song, headers=auth) as got:
        assert got.status == 400
        body = await got.json()
    assert body["code"] == 400 and body["error"].startswith("title must be 4 to 255 characters")
    assert emu.imuze.songs_created == 0


def test_imuze_musical_modes_are_the_ones_imuzes_schema_allows() -> None:
    enum = vendored("imuze", "createSong.output.json")["properties"]["musical_mode"]["enum"]
    assert set(MUSICAL_MODES) <= set(enum)


# -- Mureka: useapi.net's script (useapi/mureka-api) -------------------------------------------


def _mureka_headers(emu: Emulator, call: dict[str, Any]) -> dict[str, str]:
    token = emu.credentials["mureka"].token
    return {name: value.replace("<API token>", token) for name, value in call["headers"].items()}


async def test_mureka_script_creates_polls_the_job_and_downloads_both_songs(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    client = vendored("mureka", "client.json")
    calls = {call["name"]: call for call in client["calls"]}
    base = emu.urls["mureka"]
    account = emu.credentials["mureka"].extra["accounts"].split(",")[0]
    prompt = vendored("mureka", "prompts.json")[0]  # no model: the service picks its default
    body = {"account": account, "prompt": prompt["prompt"], "async": True}
    assert set(body) <= set(calls["create"]["body_keys"])
    create = calls["create"]
    async with http.post(
        base + create["path"], json=body, headers=_mureka_headers(emu, create)
    ) as got:
        assert got.status in create["ok_statuses"]
        jobid = (await got.json())["jobid"]

    job_call = calls["job"]

    async def final() -> Any:
        # The script escapes the jobid (it holds a ':') with encodeURIComponent.
        url = f"{base}/jobs/{quote(jobid, safe='')}"
        async with http.get(url, headers=_mureka_headers(emu, job_call)) as got:
            assert got.status == 200
            job = await got.json()
        return job if job.get("status") in job_call["final_statuses"] else None

    job = await _eventually(final)
    assert job["status"] == "completed"
    songs = job["response"]["songs"]
    assert len(songs) == 2  # "each generation returns two songs (version 1 and 2)"
    assert sorted(song["version"] for song in songs) == ["1", "2"]
    for song in songs:
        async with http.get(song["mp3_url"]) as got:  # the CDN link, no credentials
            assert got.status == 200
            assert (await got.read())[:3] in (b"ID3", b"\xff\xfb")
    record = mureka.parse_job_record(_response(200, json.dumps(job).encode(), "mureka"))
    assert record.response is not None
    assert [s.mp3_url for s in record.response.songs] == [s["mp3_url"] for s in songs]


async def test_mureka_an_unknown_job_is_a_404(emu: Emulator, http: aiohttp.ClientSession) -> None:
    job_call = next(c for c in vendored("mureka", "client.json")["calls"] if c["name"] == "job")
    url = emu.urls["mureka"] + "/jobs/" + quote("j0-u777-a1-bot:mureka", safe="")
    async with http.get(url, headers=_mureka_headers(emu, job_call)) as got:
        assert got.status == job_call["not_found_status"]


async def test_mureka_accounts_is_the_first_call_and_lists_the_accounts(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    call = next(c for c in vendored("mureka", "client.json")["calls"] if c["first"])
    async with http.get(
        emu.urls["mureka"] + call["path"], headers=_mureka_headers(emu, call)
    ) as got:
        assert got.status == 200
        accounts = await got.json()
    listed = sorted(entry["account"] for entry in accounts.values())
    assert listed == sorted(emu.credentials["mureka"].extra["accounts"].split(","))


async def _mureka_create_with(emu: Emulator, http: aiohttp.ClientSession, model: str) -> int:
    call = next(c for c in vendored("mureka", "client.json")["calls"] if c["name"] == "create")
    account = emu.credentials["mureka"].extra["accounts"].split(",")[0]
    body = {"account": account, "prompt": "a song", "model": model, "async": True}
    async with http.post(
        emu.urls["mureka"] + call["path"], json=body, headers=_mureka_headers(emu, call)
    ) as got:
        return got.status


@pytest.mark.parametrize("model", ["V8", "O2", "V7.6"])
async def test_mureka_current_models_are_accepted(
    emu: Emulator, http: aiohttp.ClientSession, model: str
) -> None:
    assert model in vendored("mureka", "client.json")["models"]["current"]
    assert await _mureka_create_with(emu, http, model) in (200, 201)


@pytest.mark.parametrize("model", ["V9", "V7", "O1", "V6"])
async def test_mureka_v9_and_the_documented_aliases_are_accepted(
    emu: Emulator, http: aiohttp.ClientSession, model: str
) -> None:
    models = vendored("mureka", "client.json")["models"]
    assert model in models["current"] + models["aliases"]
    assert await _mureka_create_with(emu, http, model) in (200, 201)


# -- MuseScore: the Python wrapper and the desktop app -------------------------------------


def _signer(emu: Emulator, *, user: bool = True) -> ClientAuth:
    extra = emu.credentials["musescore"].extra
    if not user:
        return ClientAuth(extra["consumer_key"], extra["consumer_secret"])
    return ClientAuth(
        extra["consumer_key"],
        extra["consumer_secret"],
        token=extra["token"],
        token_secret=extra["token_secret"],
    )


async def _signed_get(emu: Emulator, http: aiohttp.ClientSession, url: str) -> Any:
    signed_url, headers, _ = _signer(emu).sign("GET", url, {}, b"")
    async with http.get(signed_url, headers=headers) as got:
        assert got.status == 200, await got.text()
        return await got.json()


async def test_musescore_wrapper_url_forms_with_the_consumer_key_parameter(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    client = vendored("musescore", "client.json")
    base = emu.urls["musescore"]
    key = {client["unauthenticated_param"]: emu.credentials["musescore"].extra["consumer_key"]}
    headers = {"User-Agent": client["wrapper_user_agent"]}
    # api.request('score'), then the search filters of its test.py and of other clients.
    async with http.get(f"{base}/score.json", params=key, headers=headers) as got:
        scores = await got.json()
    assert got.status == 200 and isinstance(scores, list) and scores
    async with http.get(
        f"{base}/score.json", params={**key, "text": scores[0]["title"], "part": "0"}
    ) as got:
        assert got.status == 200 and isinstance(await got.json(), list)
    score = scores[0]
    async with http.get(f"{base}/score/{score['id']}.xml", params=key) as got:
        text = await got.text()
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<score>')
    # testunit.py: the XML of a user's scores starts like this.
    async with http.get(f"{base}/user/{score['user']['uid']}/score.xml", params=key) as got:
        assert (await got.text()).startswith(client["xml_list_prefix"])
    async with http.get(f"{base}/score.jsonp", params={**key, "callback": "cb"}) as got:
        assert (await got.text()).startswith("cb(")
    async with http.get(
        f"{base}/resolve.json", params={**key, "url": score["permalink"]}, allow_redirects=False
    ) as got:
        assert got.status in (301, 302, 303, 307)
        assert f"/score/{score['id']}.json" in got.headers["Location"]


async def test_musescore_desktop_app_checks_the_user_uploads_and_reads_the_score_back(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    client = vendored("musescore", "client.json")
    calls = {(c["method"], c["path"]): c for c in client["desktop_calls"] if "path" in c}
    base = emu.urls["musescore"]
    me = await _signed_get(emu, http, f"{base}/me.json")  # tryLogin -> getUser, first
    for field in calls[("GET", "/me.json")]["reads"]:
        assert isinstance(me[field], str) and me[field]  # read with QJsonValue::toString

    form = aiohttp.FormData()
    form.add_field(
        "score_data",
        vendored_bytes("musescore", "test.mscz"),
        filename="temp_12345.mscz",
        content_type="application/octet-stream",
    )
    fields = {
        "title": "title",
        "description": "description",
        "private": "1",
        "license": "cc-zero",
        "tags": "a,b",
    }
    assert set(fields) | {"score_data"} == set(client["upload"]["multipart"])
    for name, value in fields.items():
        form.add_field(name, value)
    url, headers, _ = _signer(emu).sign("POST", f"{base}/score.json", {}, b"")
    async with http.post(url, data=form, headers=headers) as got:
        assert got.status in (200, 201), await got.text()
        uploaded = await got.json()
    for field in client["upload"]["desktop_reads"]:
        assert isinstance(uploaded[field], str) and uploaded[field]

    score = await _signed_get(emu, http, f"{base}/score/{uploaded['id']}.json")
    assert score["user"]["uid"] == me["id"]  # getScore: the uploader owns it
    assert (score["title"], score["description"]) == ("title", "description")
    assert (score["sharing"], score["license"]) == ("private", "cc-zero")
    assert musescore.parse_score(_response(200, json.dumps(score).encode(), "musescore")).id == int(
        uploaded["id"]
    )


async def test_musescore_score_carries_the_tags_and_custom_url_the_desktop_reads(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    base = emu.urls["musescore"]
    form = aiohttp.FormData()
    form.add_field("score_data", vendored_bytes("musescore", "test.mscz"), filename="t.mscz")
    form.add_field("title", "title")
    form.add_field("tags", "a,b")
    url, headers, _ = _signer(emu).sign("POST", f"{base}/score.json", {}, b"")
    async with http.post(url, data=form, headers=headers) as got:
        uploaded = await got.json()
    score = await _signed_get(emu, http, f"{base}/score/{uploaded['id']}.json")
    assert score["tags"] == "a,b"
    assert isinstance(score["custom_url"], str)


async def test_musescore_xauth_login_of_the_desktop_app(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    creds = emu.credentials["musescore"]
    assert creds.email and creds.password  # the demo user's login
    url = emu.urls["musescore_oauth"] + "/access_token"
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    async def xauth(password: str) -> aiohttp.ClientResponse:
        body = (
            f"x_auth_username={quote(creds.email)}"
            f"&x_auth_password={quote(password)}&x_auth_mode=client_auth"
        )
        signed_url, headers, signed_body = _signer(emu, user=False).sign("POST", url, form, body)
        return await http.post(signed_url, data=signed_body, headers=headers)

    async with await xauth(creds.password) as got:
        assert got.status == 200
        answer = await got.text()
    assert "oauth_token=" in answer and "oauth_token_secret=" in answer
    async with await xauth("wrong password") as got:
        assert got.status == 401
        assert (await got.json())[0]["code"] == "USER_AUTHENTICATION_FAILED"


async def test_musescore_upload_of_the_wrappers_musescore_1_file_reads_its_parts(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # The wrapper's test.mscz was written by MuseScore 1.3: one part, Flute (program 73), and
    # 32 measures of 4/4.
    base = emu.urls["musescore"]
    form = aiohttp.FormData()
    form.add_field("score_data", vendored_bytes("musescore", "test.mscz"), filename="test.mscz")
    form.add_field("title", "title")
    url, headers, _ = _signer(emu).sign("POST", f"{base}/score.json", {}, b"")
    async with http.post(url, data=form, headers=headers) as got:
        assert got.status in (200, 201)
        metadata = (await got.json())["metadata"]
    assert metadata["measures"] == "32"
    assert metadata["parts"] == [{"part": {"name": "Flute", "program": "73"}}]
