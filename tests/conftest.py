"""Shared test helpers: building Responses from sample bodies, locating the seed documents."""

from __future__ import annotations

import json
import logging
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from imuzekit._http import Request, Response

SAMPLES = pathlib.Path(__file__).parent / "samples"
SEEDS_ENV = "IMUZEKIT_SEEDS_DIR"
"""The environment variable that points the seed checks at another folder of seed documents."""
SEEDS = pathlib.Path(
    os.environ.get(SEEDS_ENV) or pathlib.Path(__file__).resolve().parents[2] / "shared" / "seeds"
)


def on_ci() -> bool:
    """Whether the tests run on CI (`CI=true`, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_seed(name: str) -> pathlib.Path:
    """The path of the seed document `name`, for the tests that compare `tests/samples` with it.

    A checkout without the seeds beside it skips the test; with `CI=true` it fails instead,
    naming where the seeds were looked for: on CI a silent skip would hide that the samples
    were never compared with the contract.
    """
    path = SEEDS / name
    if not path.is_file():
        where = f"seed document {name} not found in {SEEDS} (set {SEEDS_ENV} to the seeds folder)"
        if on_ci():
            pytest.fail(f"{where}; with CI=true a missing seed fails the test", pytrace=False)
        pytest.skip(where)
    return path


def response_for(
    body: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    provider: str = "imuze",
    method: str = "GET",
    url: str = "https://api.example.test/x",
) -> Response:
    """A Response carrying ``body`` (JSON-encoded unless bytes/str)."""
    if isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = json.dumps(body).encode()
    return Response(
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
        body=raw,
        request=Request(method, url, provider=provider),
        url=url,
    )


def sample(provider: str, name: str) -> str:
    """The raw text of ``tests/samples/<provider>/<name>`` (``.json`` unless a suffix is given)."""
    filename = name if "." in name else f"{name}.json"
    return (SAMPLES / provider / filename).read_text()


@pytest.fixture
def samples_dir() -> pathlib.Path:
    return SAMPLES


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "WS_PROXY", "WSS_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to 127.0.0.1 only: a proxy set on the machine must not carry that traffic.

    `Client(trust_env=True)` is the default; the tests of proxies set these variables
    themselves.
    """
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(autouse=True)
def _imuzekit_logging_restored() -> Iterator[None]:
    """A test that turns imuzekit's logging on (`--debug`, `IMUZEKIT_LOG`) leaves the
    `imuzekit` logger as it found it: its level and handlers never leak into later tests."""
    logger = logging.getLogger("imuzekit")
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers
