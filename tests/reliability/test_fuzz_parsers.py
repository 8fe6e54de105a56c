"""Parser fuzzing: arbitrary JSON (and XML) into every ``parse_*`` of every provider.

Each parser must answer a model or :class:`imuzekit.errors.ParseError`, never another
exception. The bodies are arbitrary JSON values, and mutations of the recorded samples in
``tests/samples/`` (a subtree replaced, a key dropped, a value's type changed), which reach
deeper into the parsers than random values do. Each example is fed to every parser of its
provider, so every parser sees every example (2,000 per provider under the ``reliability``
profile). Models round-trip through the converter, built by hypothesis or parsed from samples.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imuzekit import errors
from imuzekit._http import Response
from imuzekit.providers import _common
from imuzekit.providers.imuze import _api as imuze_api
from imuzekit.providers.imuze import models as imuze_models
from imuzekit.providers.joplin import _api as joplin_api
from imuzekit.providers.joplin import models as joplin_models
from imuzekit.providers.mureka import _api as mureka_api
from imuzekit.providers.mureka import models as mureka_models
from imuzekit.providers.musescore import _api as musescore_api
from imuzekit.providers.musescore import models as musescore_models
from tests.conftest import SAMPLES, response_for

BASE = "https://api.example.test/base"
Parser = Callable[[Response], Any]

PARSERS: dict[str, dict[str, Parser]] = {
    "imuze": {
        "parse_login": imuze_api.parse_login,
        "parse_arrangements": imuze_api.parse_arrangements,
        "parse_arrangement": imuze_api.parse_arrangement,
        "parse_song": imuze_api.parse_song,
        "parse_songs": imuze_api.parse_songs,
        "SongDriver.parse_status": lambda r: imuze_api.SongDriver(BASE).parse_status("1", r, None),
        "SongDriver.parse_batch": lambda r: imuze_api.SongDriver(BASE).parse_batch(r, 1, {}),
    },
    "joplin": {
        "parse_login": joplin_api.parse_login,
        "parse_genres": joplin_api.parse_genres,
        "parse_music": joplin_api.parse_music,
        "parse_music(base_url)": lambda r: joplin_api.parse_music(r, base_url=BASE),
        "MusicDriver.parse_status": lambda r: joplin_api.MusicDriver(BASE).parse_status(
            "m1", r, None
        ),
    },
    "mureka": {
        "parse_feed_page": mureka_api.parse_feed_page,
        "parse_song_detail": mureka_api.parse_song_detail,
        "parse_job_record": mureka_api.parse_job_record,
        "parse_running_jobs": mureka_api.parse_running_jobs,
        "FeedDriver.parse_status": lambda r: mureka_api.FeedDriver(BASE).parse_status(
            "j1", r, None
        ),
        "FeedDriver.parse_batch": lambda r: mureka_api.FeedDriver(BASE).parse_batch(r, 1, {}),
    },
    "musescore": {
        "parse_search": musescore_api.parse_search,
        "parse_score": musescore_api.parse_score,
        "parse_score(static)": lambda r: musescore_api.parse_score(r, static_url=BASE),
        "parse_time": musescore_api.parse_time,
        "parse_space": musescore_api.parse_space,
        "parse_user": musescore_api.parse_user,
        "parse_oembed": musescore_api.parse_oembed,
        "parse_token": musescore_api.parse_token,
        "ScoreDriver.parse_status": lambda r: musescore_api.ScoreDriver(BASE, BASE).parse_status(
            "7", r, None
        ),
    },
}


def _samples(provider: str) -> list[Any]:
    values = []
    for path in sorted((SAMPLES / provider).glob("*.json")):
        values.append(json.loads(path.read_text()))
    return values


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value))
    return set()


SAMPLE_VALUES = {provider: _samples(provider) for provider in PARSERS}
KNOWN_KEYS = sorted(set().union(*(_keys(v) for vs in SAMPLE_VALUES.values() for v in vs)))
KNOWN_KEYS += ["response", "token", "count", "genres", "list", "score", "id", "status", "jobid"]

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities too: json.loads accepts them
    | st.text(max_size=20)
    | st.sampled_from(["ready", "failed", "processing", "completed", "", "0", "-1", "1e999"])
)
KEYS = st.sampled_from(sorted(set(KNOWN_KEYS))) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=16,
)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with random damage: subtrees replaced, keys dropped, types changed."""
    choice = draw(st.integers(min_value=0, max_value=9))
    if choice == 0 or depth > 6:
        return draw(JSON) if choice == 0 else value
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            action = draw(st.integers(min_value=0, max_value=7))
            if action == 0:
                continue  # dropped
            out[key] = draw(mutated(child, depth + 1)) if action < 6 else draw(SCALARS)
        return out
    if isinstance(value, list):
        items = [draw(mutated(child, depth + 1)) for child in value[:4]]
        return items + draw(st.lists(JSON, max_size=1))
    return draw(SCALARS) if choice < 4 else value


def bodies(provider: str) -> st.SearchStrategy[bytes]:
    """Bodies for ``provider``'s parsers: arbitrary JSON, or a mutated sample."""
    seeds = SAMPLE_VALUES[provider] or [{}]
    values = JSON | st.sampled_from(seeds).flatmap(lambda v: mutated(v))
    encoded = values.map(lambda v: json.dumps(v).encode())
    return encoded | st.binary(max_size=40) | st.just(b"")


