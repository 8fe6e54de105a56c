"""Emulated iMuze API v4 (``https://api.imuze.io/api/4``), mounted at ``/imuze/api/4``.

Shapes follow the provider's reference page (seed 001) field for field:

======  =========================================  ==============================================
POST    /tokens                                    ``{"token": {"email", "password"}}`` -> token
GET     /arrangements                              ``{"count", "response": [{"id", "name"}]}``
GET     /arrangements/{id}                         ``{"description", "image_url", "id", ...}``
POST    /songs                                     201, the create shape (``mp3``, no status)
GET     /songs[?page=&per_page=]                   ``{"count", "response": [song, ...]}``
GET     /songs/{id}                                one song with ``status`` and ``timeline_url``
GET     /files/songs/{id}/{key}.mp3                the audio (no auth: a signed CDN URL)
GET     /files/songs/{id}/{key}.json               the timeline
======  =========================================  ==============================================

Everything but ``/tokens`` and ``/files/...`` needs ``Authorization: <token>`` (``Token <t>`` and
``Bearer <t>`` work too). A song is ``"processing"`` until the emulator clock passes its creation
time plus its render time, then ``"ready"``; `ImuzeState.set_status` overrides that by hand.
"""

from __future__ import annotations

import itertools
import random
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs
from aiohttp import web

from ._app import (
    MAX_BODY_BYTES,
    BadJSON,
    Credentials,
    bytes_response,
    json_error,
    json_response,
    read_json,
)
from ._clock import Clock
from ._mp3 import Audio, AudioCache, mp3_bytes

__all__ = [
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "MUSICAL_MODES",
    "Arrangement",
    "ImuzeState",
    "SongRecord",
    "User",
    "build_app",
]

DEMO_EMAIL = "demo@imuzekit.test"
"""Email of the demo user every emulator starts with."""
DEMO_PASSWORD = "imuze-demo-2024"
"""Password of the demo user."""

MUSICAL_MODES = ("Ionian", "Dorian", "Phrygian", "Lydian", "Mixolydian", "Aeolian", "Locrian")
"""Values of a song's ``musical_mode``."""

MAX_TITLE = 255
MAX_DESIRED_LENGTH = 900
MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 25
FIRST_SONG_ID = 1001

RenderSeconds = float | tuple[float, float]
"""A fixed render time, or a (low, high) range each song draws uniformly from."""

StatusOverride = str | int | None


@attrs.frozen
class User:
    """An iMuze account."""

    id: int
    email: str
    password: str


@attrs.frozen
class Arrangement:
    """One entry of the arrangement catalogue (``GET /arrangements/{id}``)."""

    id: int
    name: str
    description: str
    genre_list: tuple[str, ...]
    has_image: bool = True


@attrs.define
class SongRecord:
    """A song as the emulator stores it; `status` is derived from the clock on every read."""

    id: int
    owner: int
    """Id of the user whose token created it."""
    title: str
    tags: tuple[str, ...]
    desired_length: int
    """Duration in seconds; the served MP3 lasts exactly this long (to within a frame)."""
    arrangement_id: int
    created_at: float
    """Emulator clock time of creation."""
    render_seconds: float
    key: str
    """Unguessable token in the song's file URLs."""
    musical_mode: str
    status_override: StatusOverride = None
    """Raw status forced by `ImuzeState.set_status`, served as is while not None."""

    @property
    def ready_at(self) -> float:
        """Clock time at which the song becomes ``"ready"`` (unless overridden)."""
        return self.created_at + self.render_seconds


