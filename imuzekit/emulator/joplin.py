"""Emulated iMuze music engine, "joplin" (``http://joplin.imuze.io``), mounted at ``/joplin``.

Shapes follow the provider's reference page (seed 000) field for field:

======  ======================  ===============================================================
PUT     /accounts/token         ``{"email", "password"}`` -> ``{"token": "<JWT>"}``
GET     /genres/ (and /genres)  ``{"genres": [{"name", "subgenres": [...]}, ...]}``, no auth
POST    /musics                 201, the music schema (below)
GET     /musics/{id}/schema     the music schema
GET     /musics/{id}/mp3        202 ``{"id"}`` + ``Retry-After`` while rendering, then audio
======  ======================  ===============================================================

The schema is ``{"id", "genre", "subgenre", "music_engine_version", "bpm", "measure",
"duration_ms", "structure": [{"start", "duration", "energy" | "movement"}, ...]}``.

Tokens are real HS256 JWTs (joserfc, authlib's JOSE successor) signed with a per-emulator random
secret (`JoplinState.secret`), with ``sub``, ``email``, ``iat``, ``exp`` and ``jti`` claims in
Unix seconds from the emulator clock's `Clock.wall`, so
``emu.clock.advance(emu.joplin.token_ttl)`` expires them. Protected routes take the raw JWT in
``Authorization`` (``Bearer <jwt>`` works too).

A music renders like an iMuze song: its MP3 is served once the emulator clock passes its creation
time plus its render time; `JoplinState.set_ready` overrides that by hand.
"""

from __future__ import annotations

import itertools
import math
import random
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeGuard

import attrs
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import OctKey

from ._clock import Clock
from ._kit.accounts import DEMO_EMAIL, DEMO_PASSWORD, Accounts, User
from ._kit.http import (
    MAX_BODY_BYTES,
    BadJSON,
    bytes_response,
    json_error,
    json_response,
    read_json,
)
from ._kit.provider import Credentials
from ._kit.timing import RenderSeconds
from ._kit.timing import check_render_seconds as _check_render_seconds
from ._mp3 import Audio, AudioCache, mp3_bytes

__all__ = [
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "ENERGIES",
    "ENGINE_VERSION",
    "MAX_DURATION_MS",
    "MIN_DURATION_MS",
    "MOVEMENTS",
    "Genre",
    "InvalidMusic",
    "JoplinState",
    "MusicRecord",
    "Subgenre",
    "build_app",
    "music_problems",
]

ENGINE_VERSION = "joplin-2.4.1"
"""``music_engine_version`` of every schema (`JoplinState.engine_version` changes it)."""

MIN_DURATION_MS = 1_000
"""Shortest ``duration_ms`` a music may be requested with."""
MAX_DURATION_MS = 1_200_000
"""Longest ``duration_ms`` a music may be requested with (20 minutes)."""

ENERGIES = ("calm", "medium", "dynamic")
"""Values of a movement's ``energy``."""
MOVEMENTS = ("intro", "verse", "refrain", "chorus", "bridge", "outro", "break", "drop")
"""Values of a movement's ``movement`` (its type)."""

# The energy a movement type implies, so that typed movements also weigh on the tempo.
_MOVEMENT_ENERGY = {
    "intro": "calm",
    "verse": "medium",
    "refrain": "medium",
    "chorus": "dynamic",
    "bridge": "medium",
    "outro": "calm",
    "break": "calm",
    "drop": "dynamic",
}
_ENERGY_SCORE = {"calm": -1.0, "medium": 0.0, "dynamic": 1.0}
# An all-dynamic structure plays 8 % faster than the subgenre's base tempo, an all-calm one 8 %
# slower: enough to be visible in a schema, small enough to stay in the style.
_TEMPO_SWING = 0.08
# A 400 names at most this many problems: a 10,000-movement structure that is all wrong should
# not produce a megabyte error message.
_MAX_REPORTED_PROBLEMS = 5
# JWTs are a few hundred bytes; anything much longer is garbage and not worth decoding.
_MAX_TOKEN_CHARS = 4096
_JWT_HEADER = {"alg": "HS256", "typ": "JWT"}


