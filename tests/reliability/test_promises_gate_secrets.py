"""Issue 14, points 1 and 8: a long ``Retry-After`` freezes nothing; secrets stay out of errors.

Point 1: one 429 asking for a day (or for ``inf``) raises ``RateLimitError`` at once, and the
provider's shared pause that follows is capped at ``RetryPolicy.max_retry_after``: a later
call, a poll and a download to that provider finish within a short bound, and a paused gate
raises ``RateLimitError`` with the remaining pause instead of outwaiting the caller's deadline.

Point 8: no credential in the ``repr``/``args`` of any exception of a raised chain (aiohttp's
``TooManyRedirects`` keeps the request's headers), failed login answers are withheld from
``APIError.body``, and credentials sent over plain ``http://`` to a remote host log a warning.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from imuzekit import Client, ImuzeConfig, MuseScoreConfig, PollPolicy, RetryPolicy, errors
from imuzekit._http import Request, Response
from imuzekit._retry import RETRY_AFTER_CEILING, deadline_scope, parse_retry_after
from imuzekit._transport import Transport, plain_http_host
from imuzekit.auth import LoginResult, TokenLogin
from imuzekit.emulator import Emulator
from imuzekit.providers.imuze import _api as imuze_api
from imuzekit.providers.joplin import _api as joplin_api
from imuzekit.providers.musescore import _api as musescore_api
from tests.reliability._secrets import find_leaks
from tests.transport.conftest import Server

CAP = 0.4  # max_retry_after of these clients: every pause is at most this long
BOUND = 2.5  # what "at once / within a short bound" means here (the old code hung for a day)
FAST_POLL = PollPolicy(initial=0.02, max_interval=0.05, timeout=10)


def _retry() -> RetryPolicy:
    return RetryPolicy(backoff_base=0.01, backoff_max=0.05, max_retry_after=CAP)


# One 429 per value: what the server asks, and the wait the error reports.
LONG_HINTS = [
    pytest.param({"Retry-After": "86400"}, 86400.0, id="86400"),
    pytest.param({"Retry-After": "inf"}, RETRY_AFTER_CEILING, id="inf"),
    pytest.param({"Retry-After": "1e400"}, RETRY_AFTER_CEILING, id="1e400"),
    pytest.param({"retry-after-ms": "1e15"}, RETRY_AFTER_CEILING, id="ms-1e15"),
]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "inf"}, RETRY_AFTER_CEILING),
        ({"Retry-After": "Infinity"}, RETRY_AFTER_CEILING),
        ({"Retry-After": "1e400"}, RETRY_AFTER_CEILING),
        ({"Retry-After": "1e12"}, RETRY_AFTER_CEILING),
        ({"retry-after-ms": "1e15"}, RETRY_AFTER_CEILING),
        ({"retry-after-ms": "inf"}, RETRY_AFTER_CEILING),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "-inf"}, None),
        ({"retry-after-ms": "nan", "Retry-After": "3"}, 3.0),
        ({"Retry-After": "86400"}, 86400.0),
    ],
)
def test_parse_retry_after_never_returns_a_non_finite_wait(
    headers: dict[str, str], expected: float | None
) -> None:
    value = parse_retry_after(headers)
    assert value == expected
    assert value is None or math.isfinite(value)


async def _raise_429(kit: Client, emu: Emulator, headers: dict[str, str]) -> errors.RateLimitError:
    emu.faults.add("imuze", "GET /songs/*", status=429, headers=headers)
    started = time.monotonic()
    with pytest.raises(errors.RateLimitError) as info:
        await kit.imuze.songs.get(1)
    assert time.monotonic() - started < BOUND  # raised at once, as documented
    return info.value


@pytest.mark.parametrize(("headers", "expected"), LONG_HINTS)
async def test_one_long_retry_after_freezes_no_later_call_poll_or_download(
    headers: dict[str, str], expected: float, tmp_path: Path
) -> None:
    async with (
        Emulator(render_seconds=0.05) as emu,
        emu.client(retry=_retry(), poll=FAST_POLL) as kit,
    ):
        job = await kit.imuze.songs.create(
            title="Secret Song", arrangement_id=1, tags=[], desired_length=2
        )
        song_id = int(job.id)

        error = await _raise_429(kit, emu, headers)
        assert error.retry_after == expected  # the caller still learns what was asked
        async with asyncio.timeout(BOUND):  # the old gate slept for the whole value
            assert (await kit.imuze.songs.get(song_id)).id == song_id

        await _raise_429(kit, emu, headers)
        async with asyncio.timeout(BOUND):
            song = await job.wait(timeout=BOUND)
        assert song.id == song_id

        await _raise_429(kit, emu, headers)
        async with asyncio.timeout(BOUND):
            path = await kit.download(song, tmp_path)
        assert path.stat().st_size > 0


async def test_a_paused_gate_raises_rather_than_outwait_the_callers_deadline() -> None:
    async with (
        Emulator(render_seconds=0.05) as emu,
        emu.client(retry=RetryPolicy(backoff_base=0.01, max_retry_after=30), poll=FAST_POLL) as kit,
    ):
        job = await kit.imuze.songs.create(
            title="Secret Song", arrangement_id=1, tags=[], desired_length=2
        )
        error = await _raise_429(kit, emu, {"Retry-After": "86400"})
        assert error.retry_after == 86400.0
        gate = kit.transport.gate("imuze")
        # Capped at max_retry_after, not a day.
        assert 29 < gate.until - time.monotonic() <= 30

        # A caller with a 0.3 s deadline learns at once how long the provider is paused.
        started = time.monotonic()
        with (
            deadline_scope(asyncio.get_running_loop().time() + 0.3),
            pytest.raises(errors.RateLimitError) as info,
        ):
            await kit.imuze.songs.get(int(job.id))
        assert time.monotonic() - started < 0.2
        assert info.value.retry_after is not None and 29 < info.value.retry_after <= 30
        assert info.value.status == 429 and info.value.provider == "imuze"

        # A poll under a job deadline neither outwaits it nor leaves a poll stuck behind it.
        started = time.monotonic()
        with pytest.raises(errors.JobTimeout):
            await job.wait(timeout=0.3)
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.05)
        assert not kit._pollers["imuze"]._polls  # no poll task left waiting on the gate

        # A request whose own policy allows less than the pause raises at once too.
        started = time.monotonic()
        with pytest.raises(errors.RateLimitError) as info:
            await kit.transport.send(
                Request(
                    "GET",
                    f"{emu.urls['imuze']}/songs/{job.id}",
                    provider="imuze",
                    retry=RetryPolicy(max_retry_after=1),
                )
            )
        assert time.monotonic() - started < 0.2
        assert info.value.retry_after is not None and info.value.retry_after > 29


# -- point 8: secrets out of reach -------------------------------------------------------------

IMUZE_TOKEN = "imuze-raw-token-5f2a9c1e"
MUREKA_TOKEN = "mureka-bearer-token-77d1e0"
SIGNATURE = "oauth-signature-4b8e2f"
PASSWORD = "hunter2-password-91"
ECHOED_TOKEN = "echoed-token-3c7d55"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception reachable from ``exc`` through ``__cause__`` and ``__context__``."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]


def _chain_texts(exc: BaseException) -> dict[str, str]:
    texts = {}
    for n, e in enumerate(_chain(exc)):
        name = f"{type(e).__name__} #{n}"
        texts[f"repr {name}"] = repr(e)
        texts[f"str {name}"] = str(e)
        texts[f"args {name}"] = repr(e.args)
        texts[f"vars {name}"] = repr(getattr(e, "__dict__", {}))
    return texts


async def _redirect_loop() -> Server:
    srv = Server()

    def loop(request: web.Request) -> web.Response:
        # Back to itself, query and all: aiohttp keeps following (same origin, so the
        # Authorization header goes along) until it gives up with TooManyRedirects.
        raise web.HTTPFound(str(request.rel_url))

    srv.route("GET", "/loop", loop)
    await srv.start()
    return srv


@pytest.mark.parametrize(
    ("provider", "auth"),
    [
        ("imuze", TokenLogin(provider="imuze", token=IMUZE_TOKEN)),
        ("mureka", TokenLogin(provider="mureka", token=MUREKA_TOKEN, scheme="Bearer")),
    ],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["send", "stream"])
async def test_a_redirect_loop_leaves_no_credential_in_the_raised_chain(
    provider: str, auth: TokenLogin, streamed: bool
) -> None:
    srv = await _redirect_loop()
    transport = Transport(retry=RetryPolicy.none())
    transport.set_auth(provider, auth)
    request = Request(
        "GET", f"{srv.url}/loop", provider=provider, params=(("oauth_signature", SIGNATURE),)
    )

    async def fetch() -> None:
        if streamed:
            async with transport.stream(request):
                pass
        else:
            await transport.send(request)

    try:
        with pytest.raises(errors.TransportError) as info:
            await fetch()
    finally:
        await transport.close()
        await srv.stop()
    chain = list(_chain(info.value))
    assert "TooManyRedirects" in {type(e).__name__ for e in chain}  # the cause is kept...
    assert "TooManyRedirects" in str(info.value)
    # ...without the request's headers (the token) or the signed query value.
    secrets = [IMUZE_TOKEN, MUREKA_TOKEN, SIGNATURE]
    assert find_leaks(secrets, _chain_texts(info.value)) == []


class _Answers:
    """A Sender whose login answer is scripted (no network)."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    async def send(self, request: Request, *, ok_statuses: Collection[int] = ()) -> Response:
        response = Response(self.status, {}, self.body, request=request)
        if self.status >= 400:
            raise Transport().error_for(response)
        return response