def _catalogue() -> dict[int, Arrangement]:
    entries = [
        ("Cinematic Strings", "Lush string ensemble with slow swells and a soaring theme, "
         "built for film scenes and trailers.", ("cinematic", "orchestral", "soundtrack"), True),
        ("Lo-Fi Study Beats", "Dusty drums, warm Rhodes chords and vinyl crackle at 80 BPM.",
         ("lo-fi", "hip-hop", "chill"), True),
        ("Indie Pop Sunrise", "Bright guitars, hand claps and a bouncy bass line.",
         ("pop", "indie"), True),
        ("Ambient Drift", "Evolving pads and soft textures without percussion.",
         ("ambient", "electronic"), False),
        ("Stadium Rock Anthem", "Driving drums, power chords and a big chorus lift.",
         ("rock", "anthem"), True),
        ("Acoustic Folk", "Finger-picked guitar, upright bass and brushed snare.",
         ("folk", "acoustic", "singer-songwriter"), True),
        ("Jazz Piano Trio", "Swinging piano, walking bass and ride cymbal.",
         ("jazz", "swing"), False),
        ("Synthwave Nights", "Retro analog synths, gated snares and arpeggios.",
         ("synthwave", "electronic", "retro"), True),
        ("Epic Trailer Percussion", "Taiko hits, braams and risers for high-impact edits.",
         ("cinematic", "percussion", "trailer"), True),
        ("Solo Piano Reverie", "Intimate felt piano, gentle rubato.",
         ("classical", "piano", "minimal"), False),
        ("Corporate Uplifting", "Plucked synths, claps and an optimistic build.",
         ("corporate", "pop", "upbeat"), True),
        ("Deep House Groove", "Four-on-the-floor kick, deep bass and chopped vocals.",
         ("house", "electronic", "dance"), True),
    ]  # fmt: skip
    return {
        index: Arrangement(index, name, description, genres, image)
        for index, (name, description, genres, image) in enumerate(entries, start=1)
    }


# A valid 1x1 grey PNG, served as every arrangement's cover so image_url stays on this server.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
    "0000000a49444154789c636800000082008177cd72b60000000049454e44ae426082"
)


def _check_render_seconds(value: RenderSeconds) -> RenderSeconds:
    if isinstance(value, tuple):
        low, high = value
        if not 0 <= low <= high:
            raise ValueError(f"render_seconds range must satisfy 0 <= low <= high, got {value!r}")
        return (float(low), float(high))
    if not value >= 0:
        raise ValueError(f"render_seconds must be >= 0, got {value!r}")
    return float(value)


class Accounts:
    """The account registry an emulated provider keeps (mixed into its state class).

    The state class declares ``users`` and ``_user_ids`` as attrs fields; this adds the ways to
    look accounts up and create them.
    """

    __slots__ = ()
    users: dict[int, User]
    _user_ids: itertools.count[int]

    @property
    def demo_user(self) -> User:
        """The demo user (``demo@imuzekit.test``)."""
        return self.user_by_email(DEMO_EMAIL)

    def add_user(self, email: str, password: str) -> User:
        """Create another account (e.g. to check that generations are private to their owner)."""
        if any(user.email.lower() == email.lower() for user in self.users.values()):
            raise ValueError(f"user {email!r} already exists")
        user = User(next(self._user_ids), email, password)
        self.users[user.id] = user
        return user

    def user_by_email(self, email: str) -> User:
        """Return the account with this email (case-insensitive); KeyError if none."""
        wanted = email.lower()
        for user in self.users.values():
            if user.email.lower() == wanted:
                return user
        raise KeyError(email)