def check_all(provider: str, body: bytes, content_type: str = "application/json") -> None:
    """Feed ``body`` to every parser of ``provider``: a model or ParseError, nothing else."""
    response = response_for(body, provider=provider, headers={"Content-Type": content_type})
    for name, parse in PARSERS[provider].items():
        try:
            parse(response)
        except errors.ParseError:
            pass
        except Exception as exc:  # pragma: no cover - the failure this test looks for
            raise AssertionError(f"{provider}.{name} raised {exc!r} on {body[:300]!r}") from exc


@pytest.mark.parametrize("provider", sorted(PARSERS))
def test_parsers_answer_a_model_or_parse_error(provider: str) -> None:
    @settings(settings.get_profile("reliability"))
    @given(body=bodies(provider))
    def fuzz(body: bytes) -> None:
        check_all(provider, body)

    fuzz()


XML_TAGS = st.sampled_from(
    [
        "events",
        "event",
        "elements",
        "element",
        "elid",
        "position",
        "id",
        "x",
        "y",
        "sx",
        "sy",
        "page",
        "result",
        "error",
    ]
)


@st.composite
def xml_documents(draw: st.DrawFn, depth: int = 0) -> str:
    """Random XML-ish text: nested known tags, random text, attributes, sometimes broken."""
    tag = draw(XML_TAGS | st.sampled_from(["a", "score", "x1"]))
    attrs_text = draw(st.sampled_from(["", ' is_array="true"', " a='1'"]))
    children = draw(st.lists(xml_documents(depth + 1), max_size=3)) if depth < 2 else []
    text = draw(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8))
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return f"<{tag}{attrs_text}>{text}{''.join(children)}</{tag}>"


XML_BODIES = (
    xml_documents().map(str.encode)
    | xml_documents().map(lambda s: s[: len(s) // 2].encode())  # truncated
    | st.sampled_from(
        [
            b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><events>&a;</events>",
            b"<events><event><elid>1</elid><position>nan</position></event></events>",
            b"<elements><element><x>1e999</x></element></elements>",
            b"<",
        ]
    )
    | st.binary(max_size=40).map(lambda b: b"<" + b)
)


def test_musescore_xml_answers_a_model_or_parse_error() -> None:
    @settings(settings.get_profile("reliability"))
    @given(body=XML_BODIES)
    def fuzz(body: bytes) -> None:
        response = response_for(body, provider="musescore", headers={"Content-Type": "text/xml"})
        for parse in (musescore_api.parse_time, musescore_api.parse_space):
            with contextlib.suppress(errors.ParseError):
                parse(response)

    fuzz()


# --- round trips -------------------------------------------------------------------------------

MODELS = [
    attrs.resolve_types(cls)
    for module in (imuze_models, joplin_models, mureka_models, musescore_models)
    for cls in vars(module).values()
    if attrs.has(cls) and cls.__module__ == module.__name__
]


def _finite_floats(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite_floats(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite_floats(v) for v in value)
    return True


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: f"{c.__module__.split('.')[2]}.{c.__name__}")
def test_models_built_by_hypothesis_round_trip(cls: type[Any]) -> None:
    conv = _common.converter()

    @settings(settings.get_profile("reliability"), max_examples=200)
    @given(model=st.builds(cls))
    def round_trip(model: Any) -> None:
        raw = conv.unstructure(model)
        if not _finite_floats(raw):
            return  # NaN is never equal to itself; nothing to compare
        assert conv.structure(raw, cls) == model

    round_trip()


SAMPLE_MODELS = [
    ("imuze", "arrangement_show", lambda r: [imuze_api.parse_arrangement(r)]),
    ("imuze", "arrangements_index", lambda r: imuze_api.parse_arrangements(r)[1]),
    ("imuze", "song_show", lambda r: [imuze_api.parse_song(r)]),
    ("imuze", "songs_index", lambda r: imuze_api.parse_songs(r)[1]),
    ("joplin", "genres", joplin_api.parse_genres),
    ("joplin", "music_schema", lambda r: [joplin_api.parse_music(r)]),
    ("mureka", "list_200", lambda r: list(mureka_api.parse_feed_page(r).items)),
    ("mureka", "song_200", lambda r: [mureka_api.parse_song_detail(r)]),
    ("musescore", "score", lambda r: [musescore_api.parse_score(r)]),
    ("musescore", "user", lambda r: [musescore_api.parse_user(r)]),
    ("musescore", "oembed", lambda r: [musescore_api.parse_oembed(r)]),
]


@pytest.mark.parametrize(
    ("provider", "name", "parse"),
    SAMPLE_MODELS,
    ids=[f"{provider}-{name}" for provider, name, _ in SAMPLE_MODELS],  # stable: no lambda repr
)
def test_models_parsed_from_samples_round_trip(
    provider: str, name: str, parse: Callable[[Response], list[Any]]
) -> None:
    conv = _common.converter()
    body = (SAMPLES / provider / f"{name}.json").read_bytes()
    models = parse(response_for(body, provider=provider))
    assert models
    for model in models:
        assert conv.structure(conv.unstructure(model), type(model)) == model
