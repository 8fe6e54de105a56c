"""`Client(transport=MockTransport(handler))`: the whole SDK above the wire, with no socket."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from imuzekit import Client, ImuzeConfig, JobState, PollPolicy, RetryPolicy, errors
from imuzekit.http import Request, Response
from imuzekit.testing import MockTransport, respond

MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" + bytes(400)
BASE = "https://api.imuze.test/api/4"
FAST_POLL = PollPolicy(initial=0.01, max_interval=0.02, timeout=5)


class FakeImuze:
    """A tiny iMuze v4 as a handler: login, a song that is processing once, then ready."""

    def __init__(self) -> None:
        self.polls = 0
        self.created: list[dict[str, Any]] = []

    def __call__(self, request: Request) -> Response:
        path = request.url.removeprefix(BASE)
        if (request.method, path) == ("POST", "/tokens"):
            return respond(request, 201, json={"response": "tok-1"})
        if request.header("Authorization") != "tok-1" and not path.startswith("/files"):
            return respond(request, 401, json={"error": "no token"})
        if (request.method, path) == ("POST", "/songs"):
            self.created.append(dict(request.json or {}))
            return respond(request, 201, json=self._song("processing"))
        if (request.method, path) == ("GET", "/songs/7"):
            self.polls += 1
            return respond(request, json=self._song("processing" if self.polls < 2 else "ready"))
        if (request.method, path) == ("GET", "/files/7.mp3"):
            return respond(request, body=MP3, headers={"Content-Type": "audio/mpeg"})
        return respond(request, 404, json={"error": f"no route {request.method} {path}"})

    def _song(self, status: str) -> dict[str, Any]:
        song: dict[str, Any] = {"id": 7, "title": "Mock Song", "status": status}
        if status == "ready":
            song["mp3_url"] = BASE + "/files/7.mp3"
        return song


def _config() -> ImuzeConfig:
    return ImuzeConfig(email="a@b.test", password="pw", base_url=BASE)


async def test_create_wait_download_with_no_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sockets(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", no_sockets)
    service = FakeImuze()
    wire = MockTransport(service)
    async with Client(imuze=_config(), transport=wire, poll=FAST_POLL) as kit:
        job = await kit.imuze.songs.create(
            title="Mock Song", arrangement_id=1, tags=["piano"], desired_length=5
        )
        song = await job.wait(timeout=5)
        path = await kit.download(song, tmp_path)
    assert job.state is JobState.READY and song.id == 7
    assert path.read_bytes() == MP3
    assert service.created == [
        {"title": "Mock Song", "arrangement_id": 1, "tags": ["piano"], "desired_length": 5}
    ]
    sent = [(r.method, r.url.removeprefix(BASE)) for r in wire.requests]
    assert sent[:2] == [("POST", "/tokens"), ("POST", "/songs")]
    assert sent[-1] == ("GET", "/files/7.mp3") and sent.count(("GET", "/songs/7")) == 2
    # The pipeline ran: the login's token went with every authenticated request.
    assert all(r.header("Authorization") == "tok-1" for r in wire.requests[1:-1])


async def test_the_pipeline_still_retries_and_maps_errors() -> None:
    answers = iter([503, 503, 200])

    async def flaky(request: Request) -> Response:  # an async handler
        await asyncio.sleep(0)
        status = next(answers, 404)
        return respond(request, status, json={"id": 1, "name": "Piano", "genre_list": []})

    retry = RetryPolicy(backoff_base=0.001, backoff_max=0.002)
    config = ImuzeConfig(token="t", base_url=BASE)
    async with Client(imuze=config, transport=MockTransport(flaky), retry=retry) as kit:
        arrangement = await kit.imuze.arrangements.get(1)
        assert arrangement.id == 1
        with pytest.raises(errors.NotFoundError):
            await kit.imuze.arrangements.get(1)


async def test_a_handler_that_returns_something_else_is_a_clear_error() -> None:
    wire = MockTransport(lambda request: {"status": 200})  # type: ignore[arg-type, return-value]
    async with Client(imuze=ImuzeConfig(token="t", base_url=BASE), transport=wire) as kit:
        with pytest.raises(TypeError, match=r"must return an imuzekit\.http\.Response"):
            await kit.imuze.arrangements.get(1)


def test_a_transport_without_handle_is_refused() -> None:
    with pytest.raises(errors.ValidationError) as info:
        Client(transport=object())  # type: ignore[arg-type]
    assert info.value.field == "transport"


def test_respond_encodes_json() -> None:
    request = Request("GET", BASE + "/x")
    answer = respond(request, 201, json={"a": [1]})
    assert answer.status == 201 and json.loads(answer.body) == {"a": [1]}
    assert answer.headers["content-type"] == "application/json"