@attrs.frozen
class Subgenre:
    """One subgenre of the catalogue, with the tempo and meter the engine plays it in."""

    name: str
    bpm: int
    """Base tempo, before the structure's energy moves it."""
    measure: str
    """Time signature, ``"4/4"``, ``"3/4"``..."""

    @property
    def beats_per_measure(self) -> int:
        """The signature's numerator."""
        return int(self.measure.partition("/")[0])


@attrs.frozen
class Genre:
    """One genre of ``GET /genres/`` and its subgenres."""

    name: str
    subgenres: tuple[Subgenre, ...]

    def subgenre(self, name: str) -> Subgenre | None:
        """The subgenre with this exact name, or None."""
        return next((sub for sub in self.subgenres if sub.name == name), None)


def _genre_catalogue() -> dict[str, Genre]:
    entries: list[tuple[str, list[tuple[str, int, str]]]] = [
        ("electronic", [("house", 124, "4/4"), ("techno", 130, "4/4"), ("ambient", 84, "4/4"),
                        ("drum-and-bass", 174, "4/4")]),
        ("classical", [("baroque", 100, "4/4"), ("romantic", 72, "4/4"), ("waltz", 90, "3/4")]),
        ("rock", [("indie", 120, "4/4"), ("hard-rock", 132, "4/4"), ("ballad", 70, "4/4")]),
        ("hip-hop", [("boom-bap", 90, "4/4"), ("trap", 140, "4/4"), ("g-funk", 96, "4/4")]),
        ("jazz", [("swing", 140, "4/4"), ("bossa-nova", 120, "4/4"), ("jazz-waltz", 138, "3/4"),
                  ("smooth", 95, "4/4")]),
        ("cinematic", [("epic", 110, "4/4"), ("suspense", 80, "4/4"), ("adventure", 120, "4/4"),
                       ("emotional", 68, "3/4")]),
        ("pop", [("dance-pop", 120, "4/4"), ("synth-pop", 115, "4/4"), ("acoustic", 100, "4/4")]),
        ("lofi", [("chillhop", 80, "4/4"), ("jazzhop", 85, "4/4"), ("sleep", 65, "4/4")]),
    ]  # fmt: skip
    return {name: Genre(name, tuple(Subgenre(*sub) for sub in subs)) for name, subs in entries}


@attrs.define
class MusicRecord:
    """A music as the emulator stores it; readiness is derived from the clock on every read."""

    id: str
    owner: int
    """Id of the user whose token created it."""
    request: dict[str, Any]
    """The request body as received (validated)."""
    schema: dict[str, Any]
    """What ``POST /musics`` and ``GET /musics/{id}/schema`` answer."""
    created_at: float
    """Emulator clock time (`Clock.now`) of creation."""
    render_seconds: float
    fadeout_ms: int
    """Requested fade-out (0 when none), written into the MP3's ID3 tag."""
    ready_override: bool | None = None
    """Readiness forced by `JoplinState.set_ready`, used as is while not None."""

    @property
    def ready_at(self) -> float:
        """Clock time at which the MP3 becomes available (unless overridden)."""
        return self.created_at + self.render_seconds

    @property
    def duration_ms(self) -> int:
        """The rendered duration (the schema's ``duration_ms``), what the MP3 lasts."""
        value: int = self.schema["duration_ms"]
        return value

    @property
    def bpm(self) -> int:
        """The schema's tempo."""
        value: int = self.schema["bpm"]
        return value


class InvalidMusic(ValueError):
    """A music request the API answers with 400; the message names the offending fields."""


# --------------------------------------------------------------------------------------------
# Validation and composition


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_unit_number(value: object) -> bool:
    # bool is an int subclass; NaN fails the comparison, so Python's lenient NaN/Infinity JSON
    # literals are rejected too.
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _movement_problems(index: int, movement: object) -> list[str]:
    where = f"structure[{index}]"
    if not isinstance(movement, dict):
        return [f"{where} must be an object with start, duration and energy or movement"]
    problems = [
        f"{where}.{field} must be a number from 0 to 1"
        for field in ("start", "duration")
        if not _is_unit_number(movement.get(field))
    ]
    energy, kind = movement.get("energy"), movement.get("movement")
    if energy is not None and kind is not None:
        problems.append(f"{where} must have either energy or movement, not both")
    elif energy is None and kind is None:
        problems.append(f"{where} must have an energy ({', '.join(ENERGIES)}) or a movement")
    elif energy is not None and energy not in ENERGIES:
        problems.append(f"{where}.energy must be one of {', '.join(ENERGIES)}")
    elif kind is not None and kind not in MOVEMENTS:
        problems.append(f"{where}.movement must be one of {', '.join(MOVEMENTS)}")
    return problems


