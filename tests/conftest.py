"""Shared test helpers: building Responses from sample bodies, locating the seed documents."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from imuzekit._http import Request, Response

SAMPLES = pathlib.Path(__file__).parent / "samples"
SEEDS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "seeds"


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
