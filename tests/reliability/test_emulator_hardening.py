"""The emulator refuses forged credentials and oversized bodies, and never crashes.

Its routes are fuzzed with hypothesis through raw aiohttp (random methods, paths under each
provider's prefix, headers, query strings and bodies): every answer is a well-formed HTTP
response with a status below 500, and the server stays up.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imuzekit._http import Request
from imuzekit.emulator import Emulator
from imuzekit.providers.musescore._oauth import OAuth1Credentials, sign


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _get(url: str, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(kwargs.pop("method", "GET"), url, **kwargs) as response,
    ):
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def test_forged_and_wrong_tokens_are_refused() -> None:
    async with Emulator(render_seconds=0.05) as emu:
        good = emu.credentials["joplin"].token
        assert good is not None
        header, payload, _ = good.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        forged = [
            f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
            f"{header}.{_b64({**claims, 'sub': 'someone-else'})}.{good.split('.')[2]}",
            emu.joplin.issue_token("demo@imuzekit.test", ttl=-10),
            "not.a.jwt",
            "",
        ]
        url = f"{emu.urls['joplin']}/musics/x/schema"
        assert (await _get(url, headers={"Authorization": good}))[0] == 404
        for token in forged:
            status, body = await _get(url, headers={"Authorization": token})
            assert status == 401 and isinstance(body, dict), token
        status, _ = await _get(f"{emu.urls['imuze']}/songs/1", headers={"token": "wrong-token"})
        assert status == 401
        status, _ = await _get(
            f"{emu.urls['mureka']}/music/", headers={"Authorization": "Bearer wrong"}
        )
        assert status == 401


async def test_bad_and_replayed_oauth_signatures_are_refused() -> None:
    async with Emulator(render_seconds=0.05) as emu:
        extra = emu.credentials["musescore"].extra
        credentials = OAuth1Credentials(
            consumer_key=extra["consumer_key"],
            consumer_secret=extra["consumer_secret"],
            token=extra["token"],
            token_secret=extra["token_secret"],
        )
        signed = sign(Request("GET", f"{emu.urls['musescore']}/me.json"), credentials)
        headers = {"Authorization": signed.header("Authorization") or ""}
        assert (await _get(signed.url, headers=headers))[0] == 200
        status, body = await _get(signed.url, headers=headers)  # the same nonce again
        assert status == 401 and "nonce" in body["error"]
        wrong = OAuth1Credentials(
            consumer_key=extra["consumer_key"],
            consumer_secret="not-the-secret",
            token=extra["token"],
            token_secret=extra["token_secret"],
        )
        bad = sign(Request("GET", f"{emu.urls['musescore']}/me.json"), wrong)
        status, body = await _get(bad.url, headers={"Authorization": bad.header("Authorization")})
        assert status == 401 and "signature" in body["error"]


@pytest.mark.parametrize(
    ("provider", "method", "path", "auth"),
    [
        ("imuze", "POST", "/tokens", None),
        ("imuze", "POST", "/songs", "imuze"),
        ("joplin", "PUT", "/accounts/token", None),
        ("joplin", "POST", "/musics", "joplin"),
        ("mureka", "POST", "/music/create", "mureka"),
    ],
)
async def test_oversized_bodies_are_413_json(
    provider: str, method: str, path: str, auth: str | None
) -> None:
    async with Emulator(render_seconds=0.05) as emu:
        headers = {"Content-Type": "application/json"}
        if auth is not None:
            token = emu.credentials[auth].token or ""
            headers["Authorization"] = f"Bearer {token}" if auth == "mureka" else token
        body = b'{"title": "' + b"x" * (64 * 1024 * 1024) + b'"}'
        status, answer = await _get(
            emu.urls[provider] + path, method=method, data=io.BytesIO(body), headers=headers
        )
        assert status == 413 and isinstance(answer, dict), (status, str(answer)[:200])
        # The server is still up.
        assert (await _get(emu.urls["joplin"] + "/genres/"))[0] == 200


class RunningEmulator:
    """An emulator served from a background thread's event loop, for synchronous fuzzing."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.emu = Emulator(render_seconds=0.05)
        self.session: aiohttp.ClientSession | None = None

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def start(self) -> None:
        self.thread.start()
        self.run(self.emu.start())

        async def open_session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))

        self.session = self.run(open_session())

    def stop(self) -> None:
        assert self.session is not None
        self.run(self.session.close())
        self.run(self.emu.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def running() -> Iterator[RunningEmulator]:
    server = RunningEmulator()
    server.start()
    yield server
    server.stop()


SEGMENTS = st.sampled_from(
    [
        "songs",
        "arrangements",
        "tokens",
        "files",
        "musics",
        "schema",
        "mp3",
        "genres",
        "accounts",
        "token",
        "music",
        "create",
        "jobs",
        "cdn",
        "score.json",
        "score.xml",
        "time.jsonp",
        "me",
        "user",
        "resolve.json",
        "1",
        "0",
        "-1",
        "999999999999999999999",
        "x.mp3",
        "..",
        "%00",
        "oauth",
        "request_token",
        "access_token",
        "site",
        "static",
        "oembed",
        "endpoint",
    ]
) | st.text(alphabet="abcXYZ019-_.~%", max_size=6)
PREFIXES = {
    "imuze": "/imuze/api/4",
    "joplin": "/joplin",
    "mureka": "/mureka/v1/mureka",
    "musescore": "/musescore/services/rest",
    "musescore_other": "/musescore",
}
HEADER_NAMES = st.sampled_from(
    ["Authorization", "token", "Range", "If-None-Match", "Content-Type", "X-Anything", "Accept"]
)
HEADER_VALUES = st.sampled_from(
    [
        "Bearer x",
        'OAuth oauth_consumer_key="imuzekit-demo"',
        'OAuth a="',
        "bytes=5-2",
        "bytes=0-0",
        "bytes=-",
        "bytes=99999999-",
        "application/json",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "*/*",
        "x",
    ]
) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=10,
)
BODIES = (
    st.none()
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
    | st.sampled_from([b"{", b"email=a&password=b", b"--x\r\nContent-Disposition: form-data"])
)


