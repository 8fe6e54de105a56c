"""MuseScore.com end to end: the real Client (OAuth 1.0 signed) against the emulator."""

from __future__ import annotations

import io
import itertools
import zipfile
from pathlib import Path
from typing import Any

import mutagen.mp3
import pytest

from imuzekit import Client, JobState, PollPolicy, errors
from imuzekit._http import Request
from imuzekit.emulator import Emulator
from imuzekit.providers.musescore import Score, User, _api
from imuzekit.providers.musescore._oauth import OAuth1Credentials, sign
from tests._configs import musescore_config
from tests.e2e.conftest import FAST_RETRY
from tests.emulator._musescore_helpers import expected_search


async def test_three_legged_flow(emu: Emulator) -> None:
    config = musescore_config(emu, token=None, token_secret=None)
    async with Client(musescore=config) as kit:
        with pytest.raises(errors.AuthenticationError):
            await kit.musescore.me()  # consumer-signed only: no user yet
        request_token = await kit.musescore.oauth.request_token()
        url = kit.musescore.oauth.authorize_url(request_token)
        assert url.startswith(emu.urls["musescore_authorize"]) and request_token.oauth_token in url
        verifier = emu.musescore.approve(request_token.oauth_token)
        access = await kit.musescore.oauth.access_token(request_token, verifier)
        assert access.oauth_token and access.oauth_token not in repr(access.oauth_token_secret)
        me = await kit.musescore.me()
        assert isinstance(me, User) and me.name


async def test_xauth_logs_in_with_the_name_or_email_and_password(emu: Emulator) -> None:
    creds = emu.credentials["musescore"]
    assert creds.email and creds.password
    async with Client(musescore=musescore_config(emu, token=None, token_secret=None)) as kit:
        with pytest.raises(errors.AuthenticationError):
            await kit.musescore.me()  # consumer-signed only: no user yet
        token = await kit.musescore.oauth.xauth(creds.email, creds.password)
        assert token.oauth_token in emu.musescore.access_tokens
        me = await kit.musescore.me()
        assert (me.id, me.name) == (1024, "demo")
    async with Client(musescore=musescore_config(emu, token=None, token_secret=None)) as kit:
        await kit.musescore.oauth.xauth("DEMO", creds.password)  # the name, any case
        assert (await kit.musescore.me()).id == 1024


@pytest.mark.parametrize("username", ["demo", "nicolas", "nobody"])
async def test_xauth_refusal_is_withheld_and_stores_no_token(emu: Emulator, username: str) -> None:
    # A wrong password, a user without one, an unknown user: the same refusal.
    password = "hunter2-not-the-password"
    async with Client(musescore=musescore_config(emu, token=None, token_secret=None)) as kit:
        with pytest.raises(errors.AuthenticationError) as caught:
            await kit.musescore.oauth.xauth(username, password)
        assert kit.musescore.oauth._api.hook.credentials.token is None
    exc = caught.value
    assert exc.status == 401 and exc.body is None
    assert password not in f"{exc} {exc!r} {exc.args}"
    raw = [r for r in emu.requests if r.path.endswith("/access_token")]
    assert raw and all(r.status == 401 for r in raw)


async def test_xauth_answers_as_the_desktop_app_reads_it(emu: Emulator) -> None:
    # loginmanager.cpp reads a refused xAuth login as a JSON array of {"code"}.
    creds = emu.credentials["musescore"]
    assert creds.email and creds.password
    async with Client(musescore=musescore_config(emu, token=None, token_secret=None)) as kit:
        request = _api.build_xauth_request(emu.urls["musescore_oauth"], creds.email, "nope")
        signed = sign(request, kit.musescore.oauth._credentials(), token="", token_secret="")
        with pytest.raises(errors.AuthenticationError) as refused:
            await kit.transport.send(signed)
        assert refused.value.body == [{"code": "USER_AUTHENTICATION_FAILED"}]
        emu.clock.advance(emu.musescore.timestamp_window + 60)  # the signature's time is old
        request = _api.build_xauth_request(emu.urls["musescore_oauth"], creds.email, creds.password)
        signed = sign(request, kit.musescore.oauth._credentials(), token="", token_secret="")
        with pytest.raises(errors.AuthenticationError) as late:
            await kit.transport.send(signed)
        assert late.value.body == [{"code": "USER_TIMESTAMP_EXPIRED"}]
    with pytest.raises(errors.ValidationError) as caught:
        _api.build_xauth_request(emu.urls["musescore_oauth"], "demo", "")
    assert caught.value.field == "password"


