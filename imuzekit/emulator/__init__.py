"""A stateful emulator of the providers imuzekit talks to, for tests, demos and your own tests.

It is a real aiohttp server on 127.0.0.1 (a random port by default) that keeps state like the
services do: tokens, arrangements, songs that render over time, MP3 files that really decode.
Every provider is mounted under its own prefix on the one server:

    from imuzekit.emulator import Clock, Emulator

    async with Emulator(render_seconds=0.2) as emu:
        emu.urls["imuze"]                  # "http://127.0.0.1:<port>/imuze/api/4"
        emu.credentials["imuze"].token     # a valid API token (also .email, .password)
        emu.urls["joplin"]                 # "http://127.0.0.1:<port>/joplin" (the music engine)
        emu.credentials["joplin"].token    # a valid HS256 JWT (also .email, .password)
        emu.urls["mureka"]                 # "http://127.0.0.1:<port>/mureka/v1/mureka" (useapi.net)
        emu.credentials["mureka"].token    # the useapi.net token (.extra["accounts"]: "id1,id2")
        emu.urls["musescore"]              # ".../musescore/services/rest" (MuseScore.com REST)
        emu.urls["musescore_oauth"]        # ".../musescore/oauth" (request_token, access_token)
        emu.credentials["musescore"].extra # consumer_key, consumer_secret, token, token_secret
        async with emu.client() as kit:    # an imuzekit Client wired to the emulator
            ...

Time is `emu.clock`: pass ``Emulator(clock=Clock(frozen=True))`` and move it with
``emu.clock.advance(seconds)`` to make songs ready (and joplin tokens expire) without sleeping,
or force a state with ``emu.imuze.set_status(song_id, "failed")``,
``emu.joplin.set_ready(music_id, True)`` or ``emu.mureka.fail_next()``. MuseScore uploads
stay ``processing`` for ``render_seconds`` too.

Failures are data, registered on `emu.faults` (see `Faults.add`):

    emu.faults.add("imuze", "GET /songs/*", status=429, retry_after=1.5, times=2)
    emu.faults.add("imuze", "GET /files/*", truncate=1000)
    emu.faults.add("imuze", "POST /songs", reset=True)

Every request is recorded in `emu.requests` (`LoggedRequest`, the last `log_limit` of them)
and counted exactly per route: ``emu.count("imuze", "GET", "/songs/*")``.

From a shell, ``python -m imuzekit.emulator --port 8700`` serves the same thing until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Self

from aiohttp import web

from . import imuze, joplin, mureka, musescore
from ._clock import Clock
from ._faults import Fault, Faults
from ._kit.provider import Credentials, ExtraUrls, Provider
from ._kit.root import LoggedRequest, RequestLog, build_root_app
from ._kit.routes import Mount
from ._kit.timing import RenderSeconds
from .imuze import ImuzeState
from .joplin import JoplinState
from .mureka import MurekaState
from .musescore import MuseScoreState

if TYPE_CHECKING:
    # The SDK core may not be importable while the emulator is built and type-checked on its own.
    from imuzekit.client import Client

__all__ = [
    "Clock",
    "Credentials",
    "Emulator",
    "Fault",
    "Faults",
    "ImuzeState",
    "JoplinState",
    "LoggedRequest",
    "MurekaState",
    "MuseScoreState",
    "serve",
]

# Handlers are microseconds long: half a second is plenty to let in-flight requests finish on
# stop, and short enough that a test leaving a delayed request behind does not stall teardown.
_SHUTDOWN_TIMEOUT = 0.5


class Emulator:
    """All emulated providers on one local aiohttp server, with shared clock, faults and log.

    Use it as an async context manager, or call `start()` / `stop()` (both idempotent; the state
    survives a restart, the port may change). Nothing listens before `start()`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        render_seconds: RenderSeconds = 2.0,
        clock: Clock | None = None,
        seed: int = 0,
        log_limit: int = 100_000,
    ) -> None:
        """Configure the emulator; `render_seconds` may be a (low, high) range drawn per song."""
        if log_limit < 0:
            raise ValueError(f"log_limit must be >= 0, got {log_limit}")
        self.host = host
        """Address the server binds."""
        self._requested_port = port
        self.clock: Clock = clock if clock is not None else Clock()
        """The clock every provider reads (`Clock.advance` moves it)."""
        self.imuze: ImuzeState = ImuzeState(
            clock=self.clock, render_seconds=render_seconds, seed=seed
        )
        """State of the emulated iMuze API v4."""
        self.joplin: JoplinState = JoplinState(
            clock=self.clock, render_seconds=render_seconds, seed=seed
        )
        """State of the emulated iMuze music engine ("joplin")."""
        self.mureka: MurekaState = MurekaState(
            clock=self.clock, render_seconds=render_seconds, seed=seed
        )
        """State of the emulated Mureka through useapi.net."""
        self.musescore: MuseScoreState = MuseScoreState(
            clock=self.clock, render_seconds=render_seconds, seed=seed
        )
        """State of the emulated MuseScore.com (REST API, OAuth, static files, oEmbed)."""
        self.faults: Faults = Faults(rng=random.Random(seed), providers=frozenset(self.providers))
        """The fault registry (`Faults.add`)."""
        self._log = RequestLog(limit=log_limit)
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._lock = asyncio.Lock()

    @property
    def providers(self) -> Mapping[str, Provider]:
        """The emulated providers by name."""
        return {
            self.imuze.name: self.imuze,
            self.joplin.name: self.joplin,
            self.mureka.name: self.mureka,
            self.musescore.name: self.musescore,
        }

    def _mounts(self) -> list[Mount]:
        """Every provider's applications, built afresh (each start builds a new root app)."""
        return [
            *imuze.mounts(self.imuze),
            *joplin.mounts(self.joplin),
            *mureka.mounts(self.mureka),
            *musescore.mounts(self.musescore),
        ]

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port and start serving; does nothing if already started."""
        async with self._lock:
            if self._runner is not None:
                return
            app = build_root_app(
                self._mounts(), clock=self.clock, faults=self.faults, log=self._log
            )
            runner = web.AppRunner(
                app, handle_signals=False, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
            )
            await runner.setup()
            try:
                site = web.TCPSite(runner, self.host, self._requested_port)
                await site.start()
            except BaseException:
                await runner.cleanup()
                raise
            self._bound_port = int(runner.addresses[0][1])
            self._runner = runner

    async def stop(self) -> None:
        """Close the server and every connection; does nothing if not started."""
        async with self._lock:
            runner, self._runner = self._runner, None
            self._bound_port = None
            if runner is not None:
                await runner.cleanup()

    async def __aenter__(self) -> Self:
        """Start the emulator."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the emulator."""
        await self.stop()

    @property
    def port(self) -> int:
        """The listening port while running, else the port asked for (0: any free port)."""
        return self._bound_port if self._bound_port is not None else self._requested_port

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    # --- addresses and credentials ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, the server root (only while running)."""
        if self._bound_port is None:
            raise RuntimeError("the emulator is not running: call start() or use 'async with'")
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            # Bound to every interface: advertise loopback, which always reaches it.
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._bound_port}"

    @property
    def urls(self) -> Mapping[str, str]:
        """Base URL of each provider, e.g. ``urls["imuze"]`` (the SDK's config ``base_url``).

        Providers with more than one endpoint add keys of their own: ``musescore_oauth``,
        ``musescore_authorize``, ``musescore_static``, ``musescore_oembed``, ``musescore_site``.
        """
        root = self.base_url
        urls: dict[str, str] = {}
        for name, provider in self.providers.items():
            urls[name] = root + provider.prefix
            if isinstance(provider, ExtraUrls):
                urls.update({key: root + path for key, path in provider.extra_urls.items()})
        return MappingProxyType(urls)

    @property
    def credentials(self) -> Mapping[str, Credentials]:
        """Current demo credentials of each provider (tokens follow re-issues)."""
        return MappingProxyType({name: p.credentials() for name, p in self.providers.items()})

    # --- request log ------------------------------------------------------------------------

    @property
    def requests(self) -> Sequence[LoggedRequest]:
        """The last `log_limit` requests, oldest first (a live view)."""
        return self._log.entries

    def count(self, provider: str, method: str | None = None, path_glob: str | None = None) -> int:
        """Exact number of requests to `provider`, optionally by method and route glob.

        `path_glob` matches route templates such as ``/songs/{id}`` (``"/songs/*"`` counts every
        song lookup); counts are exact whatever `log_limit` is.
        """
        return self._log.count(provider, method, path_glob)

    def clear_requests(self) -> None:
        """Empty the request log and reset the counters."""
        self._log.clear()

    def describe(self) -> str:
        """Human-readable URLs and demo credentials, as printed by ``python -m``."""
        lines = [f"imuzekit emulator listening on {self.base_url}", "", "Base URLs:"]
        lines += [f"  {name:<10} {url}" for name, url in self.urls.items()]
        lines += ["", "Demo credentials:"]
        for name, creds in self.credentials.items():
            # dict.fromkeys drops a value listed twice (MuseScore's token is also in `extra`).
            fields = list(
                dict.fromkeys(
                    f"{label}={value}"
                    for label, value in (
                        ("email", creds.email),
                        ("password", creds.password),
                        ("token", creds.token),
                        *creds.extra.items(),
                    )
                    if value is not None
                )
            )
            lines.append(f"  {name:<10} {' '.join(fields)}")
        return "\n".join(lines)

    # --- SDK --------------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> Client:
        """An imuzekit `Client` configured for this emulator (keyword arguments pass through).

        Every registered provider whose spec has an `emulator_config` is configured for this
        emulator unless its keyword (``imuze=``, ...) is given: iMuze and joplin with the demo
        email and password (the SDK logs in itself, as against the real services); Mureka
        with the useapi.net token and every configured account; MuseScore.com with the demo
        consumer, the demo user's access token and every endpoint. ``trust_env`` is False
        unless given: the emulator is on loopback, and a proxy from the environment
        (``HTTP_PROXY``) must not carry its traffic.
        """
        kwargs.setdefault("trust_env", False)
        # Imported here so that the emulator does not depend on the SDK at import time.
        from imuzekit.client import Client
        from imuzekit.providers._registry import registry

        for spec in registry():
            if spec.emulator_config is not None and spec.name not in kwargs:
                kwargs[spec.name] = spec.emulator_config(self)
        return Client(**kwargs)


async def serve(
    host: str = "127.0.0.1",
    port: int = 8700,
    *,
    render_seconds: RenderSeconds = 2.0,
    seed: int = 0,
    on_ready: Callable[[Emulator], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run an emulator until `stop` is set or the task is cancelled (Ctrl-C under asyncio.run).

    `on_ready` is called once it listens, e.g. to print `Emulator.describe()`.
    """
    emulator = Emulator(host=host, port=port, render_seconds=render_seconds, seed=seed)
    async with emulator:
        if on_ready is not None:
            on_ready(emulator)
        # Without a stop event this waits until the task is cancelled; `async with` then stops
        # the server cleanly before the cancellation propagates.
        await (stop if stop is not None else asyncio.Event()).wait()