@attrs.define
class ImuzeState(Accounts):
    """All of the emulated iMuze API's data, reachable from tests as `emu.imuze`.

    The state survives an emulator stop/start. Methods here are what tests use to arrange a
    situation (users, tokens, forced statuses) without going through HTTP.
    """

    name: ClassVar[str] = "imuze"
    prefix: ClassVar[str] = "/imuze/api/4"

    clock: Clock
    render_seconds: RenderSeconds = attrs.field(default=2.0, converter=_check_render_seconds)
    """Render time of songs created from now on (a range: each song draws from it)."""
    seed: int = 0
    bitrate_kbps: int = 128
    """Bitrate of the served MP3 files."""
    token_response_style: Literal["response", "token"] = "response"
    """Shape of ``POST /tokens``: ``{"response": t}``, or ``{"token", "user_id"}`` if "token"."""
    audio_cache_limit: int = 256 * 1024 * 1024
    """Bytes of generated MP3 kept in memory (files are shared between songs of one length)."""

    users: dict[int, User] = attrs.field(factory=dict, init=False)
    tokens: dict[str, int] = attrs.field(factory=dict, init=False)
    """Valid tokens -> user id."""
    arrangements: dict[int, Arrangement] = attrs.field(factory=_catalogue, init=False)
    songs: dict[int, SongRecord] = attrs.field(factory=dict, init=False)
    api_token: str = attrs.field(default="", init=False)
    """The pre-issued token of the demo user (``emu.credentials["imuze"].token``)."""

    _rng: random.Random = attrs.field(init=False)
    _song_ids: itertools.count[int] = attrs.field(
        factory=lambda: itertools.count(FIRST_SONG_ID), init=False
    )
    _songs_by_owner: dict[int, list[SongRecord]] = attrs.field(factory=dict, init=False)
    _audio: AudioCache = attrs.field(factory=AudioCache, init=False)
    _user_ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        demo = self.add_user(DEMO_EMAIL, DEMO_PASSWORD)
        self.api_token = self.issue_token(demo.email)

    # --- accounts ---------------------------------------------------------------------------

    def issue_token(self, email: str = DEMO_EMAIL) -> str:
        """Issue a new valid token for the account with this email and return it."""
        token = secrets.token_hex(20)
        self.tokens[token] = self.user_by_email(email).id
        return token

    def revoke_tokens(self) -> None:
        """Invalidate every token, the pre-issued `api_token` included (forces 401s and re-login).

        `reissue_api_token()` makes a fresh pre-issued token afterwards.
        """
        self.tokens.clear()

    def reissue_api_token(self) -> str:
        """Issue a new demo-user token and make it the pre-issued `api_token`."""
        self.api_token = self.issue_token(DEMO_EMAIL)
        return self.api_token

    def credentials(self) -> Credentials:
        """Demo credentials: email, password and the pre-issued token."""
        return Credentials(email=DEMO_EMAIL, password=DEMO_PASSWORD, token=self.api_token)

    def user_for_token(self, token: str) -> User | None:
        """The account a token belongs to, or None if unknown or revoked."""
        user_id = self.tokens.get(token)
        return None if user_id is None else self.users.get(user_id)

    # --- songs ------------------------------------------------------------------------------

    @property
    def songs_created(self) -> int:
        """Number of songs created since the emulator was built."""
        return len(self.songs)

    def create_song(
        self,
        *,
        title: str,
        arrangement_id: int,
        tags: Sequence[str] = (),
        desired_length: int = 60,
        owner: int | None = None,
    ) -> SongRecord:
        """Create a song directly (as ``POST /songs`` does), e.g. to seed thousands of songs.

        `owner` is a user id (the demo user by default). Inputs are trusted except that the
        arrangement must exist (KeyError otherwise).
        """
        if arrangement_id not in self.arrangements:
            raise KeyError(f"arrangement {arrangement_id} does not exist")
        owner_id = self.demo_user.id if owner is None else owner
        render = self.render_seconds
        render_time = self._rng.uniform(*render) if isinstance(render, tuple) else render
        song = SongRecord(
            id=next(self._song_ids),
            owner=owner_id,
            title=title,
            tags=tuple(tags),
            desired_length=desired_length,
            arrangement_id=arrangement_id,
            created_at=self.clock.now(),
            render_seconds=render_time,
            key=secrets.token_urlsafe(16),
            musical_mode=self._rng.choice(MUSICAL_MODES),
        )
        self.songs[song.id] = song
        self._songs_by_owner.setdefault(owner_id, []).append(song)
        return song

    def songs_of(self, user_id: int) -> Sequence[SongRecord]:
        """The user's songs, oldest first."""
        return self._songs_by_owner.get(user_id, [])

    def status(self, song: SongRecord | int) -> StatusOverride:
        """The status the API reports now: the override if set, else processing/ready."""
        record = self.songs[song] if isinstance(song, int) else song
        if record.status_override is not None:
            return record.status_override
        return "ready" if self.clock.now() >= record.ready_at else "processing"

    def is_ready(self, song: SongRecord) -> bool:
        """Whether the song's files are served (its status reads ``"ready"``)."""
        return self.status(song) == "ready"

    def set_status(self, song_id: int, value: StatusOverride) -> None:
        """Force a song's raw status (``"failed"``, ``"queued"``, anything); None clears it.

        A forced ``"ready"`` also makes its files downloadable; any other forced value hides them.
        """
        self.songs[song_id].status_override = value

    # --- files ------------------------------------------------------------------------------

    def mp3_path(self, song_id: int) -> str:
        """Absolute path (from the server root) of the song's MP3."""
        song = self.songs[song_id]
        return f"{self.prefix}/files/songs/{song.id}/{song.key}.mp3"

    def timeline_path(self, song_id: int) -> str:
        """Absolute path (from the server root) of the song's timeline JSON."""
        song = self.songs[song_id]
        return f"{self.prefix}/files/songs/{song.id}/{song.key}.json"

    def _audio_for(self, seconds: int) -> Audio:
        return self._audio.get(
            (seconds, self.bitrate_kbps),
            lambda: mp3_bytes(
                seconds, bitrate_kbps=self.bitrate_kbps, id3_title=f"iMuze emulator ({seconds} s)"
            ),
            limit=self.audio_cache_limit,
        )

    def audio_bytes(self, song_id: int) -> bytes:
        """The exact bytes ``GET .../{key}.mp3`` serves for this song once it is ready."""
        return self._audio_for(self.songs[song_id].desired_length).data

    def audio_sha256(self, song_id: int) -> str:
        """Hex SHA-256 of `audio_bytes(song_id)`."""
        return self._audio_for(self.songs[song_id].desired_length).sha256

    def timeline(self, song_id: int) -> dict[str, Any]:
        """The timeline document of a song: its sections with start/end seconds."""
        song = self.songs[song_id]
        length = float(song.desired_length)
        plan = (
            ("intro", 0.1, "calm"),
            ("verse", 0.25, "medium"),
            ("chorus", 0.2, "dynamic"),
            ("bridge", 0.15, "medium"),
            ("chorus", 0.2, "dynamic"),
            ("outro", 0.1, "calm"),
        )
        sections = []
        start = 0.0
        for name, share, energy in plan:
            end = length if name == "outro" else round(start + share * length, 3)
            sections.append({"name": name, "start": start, "end": end, "energy": energy})
            start = end
        return {
            "song_id": song.id,
            "duration": length,
            "bpm": 70 + song.id % 60,
            "musical_mode": song.musical_mode,
            "sections": sections,
        }

    # --- HTTP -------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """Build this provider's application (see `build_app`)."""
        return build_app(self)


