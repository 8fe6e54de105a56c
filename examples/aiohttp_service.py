"""An aiohttp web service that generates a song on request, sharing one imuzekit Client.

    python examples/aiohttp_service.py [--port 8080] [--out DIR]    # serve until Ctrl-C
    python examples/aiohttp_service.py --selftest                    # start, call once, exit

``POST /songs`` with ``{"title": "...", "length": 30}`` creates an iMuze song, waits for it and
answers with where the mp3 was saved. The Client is opened once at startup (``cleanup_ctx``)
and closed at shutdown: every request shares its connection pool, its login and its rate-limit
state, which is what you want in a service (a Client per request would log in every time).
Runs on the embedded emulator unless ``IMUZEKIT_IMUZE_*`` variables are set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import pathlib
from collections.abc import AsyncIterator

import aiohttp
from _connect import add_out_argument, connect, output_dir
from aiohttp import web

from imuzekit import Client, errors

CLIENT = web.AppKey("client", Client)
OUT = web.AppKey("out", pathlib.Path)


async def create_song(request: web.Request) -> web.Response:
    """``POST /songs``: create, wait, download; answer with the song and the file."""
    kit = request.app[CLIENT]
    payload = await request.json()
    try:
        arrangements = [a async for a in kit.imuze.arrangements.list()]
        arrangement = arrangements[0]
        job = await kit.imuze.songs.create(
            title=str(payload.get("title", "Untitled")),
            arrangement_id=int(payload.get("arrangement_id", arrangement.id)),
            tags=["service"],
            desired_length=int(payload.get("length", 30)),
        )
        song = await job.wait(timeout=300)
        path = await kit.download(song, request.app[OUT])
    except errors.ValidationError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except errors.ImuzekitError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    return web.json_response(
        {"id": song.id, "title": song.title, "path": str(path), "size": path.stat().st_size}
    )


def make_app(out: pathlib.Path) -> web.Application:
    """The application: one Client for its whole life (opened at startup, closed at cleanup)."""
    app = web.Application()
    app[OUT] = out

    async def client_context(app: web.Application) -> AsyncIterator[None]:
        async with connect("imuze") as kit:
            app[CLIENT] = kit
            yield

    app.cleanup_ctx.append(client_context)
    app.router.add_post("/songs", create_song)
    return app


async def selftest(out: pathlib.Path) -> None:
    """Serve on a free port of 127.0.0.1, ask for one song, print the answer, stop."""
    runner = web.AppRunner(make_app(out))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}/songs"
        print(f"service on {url}")
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"title": "On Request", "length": 20}) as response,
        ):
            body = await response.json()
            print(f"POST /songs -> {response.status} {json.dumps(body)}")
            response.raise_for_status()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selftest", action="store_true", help="start, call once, exit")
    parser.add_argument("--port", type=int, default=8080, help="port to serve on (127.0.0.1)")
    add_out_argument(parser)
    args = parser.parse_args()
    with output_dir(args.out) as folder:
        if args.selftest:
            asyncio.run(selftest(folder))
        else:
            with contextlib.suppress(KeyboardInterrupt):
                web.run_app(make_app(folder), host="127.0.0.1", port=args.port)
