"""Observability: one INFO line per retry, 429 pause and re-login, a DEBUG line per request with
structured fields, loggers per layer, and the `IMUZEKIT_LOG` switch; never a credential."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from imuzekit import Client, errors
from imuzekit._http import Request, Timeouts
from imuzekit._retry import RetryPolicy
from imuzekit._transport import Transport
from imuzekit.auth import LoginResult, TokenLogin
from tests.reliability._secrets import find_leaks
from tests.transport.conftest import Server

FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.02)
TOKEN = "tok-" + "9" * 24


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport(retry=FAST, timeouts=Timeouts(connect=2, read=2, total=5), trust_env=False)
    yield t
    await t.close()


@pytest.fixture
def imuzekit_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("imuzekit")
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers


def _infos(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.INFO]


async def test_one_info_line_per_status_retry(
    server: Server, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("GET", "/x", (503, {}, {}), (502, {}, {}), (200, {}, {"ok": 1}))
    await server.start()
    with caplog.at_level(logging.INFO, logger="imuzekit"):
        await transport.send(Request("GET", server.url + "/x?token=" + TOKEN, provider="p"))
    infos = _infos(caplog)
    assert [(r.name, r.attempt) for r in infos] == [("imuzekit.http", 1), ("imuzekit.http", 2)]  # type: ignore[attr-defined]
    assert "(503) on attempt 1" in infos[0].getMessage()
    assert "(502) on attempt 2" in infos[1].getMessage()
    assert find_leaks([TOKEN], {"log": caplog.text}) == []


async def test_one_info_line_per_connection_retry(
    transport: Transport, caplog: pytest.LogCaptureFixture, unused_tcp_port: int
) -> None:
    with caplog.at_level(logging.INFO, logger="imuzekit"), pytest.raises(errors.TransportError):
        await transport.send(Request("GET", f"http://127.0.0.1:{unused_tcp_port}/", provider="p"))
    infos = _infos(caplog)
    assert len(infos) == FAST.max_attempts - 1
    assert all("TransportError" in r.getMessage() for r in infos)


async def test_an_info_line_per_429_pause(
    server: Server, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("GET", "/x", (429, {"Retry-After": "0.05"}, {}), (200, {}, {}))
    await server.start()
    with caplog.at_level(logging.INFO, logger="imuzekit"):
        await transport.send(Request("GET", server.url + "/x", provider="p"))
    (info,) = _infos(caplog)
    assert "paused for 0.050s after 429" in info.getMessage()
    assert info.provider == "p"  # type: ignore[attr-defined]


async def test_an_info_line_per_relogin(
    server: Server, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = iter(["old-" + TOKEN, "new-" + TOKEN])

    def login(_: web.Request) -> web.Response:
        return web.json_response({"token": next(tokens)})

    def guarded(request: web.Request) -> web.Response:
        ok = request.headers.get("Authorization") == "Bearer new-" + TOKEN
        return web.json_response({}, status=200 if ok else 401)

    server.route("POST", "/login", login)
    server.route("GET", "/x", guarded)
    await server.start()
    transport.set_auth(
        "p",
        TokenLogin(
            provider="p",
            login=lambda: Request("POST", server.url + "/login", provider="p", auth=False),
            parse=lambda r: LoginResult(token=json.loads(r.body)["token"]),
            header="Authorization",
            scheme="Bearer",
        ),
    )
    with caplog.at_level(logging.INFO, logger="imuzekit"):
        await transport.send(Request("GET", server.url + "/x", provider="p"))
    (info,) = _infos(caplog)
    assert "401 on GET, credentials renewed" in info.getMessage()
    assert find_leaks([TOKEN], {"log": caplog.text}) == []


async def test_a_debug_line_per_request_with_structured_fields(
    server: Server, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("GET", "/x", (200, {}, {}))
    await server.start()
    with caplog.at_level(logging.DEBUG, logger="imuzekit"):
        await transport.send(Request("GET", server.url + "/x?token=" + TOKEN, provider="p"))
    (record,) = [r for r in caplog.records if r.levelno == logging.DEBUG]
    fields = {
        name: getattr(record, name)
        for name in ("provider", "method", "url", "status", "attempt", "elapsed")
    }
    assert fields["provider"] == "p" and fields["method"] == "GET"
    assert fields["status"] == 200 and fields["attempt"] == 1
    assert fields["elapsed"] >= 0 and TOKEN not in fields["url"]
    assert fields["url"].startswith(server.url + "/x?token=")


def test_imuzekit_log_switch(imuzekit_logger: logging.Logger) -> None:
    Client.from_env({"IMUZEKIT_LOG": "debug"})
    assert imuzekit_logger.level == logging.DEBUG
    handlers = [h for h in imuzekit_logger.handlers if getattr(h, "_imuzekit", False)]
    assert len(handlers) == 1
    Client.from_env({"IMUZEKIT_LOG": "INFO"})
    assert imuzekit_logger.level == logging.INFO
    assert [h for h in imuzekit_logger.handlers if getattr(h, "_imuzekit", False)] == handlers
    with pytest.raises(errors.ConfigurationError, match="IMUZEKIT_LOG"):
        Client.from_env({"IMUZEKIT_LOG": "loud"})


def test_each_layer_has_its_logger() -> None:
    import imuzekit._transport
    import imuzekit.jobs._poller

    assert imuzekit._transport._log.name == "imuzekit.http"
    assert imuzekit.jobs._poller._log.name == "imuzekit.jobs"
