"""A batch run from Python code, in its own process (the tests kill it with SIGKILL).

``python tests/batch/_child.py CONFIG`` where CONFIG is a JSON object: the emulator's iMuze
``base_url``, ``email`` and ``password``, the ``journal`` and ``out`` paths, how many ``lines``
to add and the ``concurrency``. Every event the run yields is printed as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import attrs

from imuzekit import Client, ImuzeConfig, PollPolicy, Timeouts, batch


def manifest(count: int) -> list[dict[str, Any]]:
    """``count`` iMuze lines, keyed ``song-001``..., titled in letters and spaces."""
    return [
        {
            "provider": "imuze",
            "key": f"song-{n:03d}",
            "title": "Morning Song",
            "arrangement_id": 1 + n % 3,
            "desired_length": 30,
        }
        for n in range(1, count + 1)
    ]


def _event(event: batch.BatchEvent) -> dict[str, Any]:
    return {"type": type(event).__name__, **attrs.asdict(event, value_serializer=_plain)}


def _plain(_: Any, __: Any, value: Any) -> Any:
    return str(value) if hasattr(value, "__fspath__") else value


async def main(config: dict[str, Any]) -> None:
    kit = Client(
        imuze=ImuzeConfig(
            email=config["email"], password=config["password"], base_url=config["base_url"]
        ),
        # Short limits: a create caught by the kill is concluded absent a few seconds later.
        timeouts=Timeouts(connect=0.5, read=1.0, total=1.5),
        poll=PollPolicy(initial=0.05, max_interval=0.2, timeout=60),
        trust_env=False,
    )
    async with kit, batch.open(config["journal"], client=kit) as run:
        await run.add(manifest(config["lines"]))
        async for event in run.run(config["out"], concurrency=config["concurrency"]):
            print(json.dumps(_event(event)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
