"""Services bring their own HTTP setup: a proxy, the proxy environment, their own session with
trace configs, TLS settings, default headers and a versioned User-Agent.

The proxy is a real forward proxy on 127.0.0.1 (absolute-form requests, forwarded to the
emulator), so "the proxy sees every request" is observed, not assumed.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from imuzekit import Client, ImuzeConfig, PollPolicy, RetryPolicy, errors
from imuzekit._http import Request
from imuzekit._transport import default_user_agent
from imuzekit.emulator import Emulator
from tests.transport.conftest import Server

FAST_POLL = PollPolicy(initial=0.02, max_interval=0.05, timeout=10)
_HOP_BY_HOP = {"host", "proxy-connection", "connection", "keep-alive", "transfer-encoding"}


class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1 that records the absolute URL of every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        target = request.raw_path  # absolute-form: "http://127.0.0.1:port/path?query"
        self.seen.append((request.method, target))
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._client.request(
            request.method,
            target,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
            auto_decompress=False,
        ) as answer:
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            kept.pop("Content-Length", None)
            return web.Response(status=answer.status, body=body, headers=kept)

    async def __aenter__(self) -> ForwardProxy:
        self._client = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None and self._client is not None
        await self._runner.cleanup()
        await self._client.close()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(render_seconds=0.05) as emulator:
        yield emulator


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy() as forward:
        yield forward


async def _create_wait_download(kit: Client, folder: Path) -> Path:
    job = await kit.imuze.songs.create(
        title="Through", arrangement_id=1, tags=["piano"], desired_length=2
    )
    song = await job.wait(timeout=10)
    return await kit.download(song, folder)


def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_proxy_sees_every_request(
    emu: Emulator, proxy: ForwardProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    async with emu.client(proxy=proxy.url, poll=FAST_POLL) as kit:
        path = await _create_wait_download(kit, tmp_path)
    assert path.stat().st_size > 0
    sent = [(request.method, request.path) for request in emu.requests]
    assert len(proxy.seen) == len(sent) >= 4  # login, create, at least one poll, the mp3
    assert all(url.startswith(emu.base_url) for _, url in proxy.seen)
    assert [method for method, _ in proxy.seen] == [method for method, _ in sent]


async def test_http_proxy_from_the_environment_is_honoured(
    emu: Emulator, proxy: ForwardProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with emu.client(poll=FAST_POLL, trust_env=True) as kit:
        await _create_wait_download(kit, tmp_path)
    assert len(proxy.seen) == len(emu.requests) >= 4
    # trust_env=False: the environment is not read.
    proxy.seen.clear()
    async with emu.client(poll=FAST_POLL, trust_env=False) as kit:
        await kit.imuze.arrangements.get(1)
    assert proxy.seen == []
    async with emu.client(poll=FAST_POLL) as kit:  # the emulator's client ignores it
        await kit.imuze.arrangements.get(1)
    assert proxy.seen == []


async def test_no_proxy_is_honoured(
    emu: Emulator, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost")
    creds = emu.imuze.credentials()
    # The same emulator, reached as "localhost": NO_PROXY names it, so no proxy.
    direct = ImuzeConfig(
        email=creds.email,
        password=creds.password,
        base_url=emu.urls["imuze"].replace("127.0.0.1", "localhost"),
    )
    async with emu.client(imuze=direct, trust_env=True) as kit:
        arrangements = await kit.imuze.arrangements.get(1)
    assert arrangements and proxy.seen == []
    async with emu.client(trust_env=True) as kit:  # 127.0.0.1 is not in NO_PROXY: proxied
        await kit.imuze.arrangements.get(1)
    assert len(proxy.seen) == 2  # the login and the list


async def test_a_callers_session_sees_every_call_and_stays_open(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    started: list[str] = []

    async def on_start(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
        started.append(f"{params.method} {params.url.path}")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        async with emu.client(session=session, poll=FAST_POLL) as kit:
            await _create_wait_download(kit, tmp_path)
        assert not session.closed  # the Client never closes a session it was given
        async with session.get(emu.urls["imuze"] + "/arrangements") as still_usable:
            assert still_usable.status == 401  # no token: but the session works
    # Every call went through the caller's session, in order (the last one was our own GET).
    sent = [f"{request.method} {request.path}" for request in emu.requests]
    base = "/" + emu.urls["imuze"].split("/", 3)[3]
    assert [call.replace(base, "", 1) for call in started] == sent
    assert len(started) == len(sent) >= 5


async def test_a_callers_session_gets_our_user_agent_unless_it_has_one(server: Server) -> None:
    server.script("GET", "/x", (200, {}, {}))
    await server.start()
    async with (
        aiohttp.ClientSession() as session,
        Client(session=session, default_headers={"X-Team": "audio"}) as kit,
    ):
        await kit.transport.send(Request("GET", server.url + "/x", provider="p"))
    async with (
        aiohttp.ClientSession(headers={"User-Agent": "theirs/2"}) as session,
        Client(session=session) as kit,
    ):
        await kit.transport.send(Request("GET", server.url + "/x", provider="p"))
    first, second = server.seen
    assert first.headers["User-Agent"] == default_user_agent()
    assert first.headers["X-Team"] == "audio"
    assert second.headers["User-Agent"] == "theirs/2"


async def test_trace_configs_see_every_call(emu: Emulator) -> None:
    started: list[str] = []

    async def on_start(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
        started.append(params.method)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with emu.client(trace_configs=[trace]) as kit:
        await kit.imuze.arrangements.get(1)
    assert started == ["POST", "GET"]  # the login, then the list


async def test_user_agent_and_default_headers(server: Server) -> None:
    server.script("GET", "/x", (200, {}, {}))
    await server.start()
    async with Client(default_headers={"X-Team": "audio"}) as kit:
        await kit.transport.send(Request("GET", server.url + "/x", provider="p"))
    async with Client(default_headers={"User-Agent": "mine/1"}) as kit:
        await kit.transport.send(Request("GET", server.url + "/x", provider="p"))
    first, second = server.seen
    assert first.headers["X-Team"] == "audio"
    assert first.headers["User-Agent"] == default_user_agent()
    assert second.headers["User-Agent"] == "mine/1"
    name, python, http = default_user_agent().split(" ")
    assert name.startswith("imuzekit/") and python.startswith("python/3.")
    assert http == f"aiohttp/{aiohttp.__version__}"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"session": "not a session"}, "session"),
        ({"proxy": "socks5://127.0.0.1:1"}, "proxy"),
        ({"proxy": 8080}, "proxy"),
        ({"trust_env": "yes"}, "trust_env"),
        ({"ssl": "off"}, "ssl"),
        ({"ssl": ssl.create_default_context(), "verify_ssl": False}, "ssl"),
        ({"trace_configs": ["x"]}, "trace_configs"),
        ({"default_headers": {"X-N": 1}}, "default_headers"),
    ],
)
def test_bad_http_setup_is_refused_naming_it(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        Client(**kwargs)
    assert info.value.field == field


async def test_ssl_context_and_verify_ssl_alias() -> None:
    context = ssl.create_default_context()
    async with Client(ssl=context, retry=RetryPolicy.none()) as kit:
        assert kit.transport.ssl is context and kit.transport.verify_ssl
    async with Client(verify_ssl=False) as kit:
        assert kit.transport.ssl is False and not kit.transport.verify_ssl
