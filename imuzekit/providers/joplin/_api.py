"""The iMuze music engine ("joplin") as pure functions: ``build_*`` Requests, ``parse_*`` Responses.

Seed 000. Notes on the wire format:

* ``PUT /accounts/token`` answers ``{"token": "<JWT>"}``; the JWT goes in ``Authorization`` as
  the raw value (no scheme). Its ``exp`` claim is read (not verified: that is the server's
  job) so the token is renewed shortly before it expires;
* ``GET /genres/`` needs no authentication;
* ``GET /musics/:id/mp3`` answers the audio once rendered; while rendering it may answer 202
  (the reference's odd example body ``{"id": ...}``) or 404 with ``Retry-After``. Readiness is
  probed with ``Range: bytes=0-0`` so that a poll never downloads the file.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import attrs
import cattrs

from imuzekit import errors
from imuzekit._convert import loads_json
from imuzekit._http import Request, Response
from imuzekit.auth import LoginResult
from imuzekit.jobs import JobState, JobStatus
from imuzekit.providers._common import (
    check_int,
    check_str,
    decode_json,
    expect_object,
    join_url,
    structure,
)
from imuzekit.providers.joplin.models import Energy, Genre, Movement, Music, Structure, movements_of

__all__ = [
    "PROVIDER",
    "MusicDriver",
    "build_create_music",
    "build_genres",
    "build_login",
    "build_mp3",
    "build_schema",
    "configure_converter",
    "jwt_expiry",
    "parse_genres",
    "parse_login",
    "parse_music",
    "validate_movements",
]

PROVIDER = "joplin"
MAX_DURATION_MS = 20 * 60 * 1000
MIN_DURATION_MS = 1
"""Shortest ``duration_ms`` sent (a music lasts something)."""
MIN_FADEOUT_MS = 0
"""Shortest ``fadeout_ms``; the longest is the music's ``duration_ms``."""
MAX_GENRE_LENGTH = 128
"""Longest ``genre`` and ``subgenre`` sent (characters)."""
MAX_MOVEMENT_LENGTH = 64
"""Longest movement type (``intro``, ``verse``, ...) sent (characters)."""
RENDERING_STATUSES = (202, 404)


def _structure_energy(value: Any, _: Any) -> Energy | str:
    if not isinstance(value, str):
        raise TypeError(f"expected an energy name, got {type(value).__name__}")
    try:
        return Energy(value.lower())
    except ValueError:
        return value  # a level the engine added later: kept raw, never a crash


def configure_converter(converter: cattrs.Converter) -> None:
    """Register joplin's wire rules on the package converter."""
    converter.register_structure_hook(Energy | str, _structure_energy)
    converter.register_structure_hook(Energy | str | None, _optional_energy)


def _optional_energy(value: Any, tp: Any) -> Energy | str | None:
    return None if value is None else _structure_energy(value, tp)


# -- auth ---------------------------------------------------------------------------------


def build_login(base_url: str, email: str, password: str) -> Request:
    """``PUT /accounts/token`` with ``{"email", "password"}`` (sent without auth)."""
    return Request(
        "PUT",
        join_url(base_url, "accounts", "token"),
        provider=PROVIDER,
        json={"email": email, "password": password},
        auth=False,
    )