# ------------------------------------------------------------------------------------------------
# HTTP handlers

_STATE = web.AppKey("imuze_state", ImuzeState)


def _state(request: web.Request) -> ImuzeState:
    return request.app[_STATE]


def _unauthorized() -> web.Response:
    return json_error(401, "Unauthorized")


def _not_found(message: str = "Not found") -> web.Response:
    return json_error(404, message)


def _bad_request(message: str) -> web.Response:
    return json_error(400, message)


def _parse_id(text: str) -> int | None:
    # Ids are plain decimal integers; a length cap keeps absurd values cheap and out of int().
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


def _authenticate(request: web.Request, state: ImuzeState) -> User | None:
    raw = request.headers.get("Authorization", "").strip()
    scheme, _, rest = raw.partition(" ")
    if rest and scheme.lower() in ("token", "bearer"):
        raw = rest.strip()
        # Rails' "Token token=abc" form.
        if raw.startswith("token="):
            raw = raw[len("token=") :].strip('"')
    return state.user_for_token(raw) if raw else None


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _song_summary(state: ImuzeState, song: SongRecord, origin: str) -> dict[str, Any]:
    return {
        "id": song.id,
        "title": song.title,
        "status": state.status(song),
        "mp3_url": origin + state.mp3_path(song.id),
        "arrangement_name": state.arrangements[song.arrangement_id].name,
    }


