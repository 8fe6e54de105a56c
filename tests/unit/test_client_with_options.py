"""`Client.with_options(...)`: a view of the client that shares its pool, logins and pollers
and applies other options to the calls made through its namespaces (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from imuzekit import Client, ImuzeConfig, MuseScoreConfig, RetryPolicy, Timeouts, errors
from imuzekit._http import Request, Response
from imuzekit.testing import MockTransport, respond

BASE = "http://127.0.0.1:9/api/4"
FAST = RetryPolicy(max_attempts=1, backoff_base=0.001, backoff_max=0.002)


class Imuze:
    """A tiny iMuze: a login at /tokens, and GET /songs/:id that is busy (503) `busy` times."""

    def __init__(self, busy: int = 0) -> None:
        self.seen: list[Request] = []
        self.busy = busy

    def __call__(self, request: Request) -> Response:
        self.seen.append(request)
        if request.url.endswith("/tokens"):
            return respond(request, 201, json={"token": f"token-{len(self.logins())}"})
        if self.busy:
            self.busy -= 1
            return respond(request, 503, json={"error": "busy"})
        song_id = int(request.url.rsplit("/", 1)[1])
        return respond(request, json={"id": song_id, "title": "Morning Song", "status": "ready"})

    def logins(self) -> list[Request]:
        return [r for r in self.seen if r.url.endswith("/tokens")]

    def songs(self) -> list[Request]:
        return [r for r in self.seen if "/songs/" in r.url]


def _client(server: Imuze, **options: Any) -> Client:
    config = ImuzeConfig(email="me@example.com", password="hunter2", base_url=BASE)
    return Client(imuze=config, transport=MockTransport(server), retry=FAST, **options)


async def test_a_views_headers_go_with_its_calls_only() -> None:
    server = Imuze()
    async with _client(server) as kit:
        traced = kit.with_options(headers={"X-Trace": "abc"})
        await traced.imuze.songs.get(1)
        await kit.imuze.songs.get(2)
    first, second = server.songs()
    assert first.header("X-Trace") == "abc"
    assert second.header("X-Trace") is None
    # The view's call was authenticated with the client's login, not a second one.
    assert len(server.logins()) == 1
    assert first.header("Authorization") == second.header("Authorization") == "token-1"


async def test_a_views_retry_policy_applies_to_its_calls_only() -> None:
    server = Imuze(busy=2)
    async with _client(server) as kit:
        with pytest.raises(errors.ServerError):
            await kit.imuze.songs.get(1)  # one attempt: the client's policy
        server.busy = 2
        patient = kit.with_options(retry=RetryPolicy(max_attempts=3, backoff_base=0.001))
        song = await patient.imuze.songs.get(7)
    assert song.id == 7
    assert len(server.songs()) == 1 + 3


async def test_a_view_built_first_still_shares_the_login_with_its_client() -> None:
    server = Imuze()
    async with _client(server) as kit:
        view = kit.with_options(timeout=30)
        await view.imuze.songs.get(1)  # the view builds the namespace and logs in
        await kit.imuze.songs.get(2)
        await kit.with_options(headers={"X-A": "1"}).imuze.songs.get(3)
    assert len(server.logins()) == 1


async def test_closing_a_view_leaves_the_client_open_and_closing_the_client_closes_views() -> None:
    server = Imuze()
    kit = _client(server)
    async with kit.with_options(timeout=Timeouts(total=5)) as view:
        await view.imuze.songs.get(1)
    assert not kit.closed
    await kit.imuze.songs.get(2)
    other = kit.with_options(timeout=5)
    await kit.close()
    assert other.closed
    with pytest.raises(errors.ClientClosedError):
        await other.imuze.songs.get(3)
    with pytest.raises(errors.ClientClosedError):
        kit.with_options(timeout=5)


async def test_a_view_shares_musescores_oauth_hook() -> None:
    async with Client(
        musescore=MuseScoreConfig(consumer_key="key", consumer_secret="secret"),
        transport=MockTransport(lambda request: respond(request, json={})),
    ) as kit:
        view = kit.with_options(timeout=5)
        assert view.musescore.hook is kit.musescore.hook


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"timeout": -1}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"retry": 3}, "retry"),
        ({"headers": {"X-A": 1}}, "headers"),
    ],
)
async def test_bad_options_are_refused_naming_them(options: dict[str, Any], field: str) -> None:
    server = Imuze()
    async with _client(server) as kit:
        with pytest.raises(errors.ValidationError) as caught:
            kit.with_options(**options)
    assert caught.value.field == field
    assert server.seen == []