def music_problems(body: Mapping[str, Any], genres: Mapping[str, Genre]) -> list[str]:
    """Everything wrong with a ``POST /musics`` body, each message starting with its field.

    An empty list means the body is valid. Unknown fields are ignored, like the API does.
    """
    problems: list[str] = []
    genre_name, subgenre_name = body.get("genre"), body.get("subgenre")
    genre = genres.get(genre_name) if isinstance(genre_name, str) else None
    if genre_name is None:
        problems.append("genre is required")
    elif genre is None:
        problems.append(f"genre must be one of {', '.join(genres)} (see GET /genres/)")
    if subgenre_name is None:
        problems.append("subgenre is required")
    elif not isinstance(subgenre_name, str):
        problems.append("subgenre must be a string")
    elif genre is not None and genre.subgenre(subgenre_name) is None:
        names = ", ".join(sub.name for sub in genre.subgenres)
        problems.append(f"subgenre must be a subgenre of {genre.name}: one of {names}")

    duration = body.get("duration_ms")
    # The bound of fadeout_ms: the requested duration when that one is valid.
    fadeout_limit = MAX_DURATION_MS
    if duration is None:
        problems.append("duration_ms is required")
    elif _is_int(duration) and MIN_DURATION_MS <= duration <= MAX_DURATION_MS:
        fadeout_limit = duration
    else:
        problems.append(
            f"duration_ms must be an integer from {MIN_DURATION_MS} to {MAX_DURATION_MS}"
        )

    structure = body.get("structure")
    if structure is None:
        problems.append("structure is required")
    elif not isinstance(structure, list) or not structure:
        problems.append("structure must be a non-empty list of movements")
    else:
        for index, movement in enumerate(structure):
            problems += _movement_problems(index, movement)
            if len(problems) >= _MAX_REPORTED_PROBLEMS:
                break

    crop = body.get("crop")
    if crop is not None and not isinstance(crop, bool):
        problems.append("crop must be a boolean")
    fadeout = body.get("fadeout_ms")
    if fadeout is not None and not (_is_int(fadeout) and 0 <= fadeout <= fadeout_limit):
        problems.append("fadeout_ms must be an integer from 0 to duration_ms")
    volume = body.get("voices_volume")
    if volume is not None and not _is_int(volume):
        problems.append("voices_volume must be an integer")
    return problems


def _compose_schema(
    music_id: str,
    genre: Genre,
    subgenre: Subgenre,
    duration_ms: int,
    structure: Sequence[Mapping[str, Any]],
    *,
    crop: bool,
    engine_version: str,
) -> dict[str, Any]:
    """The engine's answer: the movements laid end to end, a tempo and a whole-measure length."""
    weights = [float(movement["duration"]) for movement in structure]
    total = sum(weights)
    if total <= 0:
        # Every duration is 0: the only fair reading is equal shares.
        weights, total = [1.0] * len(weights), float(len(weights))

    # The tempo follows the duration-weighted energy of the structure.
    energies = [m.get("energy") or _MOVEMENT_ENERGY[m["movement"]] for m in structure]
    score = sum(w * _ENERGY_SCORE[e] for w, e in zip(weights, energies, strict=True)) / total
    bpm = max(1, round(subgenre.bpm * (1 + _TEMPO_SWING * score)))

    if crop:
        rendered_ms = duration_ms
    else:
        # A song ends on a bar line: round up to whole measures. The epsilon keeps a duration
        # that already is a whole number of measures from gaining one through float noise.
        measure_ms = subgenre.beats_per_measure * 60_000 / bpm
        measures = math.ceil(duration_ms / measure_ms - 1e-9)
        rendered_ms = max(duration_ms, round(measures * measure_ms))

    # The requested starts are not placements: movements play in order, back to back, so each
    # start is the running sum of the normalised durations and together they tile [0, 1].
    # Rounded to a millionth of the whole, as an engine would print them, rather than
    # showing float noise such as 0.49999999999999994.
    starts = [0.0, *(round(acc / total, 6) for acc in itertools.accumulate(weights[:-1]))]
    ends = [*starts[1:], 1.0]
    laid_out = []
    for movement, start, end in zip(structure, starts, ends, strict=True):
        item: dict[str, Any] = {"start": start, "duration": round(end - start, 6)}
        if movement.get("energy") is not None:
            item["energy"] = movement["energy"]
        else:
            item["movement"] = movement["movement"]
        laid_out.append(item)

    return {
        "id": music_id,
        "genre": genre.name,
        "subgenre": subgenre.name,
        "music_engine_version": engine_version,
        "bpm": bpm,
        "measure": subgenre.measure,
        "duration_ms": rendered_ms,
        "structure": laid_out,
    }