async def _post_token(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        body = await read_json(request)
    except BadJSON as exc:
        return _bad_request(str(exc))
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, dict):
        return _bad_request('token is required: {"token": {"email": ..., "password": ...}}')
    email, password = token.get("email"), token.get("password")
    if not isinstance(email, str) or not email:
        return _bad_request("token.email must be a non-empty string")
    if not isinstance(password, str) or not password:
        return _bad_request("token.password must be a non-empty string")
    try:
        user = state.user_by_email(email)
    except KeyError:
        return json_error(401, "Invalid email or password")
    if not secrets.compare_digest(user.password.encode(), password.encode()):
        return json_error(401, "Invalid email or password")
    issued = state.issue_token(user.email)
    if state.token_response_style == "token":
        return json_response({"token": issued, "user_id": user.id})
    return json_response({"response": issued})


async def _list_arrangements(request: web.Request) -> web.Response:
    state = _state(request)
    if _authenticate(request, state) is None:
        return _unauthorized()
    items = [{"id": item.id, "name": item.name} for item in state.arrangements.values()]
    return json_response({"count": len(items), "response": items})


async def _show_arrangement(request: web.Request) -> web.Response:
    state = _state(request)
    if _authenticate(request, state) is None:
        return _unauthorized()
    arrangement_id = _parse_id(request.match_info["id"])
    item = state.arrangements.get(arrangement_id) if arrangement_id is not None else None
    if item is None:
        return _not_found()
    image = f"{_origin(request)}{state.prefix}/files/arrangements/{item.id}.png"
    return json_response(
        {
            "description": item.description,
            "image_url": image if item.has_image else None,
            "id": item.id,
            "genre_list": list(item.genre_list),
            "name": item.name,
        }
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_song(body: Mapping[str, Any], state: ImuzeState) -> list[str]:
    problems: list[str] = []
    title = body.get("title")
    if title is None:
        problems.append("title is required")
    elif not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        problems.append(f"title must be a non-empty string of at most {MAX_TITLE} characters")

    arrangement_id = body.get("arrangement_id")
    if arrangement_id is None:
        problems.append("arrangement_id is required")
    elif not _is_int(arrangement_id):
        problems.append("arrangement_id must be an integer")
    elif arrangement_id not in state.arrangements:
        problems.append(f"arrangement_id {arrangement_id} does not exist")

    tags = body.get("tags")
    if tags is None:
        problems.append("tags is required")
    elif not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        problems.append("tags must be a list of strings")

    length = body.get("desired_length")
    if length is None:
        problems.append("desired_length is required")
    elif not _is_int(length) or not 1 <= length <= MAX_DESIRED_LENGTH:
        problems.append(
            f"desired_length must be an integer number of seconds from 1 to {MAX_DESIRED_LENGTH}"
        )
    return problems


async def _create_song(request: web.Request) -> web.Response:
    state = _state(request)
    user = _authenticate(request, state)
    if user is None:
        return _unauthorized()
    try:
        body = await read_json(request)
    except BadJSON as exc:
        return _bad_request(str(exc))
    if not isinstance(body, dict):
        return _bad_request("Request body must be a JSON object")
    problems = _validate_song(body, state)
    if problems:
        return _bad_request("; ".join(problems))
    song = state.create_song(
        title=body["title"],
        arrangement_id=body["arrangement_id"],
        tags=body["tags"],
        desired_length=body["desired_length"],
        owner=user.id,
    )
    origin = _origin(request)
    return json_response(
        {
            "title": song.title,
            "musical_mode": song.musical_mode,
            "arrangement_id": song.arrangement_id,
            "timeline_url": origin + state.timeline_path(song.id),
            "mp3": origin + state.mp3_path(song.id),
            "status_channel": f"songs:{song.id}",
            "id": song.id,
        },
        status=201,
    )


class _BadParam(ValueError):
    pass


def _page_param(request: web.Request, name: str, maximum: int) -> int | None:
    """The query parameter's value in 1..maximum, None if absent; `_BadParam` if invalid."""
    text = request.query.get(name)
    if text is None:
        return None
    value = _parse_id(text)
    if value is None or not 1 <= value <= maximum:
        raise _BadParam(f"{name} must be an integer from 1 to {maximum}")
    return value


async def _list_songs(request: web.Request) -> web.Response:
    state = _state(request)
    user = _authenticate(request, state)
    if user is None:
        return _unauthorized()
    try:
        page = _page_param(request, "page", 10**9)
        per_page = _page_param(request, "per_page", MAX_PER_PAGE)
    except _BadParam as exc:
        return _bad_request(str(exc))
    owned = state.songs_of(user.id)
    total = len(owned)
    if page is None and per_page is None:
        selected: Sequence[SongRecord] = owned[::-1]
    else:
        size = per_page or DEFAULT_PER_PAGE
        # Newest first without reversing the whole list: page n spans these indexes, backwards.
        stop = total - ((page or 1) - 1) * size
        selected = owned[max(0, stop - size) : stop][::-1] if stop > 0 else []
    origin = _origin(request)
    return json_response(
        {"count": total, "response": [_song_summary(state, song, origin) for song in selected]}
    )


def _owned_song(request: web.Request, state: ImuzeState, user: User) -> SongRecord | None:
    song_id = _parse_id(request.match_info["id"])
    song = state.songs.get(song_id) if song_id is not None else None
    return song if song is not None and song.owner == user.id else None


async def _show_song(request: web.Request) -> web.Response:
    state = _state(request)
    user = _authenticate(request, state)
    if user is None:
        return _unauthorized()
    song = _owned_song(request, state, user)
    if song is None:
        return _not_found()
    origin = _origin(request)
    summary = _song_summary(state, song, origin)
    summary["timeline_url"] = origin + state.timeline_path(song.id)
    return json_response(summary)


def _file_song(request: web.Request, state: ImuzeState) -> SongRecord | web.Response:
    song_id = _parse_id(request.match_info["id"])
    song = state.songs.get(song_id) if song_id is not None else None
    if song is None or not secrets.compare_digest(song.key, request.match_info["key"]):
        return _not_found()
    if not state.is_ready(song):
        return _not_found("Song is not ready")
    return song


async def _song_mp3(request: web.Request) -> web.Response:
    state = _state(request)
    song = _file_song(request, state)
    if isinstance(song, web.Response):
        return song
    audio = state._audio_for(song.desired_length)
    return bytes_response(request, audio.data, content_type="audio/mpeg", etag=audio.etag)


async def _song_timeline(request: web.Request) -> web.Response:
    state = _state(request)
    song = _file_song(request, state)
    if isinstance(song, web.Response):
        return song
    return json_response(state.timeline(song.id))


async def _arrangement_image(request: web.Request) -> web.Response:
    state = _state(request)
    arrangement_id = _parse_id(request.match_info["id"])
    item = state.arrangements.get(arrangement_id) if arrangement_id is not None else None
    if item is None or not item.has_image:
        return _not_found()
    return bytes_response(request, _PNG, content_type="image/png", etag='"imuze-cover-1"')


def build_app(state: ImuzeState) -> web.Application:
    """Build the iMuze v4 application over `state` (mounted by the emulator at its prefix)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_STATE] = state
    app.router.add_post("/tokens", _post_token)
    app.router.add_get("/arrangements", _list_arrangements)
    app.router.add_get("/arrangements/{id}", _show_arrangement)
    app.router.add_post("/songs", _create_song)
    app.router.add_get("/songs", _list_songs)
    app.router.add_get("/songs/{id}", _show_song)
    app.router.add_get("/files/songs/{id}/{key}.mp3", _song_mp3)
    app.router.add_get("/files/songs/{id}/{key}.json", _song_timeline)
    app.router.add_get("/files/arrangements/{id}.png", _arrangement_image)
    return app
