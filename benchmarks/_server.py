"""The package's emulator in a child process, so that the client under test has a core to itself.

Usage from a benchmark script::

    with EmulatorProcess(render_seconds=(5.0, 30.0), seed=1) as server:
        server.url, server.token                 # iMuze v4 base URL and a valid API token
        ids = server.seed_songs(64, desired_length=328)   # songs created directly (no HTTP)
        ...                                      # run the client in another process
        server.status_requests()                 # GET /songs + GET /songs/{id} answered so far
        server.ready_at()                        # {song id: server time it turned ready}
        server.urls["joplin"], server.credentials["mureka"]   # the other providers
        server.count("GET", "/musics/*/mp3", provider="joplin")
        server.call("joplin_ready_at"), server.call("mureka_done_at")
        server.call("mureka_accounts", n=20)     # Mureka accounts (10 generations each)
        server.call("mureka_drop_completed", n=40)   # callback faults: drop 40 completions
        server.call("mureka_forge")              # forged and replayed callbacks, see below

The emulator's clock is ``time.monotonic()`` based and CLOCK_MONOTONIC is one clock for every
process on Linux, so ``ready_at`` values compare directly with a client's ``time.monotonic()``.

Commands travel over a ``multiprocessing`` pipe and run on the emulator's event loop, so they
see a consistent state. The child exits when told to, when the pipe closes (the parent died),
or after ``max_lifetime`` seconds, whichever comes first.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import resource
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["EmulatorProcess"]

RenderSeconds = float | tuple[float, float]

# Only loopback, always: benchmarks never contact anything else.
_HOST = "127.0.0.1"


def _commands(emu: Any) -> dict[str, Callable[..., Any]]:
    """The operations the parent may ask for, run on the emulator's loop."""

    def count(
        method: str | None = None, path_glob: str | None = None, provider: str = "imuze"
    ) -> int:
        return int(emu.count(provider, method, path_glob))

    def status_requests() -> int:
        # The list (GET /songs) and the show (GET /songs/{id}) routes: every status read.
        return count("GET", "/songs") + count("GET", "/songs/{id}")

    def ready_at() -> dict[int, float]:
        return {song_id: record.ready_at for song_id, record in emu.imuze.songs.items()}

    def seed_songs(n: int, desired_length: int) -> list[int]:
        state = emu.imuze
        ids = [
            state.create_song(
                title=f"bench {i}",
                arrangement_id=1 + i % len(state.arrangements),
                tags=("bench",),
                desired_length=desired_length,
            ).id
            for i in range(n)
        ]
        if ids:
            state.audio_bytes(ids[0])  # generate (and cache) the MP3 before anyone times it
        return ids

    def audio_size(song_id: int) -> int:
        return len(emu.imuze.audio_bytes(song_id))

    def cpu_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    forgeries: list[Any] = []
    forged_jobs: set[str] = set()
    replayed: set[str] = set()
    forging: list[asyncio.Task[None]] = []

    def mureka_accounts(n: int) -> list[str]:
        state = emu.mureka
        extra = 9_000_000_000_000_000
        while len(state.accounts) < n:
            state.add_account(str(extra + len(state.accounts)))
        return list(state.accounts)

    def mureka_done_at() -> dict[str, float]:
        return {jobid: job.done_at for jobid, job in emu.mureka.jobs.items()}

    def mureka_drop_completed(n: int) -> None:
        emu.mureka.callback_faults.add("completed", drop=True, times=n)

    def forge_round() -> None:
        # For every job created with a replyUrl: while it runs, a callback without replyRef
        # and one whose MAC was altered; once its completion was delivered, a replay of it.
        state = emu.mureka
        delivered = {
            c.jobid: c
            for c in state.callbacks.released
            if c.event == "completed" and not c.forged and c.status is not None
        }
        for jobid, job in state.jobs.items():
            ref = job.request.get("replyRef")
            if not isinstance(ref, str):
                continue
            if jobid not in forged_jobs and state.job_status(job) != "completed":
                forged_jobs.add(jobid)
                forgeries.append(state.send_forged_callback(jobid=jobid))
                bad = ref[:-2] + ("AA" if not ref.endswith("AA") else "BB")
                forgeries.append(state.send_forged_callback(jobid=jobid, reply_ref=bad))
            if jobid in delivered and jobid not in replayed:
                replayed.add(jobid)
                body = state.callback_body(delivered[jobid])
                forgeries.append(state.send_forged_callback(jobid=jobid, body=body))

    async def forge_loop() -> None:
        while True:
            forge_round()
            await asyncio.sleep(0.5)

    def mureka_forge() -> None:
        forging.append(asyncio.get_running_loop().create_task(forge_loop()))

    def mureka_forged() -> dict[str, int]:
        # Answers to the forged and replayed callbacks: {"401": n, "200": n, "pending": n...}.
        tally: dict[str, int] = {}
        for c in forgeries:
            key = str(c.status) if c.status is not None else (c.error or "pending")
            tally[key] = tally.get(key, 0) + 1
        return tally

    def mureka_callbacks() -> dict[str, int]:
        outbox = emu.mureka.callbacks
        real = [c for c in outbox.released if not c.forged]
        return {
            "released": len(real),
            "accepted": sum(c.status == 202 for c in real),
            "dropped": len(outbox.dropped),
            "pending": outbox.pending,
        }

    def joplin_ready_at() -> dict[str, float]:
        return {music_id: record.ready_at for music_id, record in emu.joplin.musics.items()}

    return {
        "mureka_accounts": mureka_accounts,
        "mureka_done_at": mureka_done_at,
        "mureka_drop_completed": mureka_drop_completed,
        "mureka_forge": mureka_forge,
        "mureka_forged": mureka_forged,
        "mureka_callbacks": mureka_callbacks,
        "joplin_ready_at": joplin_ready_at,
        "count": count,
        "status_requests": status_requests,
        "ready_at": ready_at,
        "seed_songs": seed_songs,
        "audio_size": audio_size,
        "clear_requests": emu.clear_requests,
        "songs_created": lambda: emu.imuze.songs_created,
        "mureka_creations": lambda: emu.mureka.creations,
        "cpu_seconds": cpu_seconds,
    }


