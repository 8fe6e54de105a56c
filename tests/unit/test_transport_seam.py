"""The transport seam: the pipeline runs over any `Adapter`; only the aiohttp adapter loads aiohttp.

A `Pipeline` over a `WireAdapter` around `MockTransport` sends, streams, retries and logs in
with no aiohttp module loaded at all (checked in a fresh interpreter).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imuzekit import errors
from imuzekit._http import Request, Response
from imuzekit._pipeline import Pipeline
from imuzekit._retry import RetryPolicy
from imuzekit._transports.wire import WireAdapter
from imuzekit.testing import MockTransport, respond

NO_AIOHTTP = (
    "imuzekit._pipeline",
    "imuzekit._transports",
    "imuzekit._transports.wire",
    "imuzekit._transports.mock",
    "imuzekit.testing",
    "imuzekit.auth",
    "imuzekit._answers",
    "imuzekit.providers.musescore._oauth",
)


@pytest.mark.parametrize("module", NO_AIOHTTP)
def test_the_seams_pure_side_loads_without_aiohttp(module: str) -> None:
    code = (
        f"import sys, json\nimport {module}\n"
        "print(json.dumps([m for m in sys.modules if m.split('.')[0] == 'aiohttp']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


async def test_a_pipeline_over_a_wire_adapter_sends_streams_and_retries() -> None:
    answers = iter([503, 200, 200])

    def handler(request: Request) -> Response:
        return respond(request, next(answers), body=b"0123456789")

    mock = MockTransport(handler)
    pipeline = Pipeline(
        WireAdapter(mock, max_body_bytes=1024), retry=RetryPolicy(backoff_base=0.001)
    )
    assert (await pipeline.send(Request("GET", "http://127.0.0.1:9/a"))).body == b"0123456789"
    async with pipeline.stream(Request("GET", "http://127.0.0.1:9/b")) as stream:
        assert stream.status == 200
        assert stream.content_length == 10
        assert [chunk async for chunk in stream.chunks(4)] == [b"0123", b"4567", b"89"]
    assert [r.url for r in mock.requests] == ["http://127.0.0.1:9/a"] * 2 + ["http://127.0.0.1:9/b"]
    await pipeline.close()
    assert pipeline.closed
    with pytest.raises(errors.ClientClosedError):
        await pipeline.send(Request("GET", "http://127.0.0.1:9/a"))


async def test_a_wire_answer_over_the_body_limit_is_refused() -> None:
    pipeline = Pipeline(
        WireAdapter(MockTransport(lambda r: respond(r, body=b"x" * 2048)), max_body_bytes=1024)
    )
    with pytest.raises(errors.ParseError, match="1024-byte limit"):
        await pipeline.send(Request("GET", "http://127.0.0.1:9/big"))
