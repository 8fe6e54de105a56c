"""Types that flow: a token resumed through a provider namespace is a typed job, a job's result
has a typed accessor, download results are generic in their source, `APIError.body` is `object`.

The runtime half talks to no socket (`MockTransport`); the static half runs `mypy --strict` on a
small user script that asserts the types a user's code receives.
"""

from __future__ import annotations

import json
import pathlib
import textwrap
from typing import Any

import pytest

from imuzekit import (
    Client,
    ImuzeConfig,
    Job,
    JobState,
    JoplinConfig,
    MurekaConfig,
    MuseScoreConfig,
    errors,
)
from imuzekit._http import Request, Response
from imuzekit.providers.imuze import Song
from imuzekit.providers.mureka import JobRecord
from imuzekit.testing import MockTransport, respond
from tests.docs._mypy import mypy_strict

MP3 = "http://127.0.0.1:9/files/7.mp3"


def _imuze(request: Request) -> Response:
    """A tiny iMuze: song 7 is ready, any other song still renders."""
    song_id = int(request.url.rsplit("/", 1)[1])
    status = "ready" if song_id == 7 else "processing"
    body = {"id": song_id, "title": "Morning Song", "status": status, "mp3": MP3}
    return respond(request, json=body)


def _client() -> Client:
    return Client(
        imuze=ImuzeConfig(token="t", base_url="http://127.0.0.1:9/api/4"),
        joplin=JoplinConfig(token="t", base_url="http://127.0.0.1:9/joplin"),
        mureka=MurekaConfig(token="t", accounts=("1111",), base_url="http://127.0.0.1:9/mureka"),
        musescore=MuseScoreConfig(
            consumer_key="k",
            consumer_secret="s",
            token="t",
            token_secret="ts",
            base_url="http://127.0.0.1:9/musescore",
        ),
        transport=MockTransport(_imuze),
    )


def _forged(provider: str, kind: str, job_id: str, data: dict[str, Any] | None = None) -> str:
    payload = {"imuzekit_job": 1, "provider": provider, "kind": kind, "id": job_id}
    return json.dumps({**payload, "data": data or {}})


async def test_each_namespace_resumes_its_own_tokens() -> None:
    async with _client() as kit:
        pairs: list[tuple[Job[Any], Any]] = [
            (kit.imuze.songs.job(7), kit.imuze.songs.resume),
            (kit.joplin.musics.job("m-1"), kit.joplin.musics.resume),
            (kit.mureka.jobs.job("j-1"), kit.mureka.jobs.resume),
            (kit.mureka.jobs.job("j-2"), kit.mureka.music.resume),
            (kit.musescore.scores.job(42), kit.musescore.scores.resume),
        ]
        for job, resume in pairs:
            resumed = resume(job.token())
            assert isinstance(resumed, Job)
            assert (resumed.provider, resumed.driver.kind, resumed.id) == (
                job.provider,
                job.driver.kind,
                job.id,
            )
            assert resumed.token() == job.token()


async def test_a_song_resumed_from_its_token_keeps_its_title() -> None:
    async with _client() as kit:
        job = kit.imuze.job_for(Song(id=7, title="Morning Song", desired_length=30))
        resumed = kit.imuze.songs.resume(job.token())
        assert resumed.result == Song(id=7, title="Morning Song", desired_length=30)
        assert await resumed.refresh() is JobState.READY
        assert resumed.result_or_raise().title == "Morning Song"


async def test_another_providers_token_is_refused_naming_both() -> None:
    async with _client() as kit:
        token = kit.joplin.musics.job("m-1").token()
        with pytest.raises(errors.ValidationError) as caught:
            kit.imuze.songs.resume(token)
        assert caught.value.field == "token"
        assert "joplin" in caught.value.reason and "imuze" in caught.value.reason
        assert "kit.resume" in caught.value.reason
        # The untyped door still takes it.
        assert kit.resume(token).provider == "joplin"


async def test_another_kind_of_the_same_provider_is_refused() -> None:
    async with _client() as kit:
        with pytest.raises(errors.ValidationError) as caught:
            kit.imuze.songs.resume(_forged("imuze", "feed", "7"))
    assert caught.value.field == "token"
    assert "'feed'" in caught.value.reason and "'song'" in caught.value.reason