async def _serve(
    conn: multiprocessing.connection.Connection,
    render_seconds: RenderSeconds,
    seed: int,
    log_limit: int,
    max_lifetime: float,
) -> None:
    from imuzekit.emulator import Emulator

    loop = asyncio.get_running_loop()
    emu = Emulator(host=_HOST, render_seconds=render_seconds, seed=seed, log_limit=log_limit)
    async with emu:
        creds = emu.credentials["imuze"]
        conn.send(
            {
                "url": emu.urls["imuze"],
                "token": creds.token,
                "email": creds.email,
                "password": creds.password,
                "urls": dict(emu.urls),
                "credentials": {
                    name: {"token": c.token, "email": c.email, "password": c.password}
                    for name, c in emu.credentials.items()
                },
            }
        )
        commands = _commands(emu)
        deadline = loop.time() + max_lifetime
        while loop.time() < deadline:
            # conn.recv blocks: run it in a thread, with a poll timeout so that the lifetime
            # bound is checked at least once a second.
            ready = await loop.run_in_executor(None, conn.poll, 1.0)
            if not ready:
                continue
            try:
                name, kwargs = conn.recv()
            except EOFError:
                return  # the parent is gone
            if name == "stop":
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", commands[name](**kwargs)))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _child_main(
    conn: multiprocessing.connection.Connection,
    render_seconds: RenderSeconds,
    seed: int,
    log_limit: int,
    max_lifetime: float,
    pin: bool,
) -> None:
    available = sorted(os.sched_getaffinity(0))
    if pin and len(available) >= 2:
        # The first core for the server; clients measured against it run on the second one
        # (see _harness.cpu_pair).
        os.sched_setaffinity(0, {available[0]})
    try:
        asyncio.run(_serve(conn, render_seconds, seed, log_limit, max_lifetime))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        conn.close()


