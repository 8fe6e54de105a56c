"""The Client: one connection pool, one namespace per provider, downloads and job fleets.

::

    async with Client(imuze=ImuzeConfig(email="me@example.com", password="...")) as kit:
        job = await kit.imuze.songs.create(
            title="Intro", arrangement_id=1, tags=["rock"], desired_length=60
        )
        path = await kit.download(await job.wait(), "songs/")

A provider left out of the constructor is not configured; using it raises
:class:`~imuzekit.errors.ConfigurationError` saying what to set.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from imuzekit import errors
from imuzekit._checks import flag, integer, seconds
from imuzekit._http import Request, Response, Timeouts
from imuzekit._retry import RetryPolicy
from imuzekit._transport import DEFAULT_MAX_BODY_BYTES, Transport
from imuzekit.auth import LoginResult, TokenLogin
from imuzekit.downloads import Downloader, DownloadResult, ProgressCallback
from imuzekit.jobs import Job, PollPolicy, parse_token
from imuzekit.jobs._poller import Poller
from imuzekit.providers.imuze import ImuzeAPI
from imuzekit.providers.imuze import _api as imuze_api
from imuzekit.providers.joplin import JoplinAPI
from imuzekit.providers.joplin import _api as joplin_api
from imuzekit.providers.mureka import MUREKA_POLL, MurekaAPI
from imuzekit.providers.musescore import MuseScoreAPI
from imuzekit.providers.musescore._oauth import OAuth1Credentials, OAuth1Hook

__all__ = ["Client", "ImuzeConfig", "JoplinConfig", "MurekaConfig", "MuseScoreConfig"]

J = TypeVar("J", bound=Job[Any])


def _mask(value: object) -> str:
    return "None" if value is None else "'***'"


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _ints(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _secret() -> Any:
    return attrs.field(default=None, repr=_mask)


@attrs.frozen
class ImuzeConfig:
    """iMuze API v4 credentials: a ``token``, or ``email`` and ``password`` (logged in on first
    use and again once on a 401), or both. ``auth_scheme`` prefixes the token in the
    ``Authorization`` header (the API documents the raw token: leave it None)."""

    token: str | None = _secret()
    email: str | None = None
    password: str | None = _secret()
    base_url: str = "https://api.imuze.io/api/4"
    auth_scheme: str | None = None
    poll: PollPolicy | None = None

    @property
    def has_credentials(self) -> bool:
        """Whether a token or an email/password pair is set."""
        return bool(self.token) or bool(self.email and self.password)


@attrs.frozen
class JoplinConfig:
    """iMuze music engine ("joplin") credentials: a JWT ``token`` or ``email``/``password``."""

    token: str | None = _secret()
    email: str | None = None
    password: str | None = _secret()
    base_url: str = "http://joplin.imuze.io"
    poll: PollPolicy | None = None

    @property
    def has_credentials(self) -> bool:
        """Whether a token or an email/password pair is set."""
        return bool(self.token) or bool(self.email and self.password)


@attrs.frozen
class MurekaConfig:
    """Mureka through useapi.net: the useapi.net ``token`` and the Mureka ``accounts`` it drives.

    ``max_parallel_per_account``: Mureka's limit of simultaneous generations per account (10).
    ``failure_states``: feed ``state`` values to treat as failed (only 3, complete, is
    documented; other values mean "still processing" unless listed here). ``poll`` defaults to
    a Mureka-specific policy (first read after 30 s: a generation takes ~45 s).
    """

    token: str | None = _secret()
    accounts: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    base_url: str = "https://api.useapi.net/v1/mureka"
    max_parallel_per_account: int = 10
    failure_states: tuple[int, ...] = attrs.field(default=(), converter=_ints)
    poll: PollPolicy | None = None

    @property
    def has_credentials(self) -> bool:
        """Whether the token is set."""
        return bool(self.token)


@attrs.frozen
class MuseScoreConfig:
    """MuseScore.com OAuth 1.0 credentials and endpoints.

    A ``consumer_key`` alone allows public calls; signed calls need ``consumer_secret``, and a
    user's calls also ``token`` and ``token_secret`` (from the three-legged flow).
    """

    consumer_key: str | None = None
    consumer_secret: str | None = _secret()
    token: str | None = _secret()
    token_secret: str | None = _secret()
    base_url: str = "http://api.musescore.com/services/rest"
    oauth_url: str = "http://api.musescore.com/oauth"
    authorize_url: str = "http://musescore.com/oauth/authorize"
    static_url: str = "http://static.musescore.com"
    oembed_url: str = "http://musescore.com/oembed/endpoint"
    poll: PollPolicy | None = None

    @property
    def has_credentials(self) -> bool:
        """Whether the consumer key is set."""
        return bool(self.consumer_key)


_CONFIGS: dict[str, type[Any]] = {
    "imuze": ImuzeConfig,
    "joplin": JoplinConfig,
    "mureka": MurekaConfig,
    "musescore": MuseScoreConfig,
}
_NAMES = {
    "imuze": "iMuze API v4",
    "joplin": "the iMuze music engine (joplin)",
    "mureka": "Mureka (useapi.net)",
    "musescore": "MuseScore.com",
}
_ENV_HINT = {
    "imuze": "IMUZEKIT_IMUZE_TOKEN, or IMUZEKIT_IMUZE_EMAIL and IMUZEKIT_IMUZE_PASSWORD",
    "joplin": "IMUZEKIT_JOPLIN_TOKEN, or IMUZEKIT_JOPLIN_EMAIL and IMUZEKIT_JOPLIN_PASSWORD",
    "mureka": "IMUZEKIT_MUREKA_TOKEN (and IMUZEKIT_MUREKA_ACCOUNTS)",
    "musescore": "IMUZEKIT_MUSESCORE_CONSUMER_KEY (and ..._CONSUMER_SECRET)",
}


def _config_from_env(provider: str, env: Mapping[str, str]) -> Any:
    cls = _CONFIGS[provider]
    values: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name == "poll":
            continue
        raw = env.get(f"IMUZEKIT_{provider.upper()}_{field.name.upper()}")
        if raw is None or raw == "":
            continue
        if field.name == "accounts":
            values[field.name] = tuple(a.strip() for a in raw.split(",") if a.strip())
        elif field.name == "failure_states":
            try:
                values[field.name] = tuple(int(a) for a in raw.split(",") if a.strip())
            except ValueError as exc:
                raise errors.ConfigurationError(
                    "IMUZEKIT_MUREKA_FAILURE_STATES must be comma-separated integers"
                ) from exc
        elif field.type in (int, "int"):
            try:
                values[field.name] = int(raw)
            except ValueError as exc:
                raise errors.ConfigurationError(
                    f"IMUZEKIT_{provider.upper()}_{field.name.upper()} must be an integer"
                ) from exc
        else:
            values[field.name] = raw
    config = cls(**values)
    return config if config.has_credentials else None


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class Client:
    """The session manager: owns the connection pool and hands out provider namespaces.

    Use it as ``async with Client(...) as kit:`` (or call ``await kit.close()``). A closed
    client stays closed: using it raises :class:`~imuzekit.errors.ClientClosedError`.
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
    ) -> None:
        # Checked here, not where first used: a wrong setting fails now, naming itself.
        integer("max_connections", max_connections)
        integer("max_body_bytes", max_body_bytes)
        integer("download_chunk_size", download_chunk_size)
        seconds("max_status_rps", max_status_rps, positive=True)
        flag("verify_ssl", verify_ssl)
        for name, value, kind in (
            ("retry", retry, RetryPolicy),
            ("timeouts", timeouts, Timeouts),
            ("poll", poll, PollPolicy),
        ):
            if value is not None and not isinstance(value, kind):
                raise errors.ValidationError(
                    name, f"must be a {kind.__name__} or None, got {type(value).__name__}"
                )
        self.max_status_rps = max_status_rps
        self._configs: dict[str, Any] = {
            "imuze": imuze,
            "joplin": joplin,
            "mureka": mureka,
            "musescore": musescore,
        }
        for name, config in self._configs.items():
            if config is not None and not isinstance(config, _CONFIGS[name]):
                raise errors.ConfigurationError(
                    f"{name}= takes a {_CONFIGS[name].__name__}, got {type(config).__name__}"
                )
        self.poll_policy = poll or PollPolicy()
        self._poll_given = poll
        self._transport = Transport(
            retry=retry,
            timeouts=timeouts,
            max_connections=max_connections,
            max_body_bytes=max_body_bytes,
            verify_ssl=verify_ssl,
        )
        self._downloader = Downloader(self._transport, chunk_size=download_chunk_size)
        self._pollers: dict[str, Poller] = {}
        self._namespaces: dict[str, Any] = {}
        self._state = _State.OPEN

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> Client:
        """A Client configured from ``IMUZEKIT_<PROVIDER>_<FIELD>`` variables.

        Every config field has a variable (``IMUZEKIT_IMUZE_TOKEN``, ``IMUZEKIT_MUREKA_ACCOUNTS``
        comma-separated, ...); a provider with no credentials set is left unconfigured.
        ``kwargs`` go to the constructor and win over the environment.
        """
        source = os.environ if env is None else env
        for provider in _CONFIGS:
            kwargs.setdefault(provider, _config_from_env(provider, source))
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

        Downloads in flight end at once with :class:`~imuzekit.errors.ClientClosedError`
        (their temporary files removed) before the pool closes.
        """
        self._state = _State.CLOSED
        await self._downloader.close()
        pollers = list(self._pollers.values())
        for poller in pollers:
            await poller.close()
        await self._transport.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._state is _State.CLOSED

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise errors.ClientClosedError(
                "this imuzekit Client is closed; create a new Client to send more requests"
            )

    @property
    def transport(self) -> Transport:
        """The transport (for advanced use: shared rate-limit gates, custom requests)."""
        return self._transport

    def _config(self, provider: str) -> Any:
        self._check_open()
        config = self._configs[provider]
        if config is None or not config.has_credentials:
            raise errors.ConfigurationError(
                f"{_NAMES[provider]} is not configured: pass "
                f"Client({provider}={_CONFIGS[provider].__name__}(...)) "
                f"or set {_ENV_HINT[provider]}"
            )
        return config

    def _poller(self, provider: str) -> Poller:
        poller = self._pollers.get(provider)
        if poller is None:
            poller = self._pollers[provider] = Poller(
                provider, self._transport, max_status_rps=self.max_status_rps
            )
        return poller

    # -- providers -------------------------------------------------------------------------

    def _token_login(
        self,
        provider: str,
        config: ImuzeConfig | JoplinConfig,
        build_login: Callable[[str, str, str], Request],
        parse_login: Callable[[Response], LoginResult],
        *,
        scheme: str | None = None,
        expires_at: float | None = None,
    ) -> TokenLogin:
        base_url = config.base_url.rstrip("/")
        login: Callable[[], Request] | None = None
        if config.email and config.password:
            email, password = config.email, config.password

            def login() -> Request:
                return build_login(base_url, email, password)

        auth = TokenLogin(
            provider=provider,
            token=config.token,
            login=login,
            parse=parse_login if login else None,
            scheme=scheme,
            expires_at=expires_at,
        )
        self._transport.set_auth(provider, auth)
        return auth

    @property
    def imuze(self) -> ImuzeAPI:
        """iMuze API v4: arrangements and songs."""
        self._check_open()
        api = self._namespaces.get("imuze")
        if api is None:
            config: ImuzeConfig = self._config("imuze")
            auth = self._token_login(
                "imuze",
                config,
                imuze_api.build_login,
                imuze_api.parse_login,
                scheme=config.auth_scheme,
            )
            api = self._namespaces["imuze"] = ImuzeAPI(
                sender=self._transport,
                base_url=config.base_url,
                auth=auth,
                poller=self._poller("imuze"),
                poll_policy=config.poll or self.poll_policy,
            )
        return api

    @property
    def joplin(self) -> JoplinAPI:
        """The iMuze music engine (joplin): genres and structured music generation."""
        self._check_open()
        api = self._namespaces.get("joplin")
        if api is None:
            config: JoplinConfig = self._config("joplin")
            auth = self._token_login(
                "joplin",
                config,
                joplin_api.build_login,
                joplin_api.parse_login,
                expires_at=joplin_api.jwt_expiry(config.token) if config.token else None,
            )
            api = self._namespaces["joplin"] = JoplinAPI(
                sender=self._transport,
                base_url=config.base_url,
                auth=auth,
                poller=self._poller("joplin"),
                poll_policy=config.poll or self.poll_policy,
            )
        return api

    @property
    def mureka(self) -> MurekaAPI:
        """Mureka through useapi.net: feeds, songs, creation across accounts, jobs."""
        self._check_open()
        api = self._namespaces.get("mureka")
        if api is None:
            config: MurekaConfig = self._config("mureka")
            assert config.token is not None
            self._transport.set_auth(
                "mureka", TokenLogin(provider="mureka", token=config.token, scheme="Bearer")
            )
            api = self._namespaces["mureka"] = MurekaAPI(
                sender=self._transport,
                base_url=config.base_url,
                accounts=config.accounts,
                max_parallel_per_account=config.max_parallel_per_account,
                poller=self._poller("mureka"),
                poll_policy=config.poll or self._poll_given or MUREKA_POLL,
                retry=self._transport.retry,
                failure_states=config.failure_states,
            )
        return api

    @property
    def musescore(self) -> MuseScoreAPI:
        """MuseScore.com: OAuth, search, scores, timings, upload, users, resolve, oEmbed."""
        self._check_open()
        api = self._namespaces.get("musescore")
        if api is None:
            config: MuseScoreConfig = self._config("musescore")
            assert config.consumer_key is not None
            hook = OAuth1Hook(
                OAuth1Credentials(
                    consumer_key=config.consumer_key,
                    consumer_secret=config.consumer_secret,
                    token=config.token,
                    token_secret=config.token_secret,
                )
            )
            self._transport.set_auth("musescore", hook)
            api = self._namespaces["musescore"] = MuseScoreAPI(
                sender=self._transport,
                hook=hook,
                base_url=config.base_url,
                oauth_url=config.oauth_url,
                authorize_url=config.authorize_url,
                static_url=config.static_url,
                oembed_url=config.oembed_url,
                poller=self._poller("musescore"),
                poll_policy=config.poll or self.poll_policy,
            )
        return api

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
        source and its size on it, and any size or digest the source declares match);
        otherwise, unless ``overwrite``, the new file takes the next free name
        (``a-2.mp3``): the path returned is where it is. On failure nothing is left there.
        """
        self._check_open()
        return await self._downloader.download(
            source, dest, overwrite=overwrite, on_progress=on_progress
        )

    async def download_many(
        self,
        sources: Iterable[Any],
        dest_dir: str | os.PathLike[str],
        *,
        concurrency: int = 8,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        checksum: bool = False,
    ) -> AsyncIterator[DownloadResult]:
        """Download every source into ``dest_dir``, yielding a DownloadResult as each finishes.

        A failure is a result with ``.error`` (and ``path=None``), never a crash of the others
        nor an exception of the iteration (a folder that cannot be created is a failed result
        for each source). ``checksum=True`` computes each file's SHA-256 on the way
        (``result.sha256``; None otherwise): it costs about as much CPU as the transfer, so it
        is asked for, not default.
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
        """Rebuild a job from ``job.token()`` (from this or another process) to wait on it."""
        self._check_open()
        provider, kind, job_id, data = parse_token(token)
        if provider not in _CONFIGS:
            raise errors.ValidationError("token", f"unknown provider {provider!r}")
        namespace = getattr(self, provider)
        try:
            job: Job[Any] = namespace.resume(kind, job_id, data)
        except errors.ValidationError:
            raise
        except (errors.ParseError, ValueError, TypeError) as exc:
            # A token's fields that do not fit the provider's job (an id that is not a number,
            # data of the wrong shape) are a bad token, not a bad answer.
            raise errors.ValidationError("token", f"does not describe a {provider} job") from exc
        return job