@pytest.mark.parametrize(
    ("provider", "token"),
    [
        ("imuze", "not json"),
        ("imuze", json.dumps({"imuzekit_job": 1, "provider": "imuze", "kind": "song"})),
        ("imuze", _forged("imuze", "song", "not-a-number")),
        ("musescore", _forged("musescore", "upload", "x")),
    ],
)
async def test_a_broken_token_is_a_validation_error_on_token(provider: str, token: str) -> None:
    async with _client() as kit:
        resume = kit.imuze.songs.resume if provider == "imuze" else kit.musescore.scores.resume
        with pytest.raises(errors.ValidationError) as caught:
            resume(token)
    assert caught.value.field == "token"


async def test_a_token_that_is_not_a_string_is_refused() -> None:
    async with _client() as kit:
        with pytest.raises(errors.ValidationError) as caught:
            kit.mureka.music.resume(42)  # type: ignore[arg-type]
    assert caught.value.field == "token"


async def test_result_or_raise_returns_the_result_of_a_ready_job() -> None:
    async with _client() as kit:
        job = kit.imuze.songs.job(7)
        assert await job.refresh() is JobState.READY
        song = job.result_or_raise()
    assert song == Song(id=7, title="Morning Song", status="ready", mp3_url=MP3)


async def test_result_or_raise_refuses_a_job_that_is_not_done() -> None:
    async with _client() as kit:
        job = kit.imuze.songs.job(8)
        with pytest.raises(errors.JobNotReady) as before:
            job.result_or_raise()
        assert await job.refresh() is JobState.PROCESSING
        with pytest.raises(errors.JobNotReady) as during:
            job.result_or_raise()
    assert before.value.job is job and during.value.job is job
    assert before.value.state == "queued" and during.value.state == "processing"
    assert "imuze job 8 is processing" in str(during.value)
    assert "wait()" in str(during.value)
    assert not isinstance(during.value, errors.JobFailed)  # a caller's misuse, not a failure


async def test_result_or_raise_raises_job_failed_for_a_failed_job() -> None:
    async with _client() as kit:
        record = JobRecord(jobid="j-9", status="failed", error="moderation")
        job = kit.mureka.job_for("j-9", record)
        assert job.state is JobState.FAILED
        with pytest.raises(errors.JobFailed) as caught:
            job.result_or_raise()
    assert caught.value.job is job
    assert caught.value.reason == "moderation"
    assert not isinstance(caught.value, errors.JobTimeout)


def test_api_error_body_keeps_what_the_provider_sent() -> None:
    body = {"error": "busy", "retry": [1, 2]}
    exc = errors.ServerError("busy", status=503, provider="imuze", body=body)
    assert exc.body == body


USER_SCRIPT = """
from __future__ import annotations

from pathlib import Path
from typing import assert_type

from imuzekit import Client, DownloadResult, Job, errors
from imuzekit.providers.imuze import Song
from imuzekit.providers.joplin import Music
from imuzekit.providers.mureka import Feed
from imuzekit.providers.musescore import Score


async def main(kit: Client, token: str) -> None:
    song_job = kit.imuze.songs.resume(token)
    assert_type(song_job, Job[Song])
    assert_type(song_job.result_or_raise(), Song)
    assert_type(song_job.raw_status, object)
    assert_type(song_job.snapshot().raw_status, object)
    assert_type(kit.joplin.musics.resume(token), Job[Music])
    assert_type(kit.mureka.music.resume(token), Job[Feed])
    assert_type(kit.mureka.jobs.resume(token), Job[Feed])
    assert_type(kit.musescore.scores.resume(token), Job[Score])
    song = await song_job.wait()
    async for result in kit.download_many([song], Path("out")):
        assert_type(result, DownloadResult[Song])
        assert_type(result.source, Song)
    feed = await kit.mureka.music.resume(token).wait()
    async for done in kit.download_many(feed.songs, "out"):
        print(done.source.title, done.path)
    try:
        await kit.imuze.songs.get(1)
    except errors.APIError as exc:
        assert_type(exc.body, object)
    except errors.ParseError as exc:
        assert_type(exc.body, object)
    except errors.JobNotReady as exc:
        assert_type(exc.state, str)
"""


def test_a_typed_user_script_passes_mypy_strict(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(USER_SCRIPT))
    assert mypy_strict([script], cache=tmp_path / "cache") == ""
