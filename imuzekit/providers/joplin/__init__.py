"""The iMuze music engine, "joplin" (``kit.joplin``): genres, structured music, mp3 and schema.

Base URL: ``http://joplin.imuze.io``. Typical use:

    async with Client(joplin=JoplinConfig(email=..., password=...)) as kit:
        job = await kit.joplin.musics.create(
            "electronic", "house", 30_000, Structure.parse("calm:0.3,dynamic:0.7")
        )
        music = await job.wait(timeout=300)        # bpm, measure, movements placed in time
        path = await kit.download(music, "out/")
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from imuzekit import errors
from imuzekit._http import StreamSender
from imuzekit._retry import parse_retry_after
from imuzekit.auth import TokenLogin
from imuzekit.jobs import Job, JobState, JobStatus, PollPolicy
from imuzekit.jobs._poller import Poller
from imuzekit.jobs.job import resume_typed
from imuzekit.providers.joplin import _api
from imuzekit.providers.joplin.models import Energy, Genre, Movement, Music, Structure

__all__ = ["Energy", "Genre", "JoplinAPI", "Movement", "Music", "MusicsAPI", "Structure"]


class MusicsAPI:
    """``kit.joplin.musics``: generate musics, read their schema, stream their mp3."""

    def __init__(self, api: JoplinAPI) -> None:
        self._api = api

    async def create(
        self,
        genre: str,
        subgenre: str,
        duration_ms: int,
        structure: Structure | Sequence[Movement] | str,
        *,
        crop: bool | None = None,
        fadeout_ms: int | None = None,
        voices_volume: int | None = None,
        validate_genre: bool = False,
    ) -> Job[Music]:
        """Generate a music (``POST /musics``) and return its job (READY once the mp3 exists).

        ``structure`` is a `Structure`, a list of `Movement` or a string for
        `Structure.parse()`. Every rule is checked before sending (ValidationError naming
        the field, e.g. ``structure[2].energy``); with ``validate_genre`` the genre and subgenre
        are also checked against `JoplinAPI.genres()` (fetched once per Client). The
        request is never retried after the server may have received it.

        Raises:
            errors.ValidationError: an argument breaks a rule, or (with `validate_genre`) the
                genre or subgenre is unknown: it names the field, and nothing is created.
            errors.BadRequestError: the engine refused the music's parameters.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed; with `sent` True the music may
                exist (it is not sent again).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_create_music(
            self._api.base_url,
            genre=genre,
            subgenre=subgenre,
            duration_ms=duration_ms,
            structure=structure,
            crop=crop,
            fadeout_ms=fadeout_ms,
            voices_volume=voices_volume,
        )
        if validate_genre:
            await self._api.check_genre(genre, subgenre)
        response = await self._api.sender.send(request)
        music = _api.parse_music(response, base_url=self._api.base_url)
        job = self._api.job_for(music)
        job.started_at = time.monotonic()  # a known age: the schedule learns render times
        return job

    async def schema(self, music_id: str) -> Music:
        """A music's schema (``GET /musics/:id/schema``).

        Raises:
            errors.ValidationError: `music_id` is not a non-empty string (nothing is sent).
            errors.NotFoundError: no music has this id.
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        request = _api.build_schema(self._api.base_url, music_id)
        return _api.parse_music(await self._api.sender.send(request), base_url=self._api.base_url)

    async def mp3(self, music_id: str, *, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        """Stream a rendered music's mp3 (``GET /musics/:id/mp3``).

        Raises `NotReadyError` while it is still rendering (wait for
        the job first) and `NotFoundError` for an unknown id. To save
        it to a file, prefer ``kit.download(music, dest)`` (atomic, verified, resumable).

        Raises:
            errors.NotReadyError: the music is still rendering (`retry_after`: the hint).
            errors.NotFoundError: no music has this id.
            errors.ValidationError: `music_id` is empty (nothing is sent).
            errors.APIError: the provider's error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out, also mid-stream.
        """
        request = _api.build_mp3(self._api.base_url, music_id)
        async with self._api.sender.stream(request, ok_statuses=(404,)) as response:
            if _api.rendering(response.status, response.headers):
                raise errors.NotReadyError(
                    f"music {music_id} is still rendering",
                    status=response.status,
                    provider="joplin",
                    method="GET",
                    url=request.url,
                    retry_after=parse_retry_after(response.headers),
                )
            if response.status == 404:
                raise _api.music_not_found(music_id, 404, request.url)
            async for chunk in response.chunks(chunk_size):
                yield chunk

    def job(self, music_id: str, *, policy: PollPolicy | None = None) -> Job[Music]:
        """A job for a music created elsewhere (READY once its mp3 can be fetched)."""
        return self._api.job_for(_api.with_mp3_url(Music(id=music_id), self._api.base_url), policy)

    def resume(self, token: str) -> Job[Music]:
        """Rebuild a music's job from `job.token()` (in this or another process), typed.

        `kit.joplin.musics.resume(token)` is a `Job[Music]` (with the schema the token
        recorded). A token of another provider or job kind raises
        `imuzekit.errors.ValidationError` on `token` (`kit.resume(token)` takes any
        provider's, untyped).

        Raises:
            errors.ValidationError: `token` is not a token of a joplin music's job.
        """
        return resume_typed(token, self._api._driver, self._api._rebuild)


class JoplinAPI:
    """The iMuze music engine namespace of a Client (``kit.joplin``)."""

    def __init__(
        self,
        *,
        sender: StreamSender,
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
        self._driver = _api.MusicDriver(self.base_url)
        self._genres: list[Genre] | None = None
        self.musics = MusicsAPI(self)

    async def login(self) -> None:
        """Get a JWT now with the configured email and password (otherwise on first use).

        Raises:
            errors.ConfigurationError: only a JWT is configured, no email and password.
            errors.AuthenticationError: the engine refused the email or the password; what it
                answered is withheld, as it may echo them.
            errors.APIError: another error status (`RateLimitError`, `ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer carried no JWT it could read.
        """
        await self._auth.login(self.sender)

    async def genres(self, *, refresh: bool = False) -> list[Genre]:
        """Every genre with its subgenres (``GET /genres/``, no auth); cached per Client.

        Raises:
            errors.RateLimitError: still 429 after the retries.
            errors.APIError: another error status (`ServerError`, ...).
            errors.TransportError: the connection failed or timed out (after the retries).
            errors.ParseError: the answer could not be read.
        """
        if self._genres is None or refresh:
            response = await self.sender.send(_api.build_genres(self.base_url))
            self._genres = _api.parse_genres(response)
        return list(self._genres)

    async def check_genre(self, genre: str, subgenre: str) -> None:
        """ValidationError unless ``genre``/``subgenre`` exist in `genres()`.

        Raises:
            errors.ValidationError: the genre, or the subgenre of that genre, is unknown (the
                message lists the known ones).
            errors.APIError: `genres()` could not be read (a subclass per status);
                `TransportError` and `ParseError` likewise.
        """
        catalogue = {g.name: g.subgenres for g in await self.genres()}
        if genre not in catalogue:
            raise errors.ValidationError(
                "genre", f"unknown genre {genre!r}; known: {', '.join(sorted(catalogue))}"
            )
        if subgenre not in catalogue[genre]:
            raise errors.ValidationError(
                "subgenre",
                f"{subgenre!r} is not a subgenre of {genre!r}; "
                f"known: {', '.join(catalogue[genre])}",
            )

    def job_for(self, music: Music, policy: PollPolicy | None = None) -> Job[Music]:
        """Wrap ``music`` in a job polled by this provider's poller."""
        return Job(
            job_id=music.id,
            driver=self._driver,
            poller=self._poller,
            status=JobStatus(JobState.PROCESSING, raw_status=None, result=music),
            policy=policy or self.poll_policy,
            # The music's length: the schedule's first guess at its render time.
            expected=None if music.duration_ms is None else music.duration_ms / 1000,
        )

    def resume(self, kind: str, job_id: str, data: Mapping[str, Any]) -> Job[Music]:
        """Rebuild a job from a token's fields (used by ``Client.resume``)."""
        if kind != self._driver.kind:
            raise errors.ValidationError("token", f"unknown joplin job kind {kind!r}")
        return self._rebuild(job_id, data)

    def _rebuild(self, job_id: str, data: Mapping[str, Any]) -> Job[Music]:
        music = self._driver.from_token_data(job_id, data)
        return self.job_for(music or _api.with_mp3_url(Music(id=job_id), self.base_url))
