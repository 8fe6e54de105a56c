"""The emulated joplin engine's state: accounts, HS256 JWTs, musics and their MP3s.

Pure: no aiohttp (the HTTP side is `responses` and `urls`), so tests can drive it directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import math
import random
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from imuzekit.emulator._clock import Clock
from imuzekit.emulator._kit.accounts import DEMO_EMAIL, DEMO_PASSWORD, Accounts, User
from imuzekit.emulator._kit.media import AudioStore
from imuzekit.emulator._kit.provider import Credentials
from imuzekit.emulator._kit.timing import (
    RenderSeconds,
    check_render_seconds,
    draw_render_seconds,
)
from imuzekit.emulator._mp3 import Audio

from .models import (
    ENGINE_VERSION,
    MAX_REPORTED_PROBLEMS,
    Genre,
    InvalidMusic,
    MusicRecord,
    compose_schema,
    genre_catalogue,
    music_problems,
)

__all__ = ["DEMO_EMAIL", "DEMO_PASSWORD", "JoplinState"]

# JWTs are a few hundred bytes; anything much longer is garbage and not worth decoding.
_MAX_TOKEN_CHARS = 4096
_JWT_HEADER = {"alg": "HS256", "typ": "JWT"}
# A JWS compact segment: base64url without padding (RFC 7515, section 2).
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(segment: str) -> bytes:
    """Decode one segment; `ValueError` when it is not unpadded base64url."""
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not a base64url segment")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_segment(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _hs256(secret: bytes, signing_input: str) -> bytes:
    return hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()


def _check_ttl(value: float) -> float:
    if isinstance(value, bool) or not (
        isinstance(value, int | float) and value >= 1 and math.isfinite(value)
    ):
        raise ValueError(f"token_ttl must be a finite number of seconds >= 1, got {value!r}")
    return float(value)


@attrs.define
class JoplinState(Accounts):
    """All of the emulated joplin API's data, reachable from tests as `emu.joplin`.

    The state survives an emulator stop/start. Methods here are what tests use to arrange a
    situation (users, tokens, forced readiness, seeded musics) without going through HTTP.
    """

    name: ClassVar[str] = "joplin"
    prefix: ClassVar[str] = "/joplin"
    media_prefix: ClassVar[str] = "/musics"
    """Where the create answer's ``mp3_uri`` points: ``//<host>/musics/<id>/mp3``, off the
    ``/joplin`` prefix, because iMuze's Ruby client takes the id from the URI's fifth
    ``/``-separated piece (the real engine serves it at its root)."""

    clock: Clock
    render_seconds: RenderSeconds = attrs.field(default=2.0, converter=check_render_seconds)
    """Render time of musics created from now on (a range: each music draws from it)."""
    seed: int = 0
    token_ttl: float = attrs.field(default=3600.0, converter=_check_ttl)
    """Lifetime in seconds of tokens issued from now on (whole Unix seconds: ``exp`` is
    ``floor(wall + ttl)``, so ``emu.clock.advance(token_ttl)`` always expires a token)."""
    bitrate_kbps: int = 128
    """Bitrate of the served MP3 files."""
    engine_version: str = ENGINE_VERSION
    """``music_engine_version`` of musics created from now on."""
    audio_cache_limit: int = 256 * 1024 * 1024
    """Bytes of generated MP3 kept in memory (files are shared between musics of one length)."""
    retry_after_seconds: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    """The ``Retry-After`` sent with the 202 of a music still rendering (whole seconds, as HTTP
    has them). Clients honour it, so tests with short render times set 0 to poll at their own
    pace instead of waiting a second."""

    users: dict[int, User] = attrs.field(factory=dict, init=False)
    genres: dict[str, Genre] = attrs.field(factory=genre_catalogue, init=False)
    """The catalogue of ``GET /genres/``, by name."""
    musics: dict[str, MusicRecord] = attrs.field(factory=dict, init=False)
    """Every music, by id."""
    secret: bytes = attrs.field(factory=lambda: secrets.token_bytes(32), init=False, repr=False)
    """The HS256 signing key of this emulator's tokens (`revoke_tokens` replaces it)."""
    api_token: str = attrs.field(default="", init=False)
    """The pre-issued token of the demo user (``emu.credentials["joplin"].token``)."""

    _rng: random.Random = attrs.field(init=False)
    _user_ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _audio: AudioStore = attrs.field(factory=AudioStore, init=False)

    def __attrs_post_init__(self) -> None:
        # A different stream from iMuze's (same seed) so that the two do not draw in lockstep.
        self._rng = random.Random(f"joplin-{self.seed}")
        demo = self.add_user(DEMO_EMAIL, DEMO_PASSWORD)
        self.api_token = self.issue_token(demo.email)

    # --- accounts ---------------------------------------------------------------------------

    def issue_token(self, email: str = DEMO_EMAIL, *, ttl: float | None = None) -> str:
        """Sign a new JWT for the account with this email and return it.

        `ttl` overrides `token_ttl` for this token; a negative value mints an already expired
        token.
        """
        user = self.user_by_email(email)
        now = self.clock.wall()
        lifetime = self.token_ttl if ttl is None else ttl
        claims = {
            "sub": str(user.id),
            "email": user.email,
            "iat": math.floor(now),
            "exp": math.floor(now + lifetime),
            # Two tokens issued within one second must still differ.
            "jti": secrets.token_hex(8),
        }
        signing_input = f"{_json_segment(_JWT_HEADER)}.{_json_segment(claims)}"
        return f"{signing_input}.{_b64url(_hs256(self.secret, signing_input))}"

    def check_token(self, token: str) -> User | str:
        """The account a token authenticates, or why it does not (``"Token expired"``, ...).

        Never raises, whatever the token holds.
        """
        if not token:
            return "Missing token"
        if len(token) > _MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 2:
            return "Invalid token"
        header_b64, claims_b64, signature_b64 = token.split(".")
        try:
            signature = _unb64url(signature_b64)
        except (ValueError, binascii.Error):
            return "Invalid token"
        # The signature first (in constant time): only our own tokens get their JSON parsed.
        if not hmac.compare_digest(signature, _hs256(self.secret, f"{header_b64}.{claims_b64}")):
            return "Invalid token"
        try:
            header = json.loads(_unb64url(header_b64))
            claims = json.loads(_unb64url(claims_b64))
        except (ValueError, binascii.Error):
            return "Invalid token"
        # Only HS256 is allowed, and no critical extension is understood (RFC 7515, 4.1.11).
        if not isinstance(header, dict) or header.get("alg") != "HS256" or "crit" in header:
            return "Invalid token"
        if not isinstance(claims, dict):
            return "Invalid token"
        sub, exp = claims.get("sub"), claims.get("exp")
        if not (isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) <= 18):
            return "Invalid token"
        if not (isinstance(exp, int | float) and not isinstance(exp, bool)):
            return "Invalid token"
        # RFC 7519: the token must not be accepted on or after its exp.
        if self.clock.wall() >= exp:
            return "Token expired"
        user = self.users.get(int(sub))
        return user if user is not None else "Invalid token"

    def user_for_token(self, token: str) -> User | None:
        """The account a token authenticates, or None (unsigned, forged, expired, revoked)."""
        result = self.check_token(token)
        return result if isinstance(result, User) else None

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far by replacing the signing `secret`.

        The pre-issued token is re-issued the next time `credentials()` is read.
        """
        self.secret = secrets.token_bytes(32)

    def reissue_api_token(self) -> str:
        """Issue a new demo-user token and make it the pre-issued `api_token`."""
        self.api_token = self.issue_token(DEMO_EMAIL)
        return self.api_token

    def credentials(self) -> Credentials:
        """Demo credentials: email, password and a currently valid pre-issued token.

        The pre-issued token is re-issued first if it expired or was revoked, so this always
        hands out a token the API accepts right now.
        """
        if self.user_for_token(self.api_token) is None:
            self.reissue_api_token()
        return Credentials(email=DEMO_EMAIL, password=DEMO_PASSWORD, token=self.api_token)

    # --- musics -----------------------------------------------------------------------------

    @property
    def musics_created(self) -> int:
        """Number of musics created since the emulator was built."""
        return len(self.musics)

    def create_music(self, request: Mapping[str, Any], *, owner: int | None = None) -> MusicRecord:
        """Create a music from a ``POST /musics`` body, as the API does, and return its record.

        `owner` is a user id (the demo user by default). Raises `InvalidMusic` (a ValueError
        naming the fields) when the API would answer 400.
        """
        problems = music_problems(request, self.genres)
        if problems:
            raise InvalidMusic("; ".join(problems[:MAX_REPORTED_PROBLEMS]))
        genre = self.genres[request["genre"]]
        subgenre = genre.subgenre(request["subgenre"])
        assert subgenre is not None  # checked by music_problems
        music_id = uuid.UUID(int=self._rng.getrandbits(128), version=4).hex
        schema = compose_schema(
            music_id,
            genre,
            subgenre,
            request["duration_ms"],
            request["structure"],
            crop=bool(request.get("crop", False)),
            engine_version=self.engine_version,
        )
        music = MusicRecord(
            id=music_id,
            owner=self.demo_user.id if owner is None else owner,
            request=dict(request),
            schema=schema,
            created_at=self.clock.now(),
            render_seconds=draw_render_seconds(self._rng, self.render_seconds),
            fadeout_ms=request.get("fadeout_ms") or 0,
        )
        self.musics[music_id] = music
        return music

    def is_ready(self, music: MusicRecord | str) -> bool:
        """Whether the music's MP3 is served: the override if set, else the clock decides."""
        record = self.musics[music] if isinstance(music, str) else music
        if record.ready_override is not None:
            return record.ready_override
        return self.clock.now() >= record.ready_at

    def set_ready(self, music_id: str, value: bool | None) -> None:
        """Force a music's MP3 to be served (True) or still rendering (False); None clears it."""
        self.musics[music_id].ready_override = value

    def schema(self, music_id: str) -> dict[str, Any]:
        """The schema ``GET /musics/{id}/schema`` answers (a copy)."""
        schema = self.musics[music_id].schema
        return {**schema, "structure": [dict(item) for item in schema["structure"]]}

    # --- files ------------------------------------------------------------------------------

    def audio(self, music: MusicRecord) -> Audio:
        """The MP3 ``GET /musics/{id}/mp3`` serves once `music` is ready.

        The writer only emits silent frames, so a fade-out cannot be heard: it is recorded in
        the tag instead, where a test (or a curious user) can read it back.
        """
        return self._audio.mp3(
            music.duration_ms / 1000,
            bitrate_kbps=self.bitrate_kbps,
            limit=self.audio_cache_limit,
            title=f"joplin emulator ({music.duration_ms} ms)",
            id3_text={"TBPM": str(music.bpm)},
            id3_user_text={"fadeout_ms": str(music.fadeout_ms)},
        )

    def audio_bytes(self, music_id: str) -> bytes:
        """The exact bytes ``GET /musics/{id}/mp3`` serves once the music is ready."""
        return self.audio(self.musics[music_id]).data

    def audio_sha256(self, music_id: str) -> str:
        """Hex SHA-256 of `audio_bytes(music_id)`."""
        return self.audio(self.musics[music_id]).sha256