# One segment of a JWS compact serialization: base64url without padding (RFC 7515, section 2).
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def _jwt_segment(segment: str) -> Any:
    """The JSON a JWT header or payload segment encodes; `ValueError` when it is not one."""
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not a base64url segment")
    return loads_json(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (unix seconds), read without verifying the signature.

    Read with the standard library (base64url and JSON): the token's header and payload must be
    unpadded base64url JSON objects. None when the token is not such a JWT or has no finite
    numeric `exp`: the token is then used until the server answers 401.
    """
    parts = token.split(".") if isinstance(token, str) and token.isascii() else []
    if len(parts) != 3:
        return None
    try:
        header, claims = _jwt_segment(parts[0]), _jwt_segment(parts[1])
    except (ValueError, binascii.Error):  # UnicodeDecodeError and JSON errors are ValueErrors
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return None
    try:
        seconds = float(exp)
    except OverflowError:  # an integer beyond any float
        return None
    return seconds if math.isfinite(seconds) else None


def parse_login(response: Response) -> LoginResult:
    """The JWT from ``{"token": "<JWT>"}``, with its expiry when it carries one."""
    data = expect_object(decode_json(response, secret=True), "the login response", secret=True)
    token = data.get("token")
    if not isinstance(token, str) or not token:
        raise errors.ParseError("the login response carries no token", path="$.token")
    return LoginResult(token=token, expires_at=jwt_expiry(token))


# -- genres -------------------------------------------------------------------------------


def build_genres(base_url: str) -> Request:
    """``GET /genres/`` (no authentication)."""
    return Request("GET", join_url(base_url, "genres") + "/", provider=PROVIDER, auth=False)


def parse_genres(response: Response) -> list[Genre]:
    """The genres from ``{"genres": [{"name", "subgenres"}]}``."""
    data = expect_object(decode_json(response), "the genres response")
    if "genres" not in data:
        raise errors.ParseError("a genres response without its 'genres' list", body=data)
    return list(structure(data.get("genres", []), tuple[Genre, ...], path="$.genres"))


# -- musics -------------------------------------------------------------------------------


def _check_fraction(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.ValidationError(field, f"must be a number, got {value!r}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise errors.ValidationError(field, f"must be a fraction in [0, 1], got {value}")
    return float(value)


def validate_movements(movements: Sequence[Movement]) -> list[dict[str, Any]]:
    """Check every movement and return the wire form; ValidationError names ``structure[i].x``."""
    if not movements:
        raise errors.ValidationError("structure", "must contain at least one movement")
    wire: list[dict[str, Any]] = []
    for index, movement in enumerate(movements):
        field = f"structure[{index}]"
        if not isinstance(movement, Movement):
            raise errors.ValidationError(field, f"must be a Movement, got {movement!r}")
        item: dict[str, Any] = {
            "start": _check_fraction(f"{field}.start", movement.start),
            "duration": _check_fraction(f"{field}.duration", movement.duration),
        }
        if movement.energy is not None and movement.movement is not None:
            raise errors.ValidationError(
                f"{field}.energy", "a movement takes an energy or a movement type, not both"
            )
        # Seed 000's own create example sends movements with neither: only start and duration.
        if movement.energy is not None:
            if movement.energy not in Energy.__members__.values():
                allowed = ", ".join(e.value for e in Energy)
                raise errors.ValidationError(
                    f"{field}.energy", f"must be one of {allowed}, got {movement.energy!r}"
                )
            item["energy"] = Energy(movement.energy).value
        elif movement.movement is not None:
            item["movement"] = check_str(
                f"{field}.movement", movement.movement, max_length=MAX_MOVEMENT_LENGTH
            )
        wire.append(item)
    return wire


def build_create_music(
    base_url: str,
    *,
    genre: str,
    subgenre: str,
    duration_ms: int,
    structure: Structure | Sequence[Movement] | str,
    crop: bool | None = None,
    fadeout_ms: int | None = None,
    voices_volume: int | None = None,
) -> Request:
    """``POST /musics``; ValidationError (nothing sent) when an argument breaks a rule."""
    body: dict[str, Any] = {
        "genre": check_str("genre", genre, max_length=MAX_GENRE_LENGTH),
        "subgenre": check_str("subgenre", subgenre, max_length=MAX_GENRE_LENGTH),
        "duration_ms": check_int(
            "duration_ms", duration_ms, minimum=MIN_DURATION_MS, maximum=MAX_DURATION_MS
        ),
        "structure": validate_movements(movements_of(structure)),
    }
    if crop is not None:
        if not isinstance(crop, bool):
            raise errors.ValidationError("crop", f"must be True or False, got {crop!r}")
        body["crop"] = crop
    if fadeout_ms is not None:
        body["fadeout_ms"] = check_int(
            "fadeout_ms", fadeout_ms, minimum=MIN_FADEOUT_MS, maximum=body["duration_ms"]
        )
    if voices_volume is not None:
        body["voices_volume"] = check_int("voices_volume", voices_volume)
    return Request("POST", join_url(base_url, "musics"), provider=PROVIDER, json=body)


def parse_music(response: Response, *, base_url: str | None = None) -> Music:
    """A `Music` (schema) from the create or schema endpoint, with its mp3 URL.

    The create answer's ``mp3_uri`` (iMuze's Ruby client plays ``"http:" + mp3_uri``) is where
    the mp3 is; without one, ``<base>/musics/<id>/mp3``.
    """
    data = decode_json(response)
    music = structure(data, Music)
    if not base_url:
        return music
    mp3_uri = data.get("mp3_uri") if isinstance(data, dict) else None
    return with_mp3_url(music, base_url, mp3_uri if isinstance(mp3_uri, str) else None)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an http(s) URL, the port filled in; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def with_mp3_url(music: Music, base_url: str, mp3_uri: str | None = None) -> Music:
    """``music`` with ``mp3_url``: `mp3_uri` resolved against `base_url`, else the engine's
    ``GET /musics/:id/mp3``.

    ``mp3_auth`` (whether the download carries the account's token) is True only when the
    URL is on the engine's own scheme, host and port: the token never goes to another host.
    A `mp3_uri` that does not resolve to an http(s) URL is ignored.
    """
    default = join_url(base_url, "musics", music.id, "mp3")
    url = urljoin(base_url, mp3_uri.strip()) if mp3_uri and mp3_uri.strip() else default
    origin = _origin(url)
    if origin is None:
        url, origin = default, _origin(default)
    return attrs.evolve(music, mp3_url=url, mp3_auth=origin == _origin(base_url))


def build_schema(base_url: str, music_id: str) -> Request:
    """``GET /musics/:id/schema``."""
    check_str("music_id", music_id)
    return Request("GET", join_url(base_url, "musics", music_id, "schema"), provider=PROVIDER)


def build_mp3(base_url: str, music_id: str, *, probe: bool = False) -> Request:
    """``GET /musics/:id/mp3``; with ``probe`` only its first byte (a readiness check)."""
    check_str("music_id", music_id)
    request = Request("GET", join_url(base_url, "musics", music_id, "mp3"), provider=PROVIDER)
    return request.with_header("Range", "bytes=0-0") if probe else request


def rendering(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an mp3 answer says "not rendered yet" (202, or 404 with Retry-After)."""
    return status == 202 or (status == 404 and "Retry-After" in headers)


def music_not_found(music_id: str, status: int, url: str) -> errors.NotFoundError:
    """The error for an mp3 answer that says the music does not exist."""
    return errors.NotFoundError(
        f"music {music_id} does not exist", status=status, provider=PROVIDER, method="GET", url=url
    )


@attrs.frozen
class MusicDriver:
    """Polls a music's mp3 with a one-byte range request until it can be fetched."""

    base_url: str
    provider: str = PROVIDER
    kind: str = "music"
    ok_statuses: Collection[int] = RENDERING_STATUSES

    def status_request(self, job_id: str) -> Request:
        """``GET /musics/:id/mp3`` with ``Range: bytes=0-0``."""
        return build_mp3(self.base_url, job_id, probe=True)

    def parse_status(
        self, job_id: str, response: Response, previous: Music | None
    ) -> JobStatus[Music]:
        """READY on 200/206, PROCESSING while rendering; a plain 404 means the music is gone."""
        result = previous or with_mp3_url(Music(id=job_id), self.base_url)
        if response.status in (200, 206):
            kind = response.content_type or ""
            if kind.startswith("text/") or response.body.lstrip()[:1] in (b"{", b"[", b"<"):
                # A proxy's error page or a JSON answer is not the audio: the music is not
                # ready, and a download would fail its format check.
                raise errors.ParseError(
                    f"music {job_id}: the mp3 probe answered {response.status} with {kind}",
                    path="$",
                    body=response.text()[:200],
                )
            return JobStatus(JobState.READY, raw_status=response.status, result=result)
        if rendering(response.status, response.headers):
            return JobStatus(JobState.PROCESSING, raw_status=response.status, result=result)
        raise music_not_found(job_id, response.status, response.request.url)

    def token_data(self, job_id: str, result: Music | None) -> dict[str, Any]:
        """The schema, so a resumed job returns it without another request."""
        if result is None:
            return {}
        data: dict[str, Any] = attrs.asdict(result, recurse=True)
        data.pop("mp3_auth", None)
        # The mp3 URL is kept only when the answer named one elsewhere (its mp3_uri).
        if data.get("mp3_url") == join_url(self.base_url, "musics", job_id, "mp3"):
            data.pop("mp3_url")
        return {k: v for k, v in data.items() if v not in (None, [], ())}

    def from_token_data(self, job_id: str, data: Mapping[str, Any]) -> Music | None:
        """The Music from `token_data`'s output (the token is re-decided from the URL's host)."""
        fields = {k: v for k, v in data.items() if k not in ("mp3_url", "mp3_auth")}
        music = structure({**fields, "id": job_id}, Music)
        mp3_url = data.get("mp3_url")
        return with_mp3_url(music, self.base_url, mp3_url if isinstance(mp3_url, str) else None)
