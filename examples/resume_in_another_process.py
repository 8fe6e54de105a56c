"""Submit a song here, wait for it in another process: ``job.token()`` and a typed resume.

    python examples/resume_in_another_process.py [--out DIR]
    python examples/resume_in_another_process.py --resume TOKEN [--out DIR]   # the second half

The token is a JSON string (no secrets in it) that names the provider, the job and what is
needed to poll and download it; any process with a configured Client can resume it, e.g. a
worker that picks tokens from a queue or a database after a restart. Here the first process
submits a song, prints the token and starts a second Python process that resumes it (the
credentials go to the child through ``IMUZEKIT_IMUZE_*`` variables and ``Client.from_env``).
``kit.imuze.songs.resume(token)`` returns a ``Job[Song]`` (``kit.resume(token)`` takes a token
of any provider, untyped). Runs on the embedded emulator unless ``IMUZEKIT_IMUZE_*`` variables
are set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import sys

from _connect import FAST_POLL, add_out_argument, output_dir, uses_real_services

from imuzekit import Client
from imuzekit.emulator import Emulator


async def resume(token: str, out: pathlib.Path) -> None:
    """The second process: rebuild the job from its token, wait for it, download the song."""
    async with Client.from_env(poll=FAST_POLL) as kit:
        job = kit.imuze.songs.resume(token)  # a Job[Song]: wait() returns a Song
        print(f"[pid {os.getpid()}] resumed {job.provider} job {job.id}")
        song = await job.wait(timeout=300)
        path = await kit.download(song, out)
        print(f"[pid {os.getpid()}] downloaded {song.title!r} to {path}")


async def submit(kit: Client, env: dict[str, str], out: pathlib.Path) -> int:
    """The first process: create a song, print its token, hand it to a child process."""
    arrangements = [a async for a in kit.imuze.arrangements.list()]
    arrangement = arrangements[0]
    job = await kit.imuze.songs.create(
        title="Handed Over", arrangement_id=arrangement.id, tags=["resume"], desired_length=20
    )
    token = job.token()
    print(f"[pid {os.getpid()}] submitted song {job.id}; token: {token}")
    # An asyncio subprocess, so that this event loop keeps serving the emulator meanwhile.
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--resume", token, "--out", str(out), env=env
    )
    return await child.wait()


async def main(out: pathlib.Path) -> int:
    """Submit against the real service or an emulator started here; return the child's status."""
    if uses_real_services("imuze"):
        async with Client.from_env() as kit:
            return await submit(kit, dict(os.environ), out)
    async with Emulator(render_seconds=1.0) as emu, emu.client(poll=FAST_POLL) as kit:
        creds = emu.credentials["imuze"]
        env = {
            **os.environ,
            "IMUZEKIT_IMUZE_EMAIL": creds.email or "",
            "IMUZEKIT_IMUZE_PASSWORD": creds.password or "",
            "IMUZEKIT_IMUZE_BASE_URL": emu.urls["imuze"],
        }
        print(f"emulator on {emu.base_url}")
        return await submit(kit, env, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resume", metavar="TOKEN", help="resume this job token and exit")
    add_out_argument(parser)
    args = parser.parse_args()
    if args.resume:
        if args.out is None:
            parser.error("--resume needs --out (where the song goes)")
        asyncio.run(resume(args.resume, args.out))
        raise SystemExit(0)
    with output_dir(args.out) as folder:
        status = asyncio.run(main(folder))
    print("resumed in another process: ok" if status == 0 else f"child failed ({status})")
    raise SystemExit(status)