@pytest.mark.parametrize("status", [400, 401, 429, 500])
async def test_a_failed_login_answer_is_withheld_from_the_error(status: int) -> None:
    echo = (
        f'{{"error": "wrong password {PASSWORD} for demo", "token": "{ECHOED_TOKEN}"}}'
    ).encode()
    hook = TokenLogin(
        provider="imuze",
        login=lambda: Request(
            "POST", "http://127.0.0.1:9/login", provider="imuze", json={"p": PASSWORD}, auth=False
        ),
        parse=lambda r: LoginResult(token="never"),
    )
    with pytest.raises(errors.APIError) as info:
        await hook.apply(
            Request("GET", "http://127.0.0.1:9/x", provider="imuze"), _Answers(status, echo)
        )
    error = info.value
    assert type(error) is errors.error_for_status(status)
    assert error.status == status and error.provider == "imuze"
    assert error.body is None  # withheld: None, not the provider's text
    assert "withheld" in str(error)
    assert find_leaks([PASSWORD, ECHOED_TOKEN], _chain_texts(error)) == []


@pytest.mark.parametrize("provider", ["imuze", "joplin"])
async def test_an_unreadable_login_answer_is_withheld_from_the_parse_error(provider: str) -> None:
    # The real parsers: their decode error (chained as the cause) holds the whole answer.
    parse = {"imuze": imuze_api.parse_login, "joplin": joplin_api.parse_login}[provider]
    hook = TokenLogin(
        provider=provider,
        login=lambda: Request("PUT", "http://127.0.0.1:9/token", provider=provider, auth=False),
        parse=parse,
    )
    cut_short = f'{{"token": "{ECHOED_TOKEN}", "password": "{PASSWORD}"'.encode()
    with pytest.raises(errors.ParseError) as info:
        await hook.apply(
            Request("GET", "http://127.0.0.1:9/x", provider=provider), _Answers(200, cut_short)
        )
    assert info.value.body is None
    assert find_leaks([ECHOED_TOKEN, PASSWORD], _chain_texts(info.value)) == []