async def test_json_token_answers_are_read_too(emu: Emulator) -> None:
    emu.musescore.token_format = "json"
    async with Client(musescore=musescore_config(emu, token=None, token_secret=None)) as kit:
        request_token = await kit.musescore.oauth.request_token()
        verifier = emu.musescore.approve(request_token.oauth_token)
        await kit.musescore.oauth.access_token(request_token, verifier)
        assert (await kit.musescore.me()).id


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"text": "sonata"},
        {"part": 73},
        {"part": [0, 73]},
        {"parts": 1},
        {"language": "fr"},
        {"license": "to_share"},
        {"license": "to_use_commercially"},
        {"license": "to_modify_commercially"},
        {"sort": "view_count"},
        {"sort": "date_uploaded"},
        {"sort": "comment_count"},
        {"text": "a", "sort": "relevance"},
        {"parts": 2, "license": "to_share", "sort": "view_count"},
    ],
)
async def test_search_returns_exactly_the_matching_scores(
    emu: Emulator, filters: dict[str, Any]
) -> None:
    async with Client(musescore=musescore_config(emu, token=None, token_secret=None)) as kit:
        results = kit.musescore.scores.search(**filters)
        ids = [score.id async for score in results]
    part = filters.get("part", ())
    expected = expected_search(
        emu.musescore,
        text=filters.get("text"),
        part=[part] if isinstance(part, int) else part,
        parts=filters.get("parts"),
        language=filters.get("language"),
        license=filters.get("license", "to_play"),
        sort=filters.get("sort", "relevance"),
    )
    assert ids == expected
    assert results.pages == len(expected) // 20 + 1


async def test_public_calls_with_only_a_consumer_key(emu: Emulator) -> None:
    config = musescore_config(emu, consumer_secret=None, token=None, token_secret=None)
    async with Client(musescore=config) as kit:
        first = [s async for s in kit.musescore.scores.search(limit=3)]
        assert len(first) == 3
        score = await kit.musescore.scores.get(first[0].id)
        assert score.id == first[0].id and score.metadata is not None
    sent = [r for r in emu.requests if r.provider == "musescore"]
    assert all("oauth_consumer_key" in r.query for r in sent)


async def test_score_time_space_and_files(emu: Emulator, tmp_path: Path) -> None:
    async with Client(musescore=musescore_config(emu)) as kit:
        score = (await kit.musescore.scores.search(limit=1).collect())[0]
        assert score.metadata is not None and score.metadata.measures
        events = await kit.musescore.scores.time(score.id)
        assert [e.elid for e in events] == list(range(score.metadata.measures))
        assert all(a.position < b.position for a, b in itertools.pairwise(events))
        boxes = await kit.musescore.scores.space(score.id)
        assert len(boxes) == score.metadata.measures
        xml_events = await kit.musescore.scores.time(score.id, format="xml")
        assert [(e.elid, round(e.position, 3)) for e in xml_events] == [
            (e.elid, round(e.position, 3)) for e in events
        ]
        checks = {
            "pdf": lambda b: b.startswith(b"%PDF") and b.rstrip().endswith(b"%%EOF"),
            "mid": lambda b: b.startswith(b"MThd"),
            "mxl": lambda b: zipfile.ZipFile(io.BytesIO(b)).testzip() is None,
            "mscz": lambda b: zipfile.ZipFile(io.BytesIO(b)).testzip() is None,
        }
        for fmt, check in checks.items():
            path = await kit.download(score.file(fmt), tmp_path)
            data = path.read_bytes()
            assert check(data), fmt
            assert data == emu.musescore.file_bytes(score.id, f"score.{fmt}")
        mp3 = await kit.download(score.file("mp3"), tmp_path)
        assert mutagen.mp3.MP3(mp3).info.length > 1
        page = await kit.download(score.page(0), tmp_path)
        thumb = await kit.download(score.thumbnail(), tmp_path / "thumb.png")
        for png in (page, thumb):
            assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert not list(tmp_path.glob("*.part"))


