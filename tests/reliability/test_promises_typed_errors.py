"""Issue 14, point 7: typed errors only.

Deeply nested JSON in an answer, an error body or a job token is a `ParseError`, the status's
`APIError` or a `ValidationError`, never `RecursionError`; bad settings and arguments are a
`ValidationError` naming the parameter when given; a Client used from a second event loop says
so at once (`LoopMismatchError`) instead of retrying a misleading `TransportError`.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from imuzekit import Client, PollPolicy, RetryPolicy, Timeouts, errors
from imuzekit._convert import MAX_JSON_DEPTH, JSONTooDeepError, loads_json
from imuzekit._http import Request, Response
from imuzekit._transport import Transport
from imuzekit.emulator import Emulator
from imuzekit.jobs import parse_token
from imuzekit.providers.imuze import _api as imuze_api
from imuzekit.providers.joplin import _api as joplin_api
from imuzekit.providers.mureka import _api as mureka_api
from imuzekit.providers.musescore import _api as musescore_api

FAST_POLL = PollPolicy(initial=0.02, max_interval=0.05, timeout=5)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.02)

# Far past what json.loads survives, and just past what it decodes but walks choke on.
ABYSS = b"[" * 100_000
DECODABLE = b"[" * 900 + b"]" * 900
NESTED_ERRORS = ('{"error":' * 900 + '"deep"' + "}" * 900).encode()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _response(body: bytes, status: int = 200, provider: str = "imuze") -> Response:
    return Response(
        status,
        {"Content-Type": "application/json"},
        body,
        Request("GET", "http://127.0.0.1/x", provider=provider),
    )


# -- the decoder ---------------------------------------------------------------------------


def test_loads_json_bounds_the_nesting_exactly() -> None:
    assert json.dumps(loads_json(_nested(MAX_JSON_DEPTH))).count("[") == MAX_JSON_DEPTH
    alternating = '[{"a":' * (MAX_JSON_DEPTH // 2) + "1" + "}]" * (MAX_JSON_DEPTH // 2)
    assert loads_json(alternating) is not None
    for too_deep in (
        _nested(MAX_JSON_DEPTH + 1),
        '[{"a":' * (MAX_JSON_DEPTH // 2 + 1) + "1" + "}]" * (MAX_JSON_DEPTH // 2 + 1),
        DECODABLE,
        ABYSS,
        ABYSS.decode(),
    ):
        with pytest.raises(JSONTooDeepError, match="nested more than 128 levels"):
            loads_json(too_deep)


def test_brackets_inside_strings_neither_hide_nor_fake_depth() -> None:
    # Unbalanced brackets in strings defeat the cheap bracket count: the value is walked.
    shallow = json.dumps(["[" * 500, {"k": "{" * 300}, [[["]]]"]]]])
    assert loads_json(shallow)[0] == "[" * 500
    deep = '["]]]]",' + "[" * 200 + "]" * 200 + "]"
    with pytest.raises(JSONTooDeepError):
        loads_json(deep)
    with pytest.raises(ValueError, match="nested"):  # a ValueError for callers mapping those
        loads_json(deep.encode())


# -- answers, error bodies and tokens: one decoder each, one typed error ---------------------

PARSERS: list[tuple[str, Callable[[Response], Any]]] = [
    ("imuze", imuze_api.parse_arrangement),
    ("imuze", imuze_api.parse_songs),
    ("imuze", imuze_api.parse_login),
    ("joplin", joplin_api.parse_genres),
    ("joplin", joplin_api.parse_music),
    ("mureka", mureka_api.parse_feed_page),
    ("mureka", mureka_api.parse_job_record),
    ("musescore", musescore_api.parse_search),
    ("musescore", musescore_api.parse_oembed),
    ("musescore", musescore_api.parse_token),
]


@pytest.mark.parametrize("body", [ABYSS, DECODABLE], ids=["abyss", "decodable"])
@pytest.mark.parametrize(
    ("provider", "parse"), PARSERS, ids=[f"{p}.{f.__name__}" for p, f in PARSERS]
)
def test_every_parser_reads_a_nested_answer_as_a_parse_error(
    provider: str, parse: Callable[[Response], Any], body: bytes
) -> None:
    # Inside an object, so that every parser takes its JSON path (OAuth's looks for "{").
    with pytest.raises(errors.ParseError, match=r"nested more than 128 levels|not valid JSON"):
        parse(_response(b'{"a":' + body + b"}", provider=provider))


@pytest.mark.parametrize("body", [ABYSS, DECODABLE], ids=["abyss", "decodable"])
async def test_a_nested_answer_from_the_server_is_a_parse_error(emu: Emulator, body: bytes) -> None:
    emu.faults.add("imuze", "GET /arrangements/*", status=200, body=body, times=None)
    async with emu.client(poll=FAST_POLL, retry=FAST_RETRY) as kit:
        with pytest.raises(errors.ParseError, match="nested more than 128 levels"):
            await kit.imuze.arrangements.get(1)


@pytest.mark.parametrize("body", [ABYSS, DECODABLE, NESTED_ERRORS], ids=["abyss", "dec", "errors"])
async def test_a_nested_error_body_is_still_the_error_of_its_status(
    emu: Emulator, body: bytes
) -> None:
    emu.faults.add("imuze", "GET /arrangements/*", status=400, body=body, times=None)
    async with emu.client(poll=FAST_POLL, retry=FAST_RETRY) as kit:
        with pytest.raises(errors.BadRequestError) as caught:
            await kit.imuze.arrangements.get(1)
    assert caught.value.status == 400
    assert isinstance(caught.value.body, str) and len(caught.value.body) <= 2000
    assert len(str(caught.value)) < 600


def test_error_for_a_nested_body_directly() -> None:
    error = Transport().error_for(_response(ABYSS, status=503))
    assert isinstance(error, errors.ServerError) and error.status == 503


async def test_a_nested_job_status_ends_the_wait_with_a_parse_error(emu: Emulator) -> None:
    async with emu.client(poll=FAST_POLL, retry=FAST_RETRY) as kit:
        job = await kit.imuze.songs.create(
            title="Typed Song", arrangement_id=1, tags=[], desired_length=5
        )
        emu.faults.add("imuze", "GET /songs/*", status=200, body=ABYSS, times=None)
        with pytest.raises(errors.ParseError, match="nested"):
            await job.wait(timeout=5)


@pytest.mark.parametrize(
    "token",
    [
        ABYSS.decode(),
        DECODABLE.decode(),
        '{"imuzekit_job":1,"provider":"imuze","kind":"song","id":' + DECODABLE.decode() + "}",
        '{"imuzekit_job":1,"provider":"imuze","kind":"song","id":[[["1"]]]}',
        '{"imuzekit_job":1,"provider":"imuze","kind":"song","id":"1","data":'
        + '{"a":' * 200
        + "1"
        + "}" * 200
        + "}",
        '{"imuzekit_job":1,"provider":"imuze","kind":"song","id":"not-a-number"}',
        '{"imuzekit_job":1,"provider":"imuze","kind":"song","id":"1","data":{"status":[1]}}',
    ],
    ids=["abyss", "decodable", "nested-id", "list-id", "nested-data", "bad-id", "bad-data"],
)
async def test_a_bad_job_token_is_a_validation_error(emu: Emulator, token: str) -> None:
    async with emu.client(poll=FAST_POLL) as kit:
        with pytest.raises(errors.ValidationError) as caught:
            kit.resume(token)
    assert caught.value.field == "token"


def test_parse_token_refuses_what_is_not_text() -> None:
    with pytest.raises(errors.ValidationError, match="token: must be a string"):
        parse_token(12)  # type: ignore[arg-type]


class _EmulatorThread:
    """An emulator on its own loop in a thread, outliving the event loops of the callers.

    (The CLI's tests, in ``tests/cli/test_typed_errors_cli.py``, use their own copy.)
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> Emulator:
            emulator = Emulator(render_seconds=0.01)
            await emulator.start()
            return emulator

        self.emu = self.run(start())

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def call(self, func: Callable[[], Any]) -> Any:
        async def wrapper() -> Any:
            return func()

        return self.run(wrapper())

    def close(self) -> None:
        self.run(self.emu.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def emu_thread() -> Iterator[_EmulatorThread]:
    server = _EmulatorThread()
    try:
        yield server
    finally:
        server.close()


# -- one Client, one event loop ----------------------------------------------------------------


def test_a_client_used_from_a_second_event_loop_says_so_at_once(
    emu_thread: _EmulatorThread,
) -> None:
    kit = emu_thread.call(lambda: emu_thread.emu.client(poll=FAST_POLL))
    gets = emu_thread.call(lambda: emu_thread.emu.count("imuze", "GET", "/arrangements/*"))

    async def get() -> int:
        return (await kit.imuze.arrangements.get(1)).id

    async def get_and_close() -> int:
        async with kit:
            return await get()

    async def stream() -> None:
        async with kit.transport.stream(Request("GET", emu_thread.emu.urls["imuze"], auth=False)):
            pass

    first = asyncio.new_event_loop()  # kept open, so that the Client can be closed on it
    try:
        assert first.run_until_complete(get()) == 1
        for call in (get, stream, get_and_close):
            started = time.monotonic()
            with pytest.raises(errors.LoopMismatchError, match=r"one\s+Client per event loop"):
                asyncio.run(call())
            assert time.monotonic() - started < 0.5, call  # no retries of a "TransportError"
        assert isinstance(errors.LoopMismatchError("x"), errors.ImuzekitError)
        count = emu_thread.call(lambda: emu_thread.emu.count("imuze", "GET", "/arrangements/*"))
        assert count == gets + 1  # nothing left the second loop
        first.run_until_complete(kit.close())  # the pool closes on the loop it belongs to
        assert kit.transport._session is None
    finally:
        first.close()


# -- settings and arguments ------------------------------------------------------------------

NAN, INF = math.nan, math.inf

BAD_SETTINGS: list[tuple[str, Callable[[], Any]]] = [
    ("Timeouts.read", lambda: Timeouts(read=-1)),
    ("Timeouts.read", lambda: Timeouts(read=0)),
    ("Timeouts.connect", lambda: Timeouts(connect=NAN)),
    ("Timeouts.total", lambda: Timeouts(total=INF)),
    ("Timeouts.total", lambda: Timeouts(total="5")),
    ("Timeouts.connect", lambda: Timeouts(connect=True)),
    ("RetryPolicy.max_attempts", lambda: RetryPolicy(max_attempts=0)),
    ("RetryPolicy.max_attempts", lambda: RetryPolicy(max_attempts=2.5)),
    ("RetryPolicy.max_attempts", lambda: RetryPolicy(max_attempts=True)),
    ("RetryPolicy.backoff_base", lambda: RetryPolicy(backoff_base=NAN)),
    ("RetryPolicy.backoff_max", lambda: RetryPolicy(backoff_max=-0.1)),
    ("RetryPolicy.max_retry_after", lambda: RetryPolicy(max_retry_after="60")),
    ("RetryPolicy.retry_statuses", lambda: RetryPolicy(retry_statuses="500")),
    ("RetryPolicy.retry_statuses", lambda: RetryPolicy(retry_statuses={500, 1000})),
    ("PollPolicy.initial", lambda: PollPolicy(initial=-1)),
    ("PollPolicy.max_interval", lambda: PollPolicy(max_interval=0)),
    ("PollPolicy.multiplier", lambda: PollPolicy(multiplier=0.5)),
    ("PollPolicy.multiplier", lambda: PollPolicy(multiplier=NAN)),
    ("PollPolicy.timeout", lambda: PollPolicy(timeout=INF)),
    ("PollPolicy.timeout", lambda: PollPolicy(timeout="900")),
    ("PollPolicy.jitter", lambda: PollPolicy(jitter="yes")),
    ("PollPolicy.stall_after", lambda: PollPolicy(stall_after=-5)),
    ("download_chunk_size", lambda: Client(download_chunk_size=0)),
    ("download_chunk_size", lambda: Client(download_chunk_size="64k")),
    ("max_connections", lambda: Client(max_connections=True)),
    ("max_connections", lambda: Client(max_connections=1.5)),
    ("max_body_bytes", lambda: Client(max_body_bytes=-1)),
    ("max_status_rps", lambda: Client(max_status_rps=NAN)),
    ("max_status_rps", lambda: Client(max_status_rps=0)),
    ("max_status_rps", lambda: Client(max_status_rps="50")),
    ("verify_ssl", lambda: Client(verify_ssl="no")),
    ("timeouts", lambda: Client(timeouts=30)),
    ("retry", lambda: Client(retry=3)),
    ("poll", lambda: Client(poll={"initial": 1})),
]


@pytest.mark.parametrize(("field", "make"), BAD_SETTINGS, ids=[f for f, _ in BAD_SETTINGS])
def test_a_bad_setting_is_a_validation_error_naming_it(field: str, make: Callable[[], Any]) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        make()
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_good_settings_are_kept() -> None:
    assert Timeouts(connect=None, read=0.01, total=5).read == 0.01
    assert RetryPolicy(max_attempts=1, backoff_base=0, max_retry_after=INF).max_retry_after == INF
    assert PollPolicy(initial=0, stall_after=None, multiplier=1).multiplier == 1
    kit = Client(download_chunk_size=1, max_connections=1, max_status_rps=0.5)
    assert kit.max_status_rps == 0.5


async def _wait(kit: Client, job: Any, timeout: Any) -> None:
    await job.wait(timeout=timeout)


async def _watch(kit: Client, job: Any, timeout: Any) -> None:
    async for _ in job.watch(timeout=timeout):
        pass


async def _as_completed(kit: Client, job: Any, timeout: Any) -> None:
    async for _ in kit.as_completed([job], timeout=timeout):
        pass


async def _download_many(kit: Client, job: Any, concurrency: Any) -> None:
    async for _ in kit.download_many([], "/nonexistent", concurrency=concurrency):
        pass


@pytest.mark.parametrize(
    ("call", "value", "field"),
    [
        (_wait, "5", "timeout"),
        (_wait, -1, "timeout"),
        (_wait, NAN, "timeout"),
        (_watch, 0, "timeout"),
        (_as_completed, "5", "timeout"),
        (_as_completed, INF, "timeout"),
        (_download_many, "8", "concurrency"),
        (_download_many, True, "concurrency"),
        (_download_many, 0, "concurrency"),
    ],
)
async def test_a_bad_call_argument_is_a_validation_error_naming_it(
    emu: Emulator, call: Any, value: Any, field: str
) -> None:
    async with emu.client(poll=FAST_POLL) as kit:
        job = await kit.imuze.songs.create(
            title="Typed Song", arrangement_id=1, tags=[], desired_length=5
        )
        started = time.monotonic()
        with pytest.raises(errors.ValidationError) as caught:
            await call(kit, job, value)
        assert caught.value.field == field
        assert time.monotonic() - started < 0.5  # refused before any wait