def test_an_unreadable_musescore_token_answer_keeps_no_secret_in_its_chain() -> None:
    answer = Response(
        200,
        {},
        f'{{"oauth_token": "t", "oauth_token_secret": "{ECHOED_TOKEN}"'.encode(),
        request=Request("POST", "http://127.0.0.1:9/oauth/access_token", auth=False),
    )
    with pytest.raises(errors.ParseError) as info:
        musescore_api.parse_token(answer)
    assert find_leaks([ECHOED_TOKEN], _chain_texts(info.value)) == []


async def test_a_wrong_password_against_the_emulator_is_withheld() -> None:
    async with Emulator() as emu:
        wrong = ImuzeConfig(
            email="demo@imuzekit.test", password=PASSWORD, base_url=emu.urls["imuze"]
        )
        async with Client(imuze=wrong, retry=RetryPolicy.none()) as kit:
            with pytest.raises(errors.AuthenticationError) as info:
                await kit.imuze.songs.get(1)
    assert info.value.status == 401 and info.value.body is None
    assert find_leaks([PASSWORD], _chain_texts(info.value)) == []


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://music.example.test/api", "music.example.test"),
        ("HTTP://Music.Example.Test:8080/api", "music.example.test"),
        ("http://10.0.0.7/api", "10.0.0.7"),
        ("http://[2001:db8::1]:80/api", "2001:db8::1"),
        ("http://localhost.example.test/api", "localhost.example.test"),
        ("https://music.example.test/api", None),
        ("http://127.0.0.1:9/api", None),
        ("http://127.3.4.5/api", None),
        ("http://[::1]:8080/api", None),
        ("http://localhost:8080/api", None),
        ("http://LOCALHOST/api", None),
        ("http://api.localhost/x", None),
        ("http:///nohost", None),
    ],
)
def test_plain_http_host_flags_only_remote_cleartext(url: str, host: str | None) -> None:
    assert plain_http_host(url) == host