async def test_a_file_that_is_not_what_it_claims_is_refused(emu: Emulator, tmp_path: Path) -> None:
    async with Client(musescore=musescore_config(emu)) as kit:
        score = (await kit.musescore.scores.search(limit=1).collect())[0]
        emu.faults.add("musescore", "GET /static/*", garbage=True)
        with pytest.raises(errors.IntegrityError):
            await kit.download(score.file("pdf"), tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_upload_becomes_ready_then_owner_deletes_it(emu: Emulator, tmp_path: Path) -> None:
    mscz = tmp_path / "etude.mscz"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("etude.mscx", "<museScore><Score/></museScore>")
    mscz.write_bytes(buffer.getvalue())
    async with Client(
        musescore=musescore_config(emu), poll=PollPolicy(initial=0.1, max_interval=0.2)
    ) as kit:
        job = await kit.musescore.scores.upload(
            mscz, "Étude in C", description="mine", license="cc-by", tags=["study", "piano"]
        )
        assert job.state in (JobState.QUEUED, JobState.PROCESSING)
        emu.clock.advance(60)
        score = await job.wait(timeout=10)
        assert isinstance(score, Score) and score.status == "ready"
        assert score.title == "Étude in C"
        assert (score.tags, score.custom_url) == (("study", "piano"), None)
        assert emu.musescore.uploads == 1

        other_key, other_secret = emu.musescore.issue_token(5)
        other = musescore_config(emu, token=other_key, token_secret=other_secret)
        async with Client(musescore=other) as intruder:
            with pytest.raises(errors.PermissionDeniedError):
                await intruder.musescore.scores.delete(score.id)
        await kit.musescore.scores.delete(score.id)
        with pytest.raises(errors.NotFoundError):
            await kit.musescore.scores.get(score.id)
    with pytest.raises(errors.ValidationError):
        async with Client(musescore=musescore_config(emu)) as kit:
            await kit.musescore.scores.upload(tmp_path / "etude.pdf", "x")


async def test_users_resolve_and_oembed(emu: Emulator) -> None:
    async with Client(musescore=musescore_config(emu)) as kit:
        me = await kit.musescore.me()
        assert (await kit.musescore.users.get(me.id)).name == me.name
        mine = [s async for s in kit.musescore.users.scores(me.id)]
        assert all(s.user is not None and s.user.uid == me.id for s in mine)
        score = (await kit.musescore.scores.search(limit=1).collect())[0]
        assert score.permalink is not None
        resolved = await kit.musescore.resolve(score.permalink)
        assert isinstance(resolved, Score) and resolved.id == score.id
        assert me.permalink is not None
        user = await kit.musescore.resolve(me.permalink)
        assert isinstance(user, User) and user.id == me.id
        oembed = await kit.musescore.oembed(score.permalink)
        assert oembed.width == "100%" and oembed.height == 394 and oembed.html
        sized = await kit.musescore.oembed(score.permalink, maxwidth=640, maxheight=300)
        assert (sized.width, sized.height) == (640, 300)


async def test_wrong_secret_and_replayed_nonce_are_refused(emu: Emulator) -> None:
    async with Client(musescore=musescore_config(emu, consumer_secret="wrong")) as kit:
        with pytest.raises(errors.AuthenticationError):
            await kit.musescore.me()
    extra = emu.credentials["musescore"].extra
    credentials = OAuth1Credentials(
        consumer_key=extra["consumer_key"],
        consumer_secret=extra["consumer_secret"],
        token=extra["token"],
        token_secret=extra["token_secret"],
    )
    signed = sign(
        Request("GET", emu.urls["musescore"] + "/me.json", provider="musescore"), credentials
    )
    async with Client(retry=FAST_RETRY) as kit:
        first = await kit.transport.send(signed)
        assert first.status == 200
        with pytest.raises(errors.AuthenticationError):
            await kit.transport.send(signed)  # the same nonce and timestamp again


async def test_search_validation_sends_nothing(emu: Emulator) -> None:
    async with Client(musescore=musescore_config(emu)) as kit:
        for bad in ({"part": 200}, {"language": "french"}, {"sort": "best"}, {"license": "mit"}):
            with pytest.raises(errors.ValidationError):
                kit.musescore.scores.search(**bad)
    assert [r for r in emu.requests if r.provider == "musescore"] == []