@st.composite
def fuzz_requests(draw: st.DrawFn) -> dict[str, Any]:
    prefix = PREFIXES[draw(st.sampled_from(sorted(PREFIXES)))]
    path = prefix + "/" + "/".join(draw(st.lists(SEGMENTS, min_size=0, max_size=4)))
    query = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "page",
                    "per_page",
                    "account",
                    "last_id",
                    "text",
                    "part",
                    "sort",
                    "callback",
                    "url",
                    "secret",
                    "oauth_token",
                    "oauth_consumer_key",
                    "format",
                    "maxwidth",
                    "expand",
                ]
            ),
            st.text(max_size=8),
            max_size=3,
        )
    )
    return {
        "method": draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"])),
        "path": path,
        "params": query,
        "headers": draw(st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3)),
        "data": draw(BODIES),
    }


def test_fuzzed_requests_never_crash_the_emulator(running: RunningEmulator) -> None:
    assert running.session is not None
    session = running.session
    base = running.emu.base_url

    async def send(request: dict[str, Any]) -> tuple[int, bytes]:
        async with session.request(
            request["method"],
            base + request["path"],
            params=request["params"],
            headers=request["headers"],
            data=request["data"],
            allow_redirects=False,
        ) as response:
            return response.status, await response.read()

    @settings(settings.get_profile("reliability"), max_examples=1000)
    @given(request=fuzz_requests())
    def fuzz(request: dict[str, Any]) -> None:
        status, _ = running.run(send(request))
        assert 100 <= status < 500, (status, request)

    started = time.monotonic()
    fuzz()
    assert time.monotonic() - started < 120
    assert running.run(_get(running.emu.urls["joplin"] + "/genres/"))[0] == 200