async def test_credentials_over_plain_http_warn_once_per_provider(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = Transport()
    sent: list[Request] = []

    async def answer(request: Request, attempt: int, header: Any, timeouts: Any) -> Response:
        sent.append(request)  # nothing leaves the machine: the send is answered here
        return Response(200, {}, b"{}", request=request)

    monkeypatch.setattr(transport.adapter, "send", answer)
    for provider, token in [("imuze", IMUZE_TOKEN), ("mureka", MUREKA_TOKEN), ("joplin", "x")]:
        transport.set_auth(provider, TokenLogin(provider=provider, token=token))
    remote, local = "http://music.example.test", "http://127.0.0.1:9"
    with caplog.at_level(logging.WARNING, logger="imuzekit.http"):
        for _ in range(3):
            await transport.send(Request("GET", f"{remote}/a", provider="imuze"))
            await transport.send(Request("GET", f"{remote}/b", provider="mureka"))
            await transport.send(Request("GET", f"{local}/c", provider="joplin"))
            # Without credentials nothing is at stake.
            await transport.send(Request("GET", f"{remote}/d", provider="musescore", auth=False))
    await transport.close()
    assert len(sent) == 12
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(":")[0] for r in warnings] == ["imuze", "mureka"]
    assert all("music.example.test" in r.getMessage() for r in warnings)
    assert find_leaks([IMUZE_TOKEN, MUREKA_TOKEN], {"log": caplog.text}) == []


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, "oauth_problem=signature_invalid&echo={secret}&oauth_token_secret={secret}"),
        (400, '{{"error": "bad consumer secret {secret}"}}'),
        (200, "<html>oops {secret}</html>"),  # an unreadable answer: a ParseError
    ],
    ids=["401-form", "400-json", "200-unreadable"],
)
async def test_a_refused_musescore_token_step_is_withheld(status: int, body: str) -> None:
    """MuseScore's OAuth token steps are logins too: their refusals may echo the secrets."""
    secret = "consumer-secret-" + "7" * 12
    server = Server()
    server.route(
        "POST",
        "/oauth/request_token",
        lambda _: web.Response(status=status, text=body.format(secret=secret)),
    )
    await server.start()
    config = MuseScoreConfig(
        consumer_key="key",
        consumer_secret=secret,
        base_url=server.url + "/services/rest",
        oauth_url=server.url + "/oauth",
    )
    try:
        async with Client(musescore=config, retry=RetryPolicy.none()) as kit:
            with pytest.raises((errors.APIError, errors.ParseError)) as info:
                await kit.musescore.oauth.request_token()
    finally:
        await server.stop()
    assert server.hits == {"POST /oauth/request_token": 1}
    assert info.value.body is None
    assert find_leaks([secret], _chain_texts(info.value)) == []