# --------------------------------------------------------------------------------------------
# State


def _key(secret: bytes) -> OctKey:
    return OctKey.import_key(secret)


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

    clock: Clock
    render_seconds: RenderSeconds = attrs.field(default=2.0, converter=_check_render_seconds)
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
    genres: dict[str, Genre] = attrs.field(factory=_genre_catalogue, init=False)
    """The catalogue of ``GET /genres/``, by name."""
    musics: dict[str, MusicRecord] = attrs.field(factory=dict, init=False)
    """Every music, by id."""
    secret: bytes = attrs.field(factory=lambda: secrets.token_bytes(32), init=False, repr=False)
    """The HS256 signing key of this emulator's tokens (`revoke_tokens` replaces it)."""
    api_token: str = attrs.field(default="", init=False)
    """The pre-issued token of the demo user (``emu.credentials["joplin"].token``)."""

    _rng: random.Random = attrs.field(init=False)
    _user_ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _audio: AudioCache = attrs.field(factory=AudioCache, init=False)

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
        return jwt.encode(_JWT_HEADER, claims, _key(self.secret), algorithms=["HS256"])

    def check_token(self, token: str) -> User | str:
        """The account a token authenticates, or why it does not (``"Token expired"``, ...).

        Never raises, whatever the token holds.
        """
        if not token:
            return "Missing token"
        if len(token) > _MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 2:
            return "Invalid token"
        try:
            decoded = jwt.decode(token, _key(self.secret), algorithms=["HS256"])
        # joserfc raises JoseError subclasses for what it recognises, and plain ValueError,
        # TypeError or binascii errors on some garbage: any failure means "not our token".
        except Exception:
            return "Invalid token"
        # Belt and braces: only HS256 is allowed, but the header is attacker-controlled.
        if decoded.header.get("alg") != "HS256":
            return "Invalid token"
        claims = decoded.claims
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
            raise InvalidMusic("; ".join(problems[:_MAX_REPORTED_PROBLEMS]))
        genre = self.genres[request["genre"]]
        subgenre = genre.subgenre(request["subgenre"])
        assert subgenre is not None  # checked by music_problems
        music_id = uuid.UUID(int=self._rng.getrandbits(128), version=4).hex
        schema = _compose_schema(
            music_id,
            genre,
            subgenre,
            request["duration_ms"],
            request["structure"],
            crop=bool(request.get("crop", False)),
            engine_version=self.engine_version,
        )
        render = self.render_seconds
        music = MusicRecord(
            id=music_id,
            owner=self.demo_user.id if owner is None else owner,
            request=dict(request),
            schema=schema,
            created_at=self.clock.now(),
            render_seconds=self._rng.uniform(*render) if isinstance(render, tuple) else render,
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

    def _audio_for(self, music: MusicRecord) -> Audio:
        # The writer only emits silent frames, so a fade-out cannot be heard: it is recorded in
        # the tag instead, where a test (or a curious user) can read it back.
        return self._audio.get(
            (music.duration_ms, music.fadeout_ms, music.bpm, self.bitrate_kbps),
            lambda: mp3_bytes(
                music.duration_ms / 1000,
                bitrate_kbps=self.bitrate_kbps,
                id3_title=f"joplin emulator ({music.duration_ms} ms)",
                id3_text={"TBPM": str(music.bpm)},
                id3_user_text={"fadeout_ms": str(music.fadeout_ms)},
            ),
            limit=self.audio_cache_limit,
        )

    def audio_bytes(self, music_id: str) -> bytes:
        """The exact bytes ``GET /musics/{id}/mp3`` serves once the music is ready."""
        return self._audio_for(self.musics[music_id]).data

    def audio_sha256(self, music_id: str) -> str:
        """Hex SHA-256 of `audio_bytes(music_id)`."""
        return self._audio_for(self.musics[music_id]).sha256

    # --- HTTP -------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """Build this provider's application (see `build_app`)."""
        return build_app(self)


# ------------------------------------------------------------------------------------------------
# HTTP handlers

_STATE = web.AppKey("joplin_state", JoplinState)


def _state(request: web.Request) -> JoplinState:
    return request.app[_STATE]


def _not_found() -> web.Response:
    return json_error(404, "Not found")


def _bad_request(message: str) -> web.Response:
    return json_error(400, message)


def _authenticate(request: web.Request, state: JoplinState) -> User | web.Response:
    """The caller's account, or the 401 to answer."""
    raw = request.headers.get("Authorization", "").strip()
    scheme, _, rest = raw.partition(" ")
    if rest and scheme.lower() in ("bearer", "jwt"):
        raw = rest.strip()
    result = state.check_token(raw)
    if isinstance(result, User):
        return result
    return json_error(401, f"Unauthorized: {result.lower()}")


async def _put_token(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        body = await read_json(request)
    except BadJSON as exc:
        return _bad_request(str(exc))
    if not isinstance(body, dict):
        return _bad_request('Request body must be a JSON object: {"email": ..., "password": ...}')
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not email:
        return _bad_request("email is required and must be a non-empty string")
    if not isinstance(password, str) or not password:
        return _bad_request("password is required and must be a non-empty string")
    try:
        user = state.user_by_email(email)
    except KeyError:
        return json_error(401, "Invalid email or password")
    if not secrets.compare_digest(user.password.encode(), password.encode()):
        return json_error(401, "Invalid email or password")
    return json_response({"token": state.issue_token(user.email)})


async def _list_genres(request: web.Request) -> web.Response:
    state = _state(request)
    genres = [
        {"name": genre.name, "subgenres": [sub.name for sub in genre.subgenres]}
        for genre in state.genres.values()
    ]
    return json_response({"genres": genres})


async def _create_music(request: web.Request) -> web.Response:
    state = _state(request)
    user = _authenticate(request, state)
    if isinstance(user, web.Response):
        return user
    try:
        body = await read_json(request)
    except BadJSON as exc:
        return _bad_request(str(exc))
    if not isinstance(body, dict):
        return _bad_request("Request body must be a JSON object")
    try:
        music = state.create_music(body, owner=user.id)
    except InvalidMusic as exc:
        return _bad_request(str(exc))
    return json_response(music.schema, status=201)


def _owned_music(request: web.Request, state: JoplinState) -> MusicRecord | web.Response:
    user = _authenticate(request, state)
    if isinstance(user, web.Response):
        return user
    music = state.musics.get(request.match_info["id"])
    # Another user's music is as absent as a missing one: ids must not leak.
    if music is None or music.owner != user.id:
        return _not_found()
    return music


async def _music_schema(request: web.Request) -> web.Response:
    state = _state(request)
    music = _owned_music(request, state)
    if isinstance(music, web.Response):
        return music
    return json_response(music.schema)


async def _music_mp3(request: web.Request) -> web.Response:
    state = _state(request)
    music = _owned_music(request, state)
    if isinstance(music, web.Response):
        return music
    if not state.is_ready(music):
        # The reference documents this route's body as {"id": ...}: that is the "accepted,
        # still rendering" answer; the MP3 itself comes once rendering is over.
        return json_response(
            {"id": music.id},
            status=202,
            headers={"Retry-After": str(state.retry_after_seconds)},
        )
    audio = state._audio_for(music)
    return bytes_response(request, audio.data, content_type="audio/mpeg", etag=audio.etag)


def build_app(state: JoplinState) -> web.Application:
    """Build the joplin application over `state` (mounted by the emulator at its prefix)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_STATE] = state
    app.router.add_put("/accounts/token", _put_token)
    app.router.add_get("/genres/", _list_genres)
    app.router.add_get("/genres", _list_genres)
    app.router.add_post("/musics", _create_music)
    app.router.add_get("/musics/{id}/schema", _music_schema)
    app.router.add_get("/musics/{id}/mp3", _music_mp3)
    return app
