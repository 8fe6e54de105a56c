"""iMuze API v4 (``kit.imuze``): arrangements and songs that render to an mp3.

Base URL: ``https://api.imuze.io/api/4``. Typical use:

    async with Client(imuze=ImuzeConfig(email=..., password=...)) as kit:
        job = await kit.imuze.songs.create(
            title="Intro", arrangement_id=1, tags=["rock"], desired_length=60
        )
        song = await job.wait(timeout=300)
        path = await kit.download(song, "out/")
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

from imuzekit import errors
from imuzekit._http import Sender
from imuzekit.auth import TokenLogin
from imuzekit.jobs import Job, PollPolicy
from imuzekit.jobs._poller import Poller
from imuzekit.jobs.job import resume_typed
from imuzekit.providers.imuze import _api
from imuzekit.providers.imuze.models import Arrangement, Song, SongStatus

__all__ = ["Arrangement", "ArrangementsAPI", "ImuzeAPI", "Song", "SongStatus", "SongsAPI"]


class ArrangementsAPI:
    """``kit.imuze.arrangements``: the arrangement catalogue."""

    def __init__(self, api: ImuzeAPI) -> None:
        self._api = api

    async def list(self) -> AsyncIterator[Arrangement]:
        """Yield every arrangement the account can use (``GET /arrangements``).

        Errors are raised by the iteration.

        Raises:
            errors.AuthenticationError: the credentials were refused, even after a re-login.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        response = await self._api.sender.send(_api.build_list_arrangements(self._api.base_url))
        _, items = _api.parse_arrangements(response)
        for item in items:
            yield item

    async def get(self, arrangement_id: int) -> Arrangement:
        """One arrangement with its description and genres (``GET /arrangements/:id``).

        Raises:
            errors.ValidationError: `arrangement_id` is not a valid id (nothing is sent).
            errors.NotFoundError: no arrangement has this id.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_get_arrangement(self._api.base_url, arrangement_id)
        return _api.parse_arrangement(await self._api.sender.send(request))


class SongsAPI:
    """``kit.imuze.songs``: create songs and read them back."""

    def __init__(self, api: ImuzeAPI) -> None:
        self._api = api

    async def create(
        self, title: str, arrangement_id: int | None, tags: Collection[str], desired_length: int
    ) -> Job[Song]:
        """Start rendering a song (``POST /songs``) and return its job.

        ``desired_length`` is in seconds. With ``arrangement_id=None`` the service chooses the
        arrangement from ``tags`` (the API reaches arrangements "by ids ... or by tags");
        the job's song then carries the chosen ``arrangement_id`` from the create answer.
        Arguments are checked before anything is sent (ValidationError). The request is never
        retried after the server may have received it, so a song is never created (and paid
        for) twice.

        Raises:
            errors.ValidationError: an argument breaks iMuze's rules (a title needs 4+ ASCII
                letters or spaces); it names the field, and nothing is sent.
            errors.PaymentRequiredError: the subscription or the credits do not cover it.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed; with `sent` True the song may exist
                (it is not sent again: look with `songs.list()`).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_create_song(
            self._api.base_url,
            title=title,
            arrangement_id=arrangement_id,
            tags=tags,
            desired_length=desired_length,
        )
        created = _api.parse_song(await self._api.sender.send(request))
        # The create response omits what we sent; keep it for file names and job tokens.
        sent = Song(
            id=created.id,
            title=title,
            arrangement_id=arrangement_id,
            tags=tuple(tags),
            desired_length=desired_length,
        )
        job = self._api.job_for(_api.merge_song(sent, created))
        job.started_at = time.monotonic()  # a known age: the schedule learns render times
        return job

    async def list(self) -> AsyncIterator[Song]:
        """Yield the account's songs with their current status (``GET /songs``).

        Raises:
            errors.AuthenticationError: the credentials were refused (raised by the iteration).
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        _, songs = _api.parse_songs(
            await self._api.sender.send(_api.build_list_songs(self._api.base_url))
        )
        for song in songs:
            yield song

    async def get(self, song_id: int) -> Song:
        """One song with its status and mp3 URL (``GET /songs/:id``).

        Raises:
            errors.ValidationError: `song_id` is not an integer >= 0 (nothing is sent).
            errors.NotFoundError: no song has this id.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_get_song(self._api.base_url, song_id)
        return _api.parse_song(await self._api.sender.send(request))

    def job(self, song_id: int, *, policy: PollPolicy | None = None) -> Job[Song]:
        """A job for a song created elsewhere (its state is read on the first refresh)."""
        return self._api.job_for(Song(id=song_id), policy=policy)

    def resume(self, token: str) -> Job[Song]:
        """Rebuild a song's job from `job.token()` (in this or another process), typed.

        `kit.imuze.songs.resume(token)` is a `Job[Song]`: `await job.wait()` returns the
        `Song`, with the title and length the token recorded. A token of another provider or
        job kind raises `imuzekit.errors.ValidationError` on `token` (`kit.resume(token)`
        takes any provider's, untyped).

        Raises:
            errors.ValidationError: `token` is not a token of an iMuze song's job.
        """
        return resume_typed(token, self._api._driver, self._api._rebuild)


class ImuzeAPI:
    """The iMuze API v4 namespace of a Client (``kit.imuze``)."""

    def __init__(
        self,
        *,
        sender: Sender,
        base_url: str,
        auth: TokenLogin,
        poller: Poller,
        poll_policy: PollPolicy,
    ) -> None:
        self.sender = sender
        self.base_url = base_url.rstrip("/")
        self.poll_policy = poll_policy
        self._auth = auth
        self._poller = poller
        self._driver = _api.SongDriver(self.base_url)
        self.arrangements = ArrangementsAPI(self)
        self.songs = SongsAPI(self)

    async def login(self) -> None:
        """Log in now with the configured email and password (otherwise done on first use).

        Raises:
            errors.ConfigurationError: the config has a token but no email and password.
            errors.AuthenticationError: the login was refused (its answer is withheld: it may
                echo the password).
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        await self._auth.login(self.sender)

    def job_for(self, song: Song, *, policy: PollPolicy | None = None) -> Job[Song]:
        """Wrap ``song`` in a job polled by this provider's poller."""
        return Job(
            job_id=str(song.id),
            driver=self._driver,
            poller=self._poller,
            status=self._driver.status_of(song),
            policy=policy or self.poll_policy,
            expected=song.desired_length,  # the requested length: the schedule's first guess
        )

    def resume(self, kind: str, job_id: str, data: Mapping[str, Any]) -> Job[Song]:
        """Rebuild a job from a token's fields (used by ``Client.resume``)."""
        if kind != self._driver.kind:
            raise errors.ValidationError("token", f"unknown iMuze job kind {kind!r}")
        return self._rebuild(job_id, data)

    def _rebuild(self, job_id: str, data: Mapping[str, Any]) -> Job[Song]:
        song = self._driver.from_token_data(job_id, data) or Song(id=int(job_id))
        return self.job_for(song)
