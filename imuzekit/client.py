"""The Client: one connection pool, one namespace per provider, downloads and job fleets.

::

    async with Client(imuze=ImuzeConfig(email="me@example.com", password="...")) as kit:
        job = await kit.imuze.songs.create(
            title="Intro", arrangement_id=1, tags=["rock"], desired_length=60
        )
        path = await kit.download(await job.wait(), "songs/")

A provider left out of the constructor is not configured; using it raises
`ConfigurationError` saying what to set.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import os
import warnings
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from ssl import SSLContext
from typing import TYPE_CHECKING, Any, TypeVar, cast

from imuzekit import errors
from imuzekit._checks import flag, integer, seconds
from imuzekit._configs import ImuzeConfig, JoplinConfig, MurekaConfig, MuseScoreConfig
from imuzekit._http import Timeouts, WireTransport
from imuzekit._logs import log_to_stderr
from imuzekit._retry import RetryPolicy
from imuzekit._transport import DEFAULT_MAX_BODY_BYTES, Transport, check_http_setup
from imuzekit.downloads import Downloader, DownloadResult, ProgressCallback
from imuzekit.jobs import Job, PollPolicy, parse_token
from imuzekit.jobs._poller import Poller
from imuzekit.providers._registry import registry
from imuzekit.providers._spec import Connection, Found, ProviderSpec, has_credentials
from imuzekit.providers.imuze import ImuzeAPI
from imuzekit.providers.joplin import JoplinAPI
from imuzekit.providers.mureka import MurekaAPI
from imuzekit.providers.musescore import MuseScoreAPI
from imuzekit.webhooks import Webhooks

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Client", "ImuzeConfig", "JoplinConfig", "MurekaConfig", "MuseScoreConfig"]

J = TypeVar("J", bound=Job[Any])
SourceT = TypeVar("SourceT")


def _check_headers(headers: object) -> None:
    if headers is None:
        return
    if not isinstance(headers, Mapping) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in headers.items()
    ):
        raise errors.ValidationError("default_headers", "must map header names to strings")


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class Client:
    """The session manager: owns the connection pool and hands out provider namespaces.

    Use it as ``async with Client(...) as kit:`` (or call ``await kit.close()``). A closed
    client stays closed: using it raises `ClientClosedError`.

    A service brings its own HTTP setup the way it would to aiohttp:

    - `session`: an `aiohttp.ClientSession` to send through; the Client uses it and never closes
      it (its connector, proxy settings and trace configs are the session's own);
    - `proxy`: a proxy URL for every request; without it, `trust_env=True` (the default) honours
      `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (and `.netrc`) as aiohttp does;
    - `ssl`: an `ssl.SSLContext` (a private CA, say) or a bool; `verify_ssl=False` is the older
      spelling of `ssl=False`;
    - `trace_configs`: aiohttp `TraceConfig`s (OpenTelemetry's aiohttp instrumentation, say);
    - `default_headers`: headers sent with every request, after the default `User-Agent`
      (`imuzekit/<version> python/<x.y> aiohttp/<version>`), which they may replace;
    - `transport`: another last step instead of aiohttp, such as
      `imuzekit.testing.MockTransport(handler)`, which answers from a function and opens no
      socket (the gate, logins, retries, jobs and downloads still run).

    `webhooks`: an `imuzekit.webhooks.Webhooks` receiver (push): Mureka creations then send
    `replyUrl`/`replyRef`, and a callback makes the job confirm at once with one status
    request while the poller keeps only a slow safety schedule (see `docs/webhooks.md`).
    Serve it with `kit.webhooks.app()`, `kit.webhooks.listen()` or `kit.webhooks.handle()`.

    Raises:
        errors.ValidationError: a setting has the wrong type or value (`proxy`, `ssl`,
            `max_connections`, `retry`, ...): the error names it.
        errors.ConfigurationError: a provider's config is not its config class.
        TypeError: a keyword names no registered provider.
    """

    def __init__(
        self,
        *,
        imuze: ImuzeConfig | None = None,
        joplin: JoplinConfig | None = None,
        mureka: MurekaConfig | None = None,
        musescore: MuseScoreConfig | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        poll: PollPolicy | None = None,
        max_connections: int = 100,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        verify_ssl: bool = True,
        download_chunk_size: int = 256 * 1024,
        max_status_rps: float = 50.0,
        session: aiohttp.ClientSession | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        ssl: SSLContext | bool | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        default_headers: Mapping[str, str] | None = None,
        transport: WireTransport | None = None,
        webhooks: Webhooks | None = None,
        **providers: Any,
    ) -> None:
        # Checked here, not where first used: a wrong setting fails now, naming itself.
        check_http_setup(session, proxy, trust_env, ssl, verify_ssl, trace_configs)
        _check_headers(default_headers)
        if transport is not None and not callable(getattr(transport, "handle", None)):
            raise errors.ValidationError(
                "transport", "must have an async handle(request) (imuzekit.testing.MockTransport)"
            )
        integer("max_connections", max_connections)
        integer("max_body_bytes", max_body_bytes)
        integer("download_chunk_size", download_chunk_size)
        seconds("max_status_rps", max_status_rps, positive=True)
        flag("verify_ssl", verify_ssl)
        for name, value, kind in (
            ("retry", retry, RetryPolicy),
            ("timeouts", timeouts, Timeouts),
            ("poll", poll, PollPolicy),
            ("webhooks", webhooks, Webhooks),
        ):
            if value is not None and not isinstance(value, kind):
                raise errors.ValidationError(
                    name, f"must be a {kind.__name__} or None, got {type(value).__name__}"
                )
        self.max_status_rps = max_status_rps
        self.webhooks = webhooks
        """The push receiver given as `webhooks=` (None: every job is polled)."""
        specs = registry()
        unknown = sorted(name for name in providers if name not in specs)
        if unknown:
            raise TypeError(
                f"Client() got an unexpected keyword argument {unknown[0]!r} "
                "(not a registered provider)"
            )
        given = {"imuze": imuze, "joplin": joplin, "mureka": mureka, "musescore": musescore}
        self._specs: dict[str, ProviderSpec] = {spec.name: spec for spec in specs}
        self._configs: dict[str, Any] = {
            name: providers.get(name, given.get(name)) for name in self._specs
        }
        for name, config in self._configs.items():
            expected = self._specs[name].config
            if config is not None and not isinstance(config, expected):
                raise errors.ConfigurationError(
                    f"{name}= takes a {expected.__name__}, got {type(config).__name__}"
                )
        self.poll_policy = poll or PollPolicy()
        self._poll_given = poll
        self._transport = Transport(
            retry=retry,
            timeouts=timeouts,
            max_connections=max_connections,
            max_body_bytes=max_body_bytes,
            verify_ssl=verify_ssl,
            session=session,
            proxy=proxy,
            trust_env=trust_env,
            ssl=ssl,
            trace_configs=trace_configs,
            default_headers=default_headers,
            wire=transport,
        )
        self._downloader = Downloader(self._transport, chunk_size=download_chunk_size)
        self._pollers: dict[str, Poller] = {}
        self._namespaces: dict[str, Any] = {}
        self._state = _State.OPEN
        self._root: Client = self  # a view made by with_options: the client it views

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> Client:
        """A Client configured from ``IMUZEKIT_<PROVIDER>_<FIELD>`` variables.

        Every config field of every registered provider has a variable
        (``IMUZEKIT_IMUZE_TOKEN``, ``IMUZEKIT_MUREKA_ACCOUNTS`` comma-separated, ...); a provider
        with no credentials set is left unconfigured. ``IMUZEKIT_POLL_INITIAL``,
        ``IMUZEKIT_POLL_MAX_INTERVAL`` and ``IMUZEKIT_POLL_TIMEOUT`` (seconds) set the poll
        policy, as for the CLI. ``kwargs`` go to the constructor and win over the environment.
        ``IMUZEKIT_LOG=debug`` (or ``info``) sends imuzekit's log lines to stderr, as
        ``OPENAI_LOG`` does for openai.

        Any other ``IMUZEKIT_*`` variable is warned about (a `UserWarning` naming the closest
        known variable): a typo would otherwise leave a provider silently unconfigured.

        Raises:
            errors.ValidationError: a variable or a keyword holds a wrong value (named).
            errors.ConfigurationError: a provider's settings do not fit together.
        """
        from imuzekit.providers._env import poll_from_env, unknown_variables

        source = os.environ if env is None else env
        for note in unknown_variables(source):
            warnings.warn(note, UserWarning, stacklevel=2)
        if source.get("IMUZEKIT_LOG"):
            log_to_stderr(source["IMUZEKIT_LOG"])
        for spec in registry():
            kwargs.setdefault(spec.name, spec.config_from_env(source))
        kwargs.setdefault("poll", poll_from_env(source))
        return cls(**kwargs)

    def __repr__(self) -> str:
        configured = [name for name, config in self._configs.items() if config is not None]
        return f"<imuzekit.Client {self._state.value} providers={configured}>"

    async def __aenter__(self) -> Client:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool. Safe to call twice; the client cannot be reopened.

        Downloads in flight end at once with `ClientClosedError`
        (their temporary files removed) before the pool closes. On a view made by
        `with_options` it does nothing: the view shares its client's pool, which the client
        itself closes (so `async with kit.with_options(...) as fast:` leaves `kit` open).
        """
        if self._root is not self:
            return
        self._state = _State.CLOSED
        await self._downloader.close()
        if self.webhooks is not None:
            await self.webhooks.aclose()  # confirmations in flight end before the pollers
        pollers = list(self._pollers.values())
        for poller in pollers:
            await poller.close()
        await self._transport.close()

    @property
    def closed(self) -> bool:
        """Whether `close()` was called (on the client a view was made from)."""
        return self._root._state is _State.CLOSED

    def _check_open(self) -> None:
        if self._root._state is _State.CLOSED:
            raise errors.ClientClosedError(
                "this imuzekit Client is closed; create a new Client to send more requests"
            )

    def with_options(
        self,
        *,
        timeout: Timeouts | float | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Client:
        """A view of this client that applies other options to the calls made through it.

        ```python
        from imuzekit import RetryPolicy

        patient = kit.with_options(timeout=120, retry=RetryPolicy(max_attempts=8))
        song = await patient.imuze.songs.get(song_id)
        ```

        The view shares this client's connection pool, rate-limit pauses, logins (a token
        is fetched once for both) and job pollers; only the calls made through the view's
        namespaces use its options. `timeout`: a `Timeouts`, or seconds for each attempt as a
        whole. `retry`: a `RetryPolicy`. `headers`: added to every request (a request's own
        headers and its credentials win). Omitted options keep this client's; views of views
        combine. Job polling and downloads keep the client's own options. Closing the client
        closes its views; closing a view does nothing.

        Raises:
            errors.ValidationError: `timeout`, `retry` or `headers` is wrong (named).
            errors.ClientClosedError: the Client is closed.
        """
        self._check_open()
        view = copy.copy(self)
        view._transport = self._transport.with_options(
            timeout=timeout, retry=retry, headers=headers
        )
        view._namespaces = {}  # built on first use, sending through the view's transport
        return view

    @property
    def transport(self) -> Transport:
        """The transport (for advanced use: shared rate-limit gates, custom requests)."""
        return self._transport

    def _config(self, provider: str) -> Any:
        self._check_open()
        config = self._configs[provider]
        if config is None or not has_credentials(config):
            raise self._specs[provider].not_configured()
        return config

    def _poller(self, provider: str) -> Poller:
        poller = self._pollers.get(provider)
        if poller is None:
            # The client's own transport, also for a view: polling keeps the client's options.
            poller = self._pollers[provider] = Poller(
                provider, self._root._transport, max_status_rps=self.max_status_rps
            )
        return poller

    # -- providers -------------------------------------------------------------------------

    def namespace(self, provider: str) -> Any:
        """The namespace of any registered provider (`kit.namespace("imuze")` is `kit.imuze`).

        Built on first use from the provider's spec and config. A provider plugged into the
        registry is also reachable as an attribute: `kit.<name>`.

        Raises:
            errors.ConfigurationError: the provider is not configured (the error says what to set).
            errors.ValidationError: no provider of that name is registered.
            errors.ClientClosedError: the Client is closed.
        """
        self._check_open()
        api = self._namespaces.get(provider)
        if api is not None:
            return api
        spec = self._specs.get(provider)
        if spec is None:
            raise errors.ValidationError("provider", f"no provider {provider!r} is registered")
        config = self._config(provider)
        policy = (
            getattr(config, "poll", None)
            or self._poll_given
            or spec.default_poll
            or self.poll_policy
        )
        installed = self._transport.get_auth(provider)  # a view's client's, or None
        connected = spec.connect(
            config,
            Connection(
                sender=self._transport,
                retry=self._transport.retry,
                poller=self._poller(provider),
                poll_policy=policy,
                webhooks=self.webhooks,
                auth=installed,
            ),
        )
        if installed is None:
            self._transport.set_auth(provider, connected.auth)
        api = self._namespaces[provider] = connected.namespace
        return api

    if not TYPE_CHECKING:
        # `kit.<name>` for a provider plugged into the registry, at run time only: to a type
        # checker a misspelt attribute stays an error (the built-ins are typed properties;
        # `namespace(name)` reaches any provider).
        def __getattr__(self, name: str) -> Any:
            specs = self.__dict__.get("_specs")
            if specs is not None and name in specs:
                return self.namespace(name)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def imuze(self) -> ImuzeAPI:
        """iMuze API v4: arrangements and songs.

        Raises:
            errors.ConfigurationError: `imuze=` was not given (or has no credentials).
        """
        return cast(ImuzeAPI, self.namespace("imuze"))

    @property
    def joplin(self) -> JoplinAPI:
        """The iMuze music engine (joplin): genres and structured music generation.

        Raises:
            errors.ConfigurationError: no `joplin=` config with credentials was given.
        """
        return cast(JoplinAPI, self.namespace("joplin"))

    @property
    def mureka(self) -> MurekaAPI:
        """Mureka through useapi.net: feeds, songs, creation across accounts, jobs.

        Raises:
            errors.ConfigurationError: Mureka is not configured (no useapi.net token).
        """
        return cast(MurekaAPI, self.namespace("mureka"))

    @property
    def musescore(self) -> MuseScoreAPI:
        """MuseScore.com: OAuth, search, scores, timings, upload, users, resolve, oEmbed.

        Raises:
            errors.ConfigurationError: MuseScore.com is not configured (no consumer key).
        """
        return cast(MuseScoreAPI, self.namespace("musescore"))

    async def find_created(self, provider: str, markers: Collection[str]) -> dict[str, Found]:
        """Find creations again by the markers they carry, after a crash or a lost answer.

        A marker is ``ik:`` and 12 hex digits, put into a create's parameters by
        `ProviderSpec.create(kind).mark(params, marker)` before it is sent (in a title or
        the tags, as the provider allows). Returns `{marker: Found}` for the markers found:
        `Found.job` to wait on (or `.token()` to keep), or `Found.result` for a creation that
        is complete with no job left; `Found.settled` False means seen half-made: look again
        later. A marker left out was not found.

        Raises:
            errors.ValidationError: the provider is not registered or cannot be searched.
            errors.ConfigurationError: the provider is not configured.
            errors.APIError: a listing answered an error status (`RateLimitError`, ...).
            errors.TransportError: a listing failed on the wire (after the retries).
            errors.ParseError: a listing could not be read.
            errors.ClientClosedError: the Client is closed.
        """
        spec = self._specs.get(provider)
        if spec is None:
            raise errors.ValidationError("provider", f"no provider {provider!r} is registered")
        if spec.find_created is None:
            raise errors.ValidationError(
                "provider", f"{spec.title} cannot be searched for a creation by marker"
            )
        return await spec.find_created(self.namespace(provider), markers)

    # -- downloads and fleets --------------------------------------------------------------

    async def download(
        self,
        source: Any,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Path:
        """Download ``source`` (a ready Song, ..., or a URL) to ``dest`` and return the path.

        ``dest`` is a directory (the file name is derived safely from the source) when it is
        one, ends with a path separator, or does not exist and has no suffix (``"songs"``);
        otherwise it is the file path (``"songs/a.mp3"``). A file already there is returned
        as already downloaded only when it is provably this source's (imuzekit recorded this
        source and its size on it, and any size or digest the source declares match), and so
        is this source's copy under a next free name from an earlier run (``a-2.mp3``);
        otherwise, unless ``overwrite``, the new file takes the next free name: the path
        returned is where it is. On failure nothing is left there.

        Raises:
            errors.ValidationError: `source` is not a model with a file or an http(s) URL.
            errors.IntegrityError: the size, digest or format did not match the source's.
            errors.DownloadError: the transfer broke off for good, or the file could not be written.
            errors.APIError: the file's server answered an error status (`NotFoundError`, ...).
            errors.TransportError: the connection failed or timed out (after the resumes).
            errors.ClientClosedError: the Client is closed, or was closed during the download.
        """
        self._check_open()
        return await self._downloader.download(
            source, dest, overwrite=overwrite, on_progress=on_progress
        )

    async def download_many(
        self,
        sources: Iterable[SourceT],
        dest_dir: str | os.PathLike[str],
        *,
        concurrency: int = 8,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        checksum: bool = False,
    ) -> AsyncIterator[DownloadResult[SourceT]]:
        """Download every source into ``dest_dir``, yielding a DownloadResult as each finishes.

        A failure is a result with ``.error`` (and ``path=None``), never a crash of the others
        nor an exception of the iteration (a folder that cannot be created is a failed result
        for each source). ``checksum=True`` computes each file's SHA-256 on the way
        (``result.sha256``; None otherwise): it costs about as much CPU as the transfer, so it
        is asked for, not default.

        Raises:
            errors.ValidationError: `concurrency` is not a positive integer (when iterating).
            errors.ClientClosedError: the Client is closed.
        """
        self._check_open()
        integer("concurrency", concurrency)
        async for result in self._downloader.download_many(
            sources,
            dest_dir,
            concurrency=concurrency,
            overwrite=overwrite,
            on_progress=on_progress,
            checksum=checksum,
        ):
            yield result

    async def as_completed(
        self, jobs: Iterable[J], *, timeout: float | None = None
    ) -> AsyncIterator[J]:
        """Yield each job as it reaches READY or FAILED, or gives up (its deadline passed, or
        its status could not be read): check ``job.state``.

        Failures are not raised here: inspect ``job.state``, ``job.error`` (the provider's
        reason) and ``job.last_error`` (the exception that ended the wait, if any).

        Raises:
            errors.ValidationError: `timeout` is not a positive number of seconds.
            errors.ClientClosedError: the Client is closed.
        """
        self._check_open()
        if timeout is not None:
            # Checked before any wait starts: settle() would file it under each job instead.
            seconds("timeout", timeout, positive=True)

        async def settle(job: J) -> J:
            try:
                await job.wait(timeout)
            except errors.ImuzekitError as exc:
                job.last_error = exc
            return job

        tasks = [asyncio.ensure_future(settle(job)) for job in jobs]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def resume(self, token: str) -> Job[Any]:
        """Rebuild a job from `job.token()` (from this or another process) to wait on it.

        The untyped door: it takes a token of any provider and returns a `Job[Any]`. When the
        provider is known, its namespace's typed `resume` gives the result's type:
        `kit.imuze.songs.resume(token)` is a `Job[Song]`, likewise `kit.joplin.musics`,
        `kit.mureka.music` (or `kit.mureka.jobs`) and `kit.musescore.scores`.

        Raises:
            errors.ValidationError: `token` is not a job token, or names no registered provider.
            errors.ConfigurationError: the token's provider is not configured in this Client.
            errors.ClientClosedError: the Client is closed.
        """
        self._check_open()
        provider, kind, job_id, data = parse_token(token)
        spec = self._specs.get(provider)
        if spec is None:
            raise errors.ValidationError("token", f"unknown provider {provider!r}")
        namespace = self.namespace(provider)
        try:
            job: Job[Any] = spec.resume(namespace, kind, job_id, data)
        except errors.ValidationError:
            raise
        except (errors.ParseError, ValueError, TypeError) as exc:
            # A token's fields that do not fit the provider's job (an id that is not a number,
            # data of the wrong shape) are a bad token, not a bad answer.
            raise errors.ValidationError("token", f"does not describe a {provider} job") from exc
        return job
