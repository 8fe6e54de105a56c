"""The emulated iMuze API's state and rules: users, tokens, the catalogue, songs, their files.

Pure: no aiohttp (the HTTP side is `responses` and `urls`), so tests can drive it directly. A
song is ``"processing"`` until the emulator clock passes its creation time plus its render time,
then ``"ready"``; `ImuzeState.set_status` overrides that by hand.
"""

from __future__ import annotations

import itertools
import random
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

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

__all__ = [
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "MUSICAL_MODES",
    "Arrangement",
    "ImuzeState",
    "RenderSeconds",
    "SongRecord",
    "StatusOverride",
    "User",
    "arrangement_for_tags",
    "song_problems",
]

# As iMuze's own schema (createSong.output.json of imuze/jslate) spells them: "Mixolydia".
MUSICAL_MODES = ("Ionian", "Dorian", "Phrygian", "Lydian", "Mixolydia", "Aeolian", "Locrian")
"""Values of a song's ``musical_mode``."""

MAX_TITLE = 255
# iMuze's own input schema (createSong.input.json of imuze/jslate): a title has at least 4
# characters, each an ASCII letter or a space; the schema names no maximum (255 is ours).
MIN_TITLE = 4
TITLE_PATTERN = "^[a-zA-Z ]*$"
MAX_DESIRED_LENGTH = 900
MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 25
FIRST_SONG_ID = 1001

StatusOverride = str | int | None
"""A song's raw status as forced by `ImuzeState.set_status` (None: derived from the clock)."""


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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def arrangement_for_tags(
    arrangements: Mapping[int, Arrangement], tags: Sequence[str]
) -> Arrangement | None:
    """The arrangement whose genres share the most tags (case and spaces aside), or None.

    Ties go to the lowest id, so that the same tags always give the same arrangement.
    """
    wanted = {tag.strip().lower() for tag in tags}
    best: Arrangement | None = None
    best_score = 0
    for arrangement in sorted(arrangements.values(), key=lambda item: item.id):
        score = len(wanted & {genre.lower() for genre in arrangement.genre_list})
        if score > best_score:
            best, best_score = arrangement, score
    return best


def song_problems(body: Mapping[str, Any], arrangements: Mapping[int, Arrangement]) -> list[str]:
    """Everything wrong with a ``POST /songs`` body, each message naming its field.

    An empty list means the body is valid.
    """
    problems: list[str] = []
    title = body.get("title")
    if title is None:
        problems.append("title is required")
    elif (
        not isinstance(title, str)
        or not title.strip()
        or not MIN_TITLE <= len(title) <= MAX_TITLE
        or re.fullmatch(TITLE_PATTERN, title) is None
    ):
        problems.append(
            f"title must be {MIN_TITLE} to {MAX_TITLE} characters, ASCII letters and spaces only "
            f"({TITLE_PATTERN}), not only spaces"
        )

    arrangement_id = body.get("arrangement_id")
    tags = body.get("tags")
    if arrangement_id is None:
        # Seed 001: arrangements are reached "by ids ... or by tags": without an id (missing
        # or null) the tags choose one, and a song needs one that matches.
        if not isinstance(tags, list) or not tags:
            problems.append("arrangement_id is required (or tags that choose an arrangement)")
        elif all(isinstance(tag, str) for tag in tags) and (
            arrangement_for_tags(arrangements, tags) is None
        ):
            problems.append(f"arrangement_id is missing and no arrangement matches the tags {tags}")
    elif not _is_int(arrangement_id):
        problems.append("arrangement_id must be an integer")
    elif arrangement_id not in arrangements:
        problems.append(f"arrangement_id {arrangement_id} does not exist")

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


@attrs.define
class ImuzeState(Accounts):
    """All of the emulated iMuze API's data, reachable from tests as `emu.imuze`.

    The state survives an emulator stop/start. Methods here are what tests use to arrange a
    situation (users, tokens, forced statuses) without going through HTTP.
    """

    name: ClassVar[str] = "imuze"
    prefix: ClassVar[str] = "/imuze/api/4"

    clock: Clock
    render_seconds: RenderSeconds = attrs.field(default=2.0, converter=check_render_seconds)
    """Render time of songs created from now on (a range: each song draws from it)."""
    seed: int = 0
    bitrate_kbps: int = 128
    """Bitrate of the served MP3 files."""
    token_response_style: Literal["response", "token"] = "response"
    """Shape of ``POST /tokens``: ``{"response": t}``, or ``{"token", "user_id"}`` if "token"."""
    audio_cache_limit: int = 256 * 1024 * 1024
    """Bytes of generated MP3 kept in memory (files are shared between songs of one length)."""
    count_as_string: bool = False
    """Send the lists' ``count`` as a numeric string (``"2500"``), as some deployments do."""

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
    _audio: AudioStore = attrs.field(factory=AudioStore, init=False)
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
        render_time = draw_render_seconds(self._rng, self.render_seconds)
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

    def arrangement_for_tags(self, tags: Sequence[str]) -> Arrangement | None:
        """The arrangement ``POST /songs`` chooses for these tags when no id is given."""
        return arrangement_for_tags(self.arrangements, tags)

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

    def audio(self, song: SongRecord) -> Audio:
        """The MP3 ``GET .../{key}.mp3`` serves for `song` once it is ready (shared by length)."""
        seconds = song.desired_length
        return self._audio.mp3(
            seconds,
            bitrate_kbps=self.bitrate_kbps,
            limit=self.audio_cache_limit,
            title=f"iMuze emulator ({seconds} s)",
        )

    def audio_bytes(self, song_id: int) -> bytes:
        """The exact bytes ``GET .../{key}.mp3`` serves for this song once it is ready."""
        return self.audio(self.songs[song_id]).data

    def audio_sha256(self, song_id: int) -> str:
        """Hex SHA-256 of `audio_bytes(song_id)`."""
        return self.audio(self.songs[song_id]).sha256

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