class EmulatorProcess:
    """``imuzekit.emulator.Emulator`` served on 127.0.0.1 from a child process.

    ``log_limit`` bounds the emulator's request log (its per-route counters stay exact);
    benchmarks keep it small so the server's memory does not grow with the request count.
    ``pin`` runs it on the first CPU of ``_harness.cpu_pair`` (clients then use the second).
    """

    def __init__(
        self,
        *,
        render_seconds: RenderSeconds = 0.0,
        seed: int = 0,
        log_limit: int = 1000,
        max_lifetime: float = 1800.0,
        pin: bool = False,
    ) -> None:
        self._args = (render_seconds, seed, log_limit, max_lifetime, pin)
        self._ctx = multiprocessing.get_context("spawn")
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self.url = ""
        self.token = ""
        self.email = ""
        self.password = ""
        self.urls: dict[str, str] = {}
        """Every provider's base URL."""
        self.credentials: dict[str, dict[str, str | None]] = {}
        """Every provider's demo token, email and password."""

    def __enter__(self) -> EmulatorProcess:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_child_main, args=(child, *self._args), name="imuzekit-emulator", daemon=True
        )
        process.start()
        child.close()
        self._conn, self._process = parent, process
        if not parent.poll(30.0):
            self.close()
            raise RuntimeError("the emulator process did not start within 30 s")
        info = parent.recv()
        self.url, self.token = info["url"], info["token"]
        self.email, self.password = info["email"], info["password"]
        self.urls, self.credentials = info["urls"], info["credentials"]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pid(self) -> int:
        """The emulator process's id (for reading its CPU time from /proc)."""
        if self._process is None or self._process.pid is None:
            raise RuntimeError("the emulator process is not running")
        return self._process.pid

    def call(self, name: str, timeout: float = 120.0, **kwargs: Any) -> Any:
        """Run command ``name`` in the emulator process and return its result."""
        if self._conn is None:
            raise RuntimeError("the emulator process is not running")
        self._conn.send((name, kwargs))
        if not self._conn.poll(timeout):
            raise TimeoutError(f"the emulator did not answer {name!r} within {timeout} s")
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"emulator command {name!r} failed: {value}")
        return value

    def status_requests(self) -> int:
        """Status reads answered so far: ``GET /songs`` plus ``GET /songs/{id}``."""
        return int(self.call("status_requests"))

    def count(
        self, method: str | None = None, path_glob: str | None = None, *, provider: str = "imuze"
    ) -> int:
        """Exact number of requests answered (iMuze unless ``provider`` says), optionally by
        method and route glob."""
        return int(self.call("count", method=method, path_glob=path_glob, provider=provider))

    def ready_at(self) -> dict[int, float]:
        """Server (CLOCK_MONOTONIC) time at which each song turned ready, by song id."""
        return dict(self.call("ready_at"))

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the emulator process has used so far.

        The difference over a measurement shows whether the server, not the client, was the
        bottleneck (close to the wall time: it had a core to itself and used all of it).
        """
        return float(self.call("cpu_seconds"))

    def seed_songs(self, n: int, desired_length: int) -> list[int]:
        """Create ``n`` songs directly in the emulator's state; return their ids."""
        return list(self.call("seed_songs", n=n, desired_length=desired_length))

    def close(self) -> None:
        """Stop the emulator process (politely, then by force after a few seconds)."""
        conn, self._conn = self._conn, None
        process, self._process = self._process, None
        if conn is not None:
            try:
                conn.send(("stop", {}))
                conn.poll(5.0)
            except (BrokenPipeError, EOFError, OSError):
                pass
            conn.close()
        if process is not None:
            process.join(5.0)
            if process.is_alive():
                process.terminate()  # this very child, by its handle: nothing else
                process.join(5.0)
            if process.exitcode not in (0, None, -15):
                print(f"warning: emulator process exited with {process.exitcode}", file=sys.stderr)
