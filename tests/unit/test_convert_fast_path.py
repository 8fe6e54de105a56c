"""The converter's generated fast path answers exactly as cattrs's detailed function does.

Every attrs model without a provider's own hook is structured by a generated fast path that
hands anything unusual to cattrs's detailed function (`imuzekit._convert._fast_structure_fn`).
These tests structure the same values with the package converter and with one built without
the fast path: the same model, or a `ParseError` with the same message and path.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imuzekit import _convert, errors
from imuzekit.providers import _common
from imuzekit.providers._registry import registry
from imuzekit.providers.imuze import models as imuze_models
from imuzekit.providers.joplin import models as joplin_models
from imuzekit.providers.mureka import models as mureka_models
from imuzekit.providers.musescore import models as musescore_models
from tests.conftest import SAMPLES

MODELS = [
    attrs.resolve_types(cls)
    for module in (imuze_models, joplin_models, mureka_models, musescore_models)
    for cls in vars(module).values()
    if attrs.has(cls) and cls.__module__ == module.__name__
]


def _reference() -> cattrs.Converter:
    """The package converter as it was before the fast path: cattrs's functions alone."""
    original = _convert._fast_structure_fn

    def detailed_only(
        cls: type[Any], converter: cattrs.Converter, aliases: Any = None, slow: Any = None
    ) -> Any:
        return slow or converter.gen_structure_attrs_fromdict(cls)

    _convert._fast_structure_fn = detailed_only  # type: ignore[assignment]
    try:
        conv = _convert.make_converter()
        for hook in registry().converter_hooks():
            hook(conv)
    finally:
        _convert._fast_structure_fn = original  # type: ignore[assignment]
    return conv


@pytest.fixture(scope="module")
def reference() -> cattrs.Converter:
    return _reference()


def _outcome(conv: cattrs.Converter | None, data: Any, cls: type[Any]) -> Any:
    """The model, or the ParseError's (message, path, body), structured through ``conv``."""
    original = _common._parsing_with
    if conv is not None:
        parsing = _common._Parsing(conv)
        _common._parsing_with = lambda hooks: parsing  # type: ignore[assignment]
    try:
        return ("ok", _common.structure(data, cls))
    except errors.ParseError as exc:
        return ("error", str(exc), exc.path, exc.body)
    finally:
        _common._parsing_with = original  # type: ignore[assignment]


def test_the_reference_has_no_fast_path_and_the_package_converter_has(
    reference: cattrs.Converter,
) -> None:
    """Both sides of the comparison are what they claim, so the comparison can fail."""
    for cls in (imuze_models.Song, imuze_models.Arrangement, joplin_models.Music):
        assert "fast structure" in _common.converter().get_structure_hook(cls).__code__.co_filename
        code = getattr(reference.get_structure_hook(cls), "__code__", None)
        assert code is None or "fast structure" not in code.co_filename
    # And structure() goes through the converter _outcome() swaps in.
    broken = _reference()
    broken.register_structure_hook(imuze_models.Song, lambda value, _: "swapped")
    assert _outcome(broken, {"id": 1}, imuze_models.Song) == ("ok", "swapped")


def _same(left: Any, right: Any) -> bool:
    # NaN never equals itself: compare the JSON text of what the two sides hold.
    return left == right or json.dumps(repr(left)) == json.dumps(repr(right))


def _field_keys() -> list[str]:
    keys = {field.name for cls in MODELS for field in attrs.fields(cls)}
    return sorted(keys | {"mp3", "response", "count", "part"})


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["ready", "processing", "", "0", "12", "12.0", "1e3", "true", "2024-01-02"])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(_field_keys()), children, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def model_dicts(draw: st.DrawFn, cls: type[Any]) -> Any:
    """A dict with some of ``cls``'s keys (wire aliases too), each a value of any kind."""
    keys = [field.name for field in attrs.fields(cls)] + ["mp3", "extra"]
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)))
    return {key: draw(VALUES) for key in chosen}


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: f"{c.__module__.split('.')[2]}.{c.__name__}")
def test_fast_path_answers_as_the_detailed_function(
    cls: type[Any], reference: cattrs.Converter
) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=model_dicts(cls) | VALUES)
    def same(data: Any) -> None:
        fast = _outcome(None, data, cls)
        detailed = _outcome(reference, data, cls)
        assert fast[0] == detailed[0], (data, fast, detailed)
        assert _same(fast, detailed), (data, fast, detailed)

    same()


def test_recorded_samples_structure_alike(reference: cattrs.Converter) -> None:
    """Every recorded sample's objects, structured as every model: the same outcome."""
    checked = 0
    for path in sorted(SAMPLES.glob("*/*.json")):
        value = json.loads(path.read_text())
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
                for cls in MODELS:
                    assert _same(_outcome(None, item, cls), _outcome(reference, item, cls)), (
                        path.name,
                        cls,
                    )
                    checked += 1
            elif isinstance(item, list):
                stack.extend(item)
    assert checked > 1000


def test_well_formed_song_takes_the_fast_path_and_a_bad_one_names_the_path() -> None:
    song = _common.structure(
        {"id": 7, "title": "Morning Song", "mp3": "https://x.test/7.mp3", "tags": ["calm"]},
        imuze_models.Song,
    )
    assert song == imuze_models.Song(
        id=7, title="Morning Song", mp3_url="https://x.test/7.mp3", tags=("calm",)
    )
    # Numbers as strings still go through the hooks: the fast path calls them.
    assert _common.structure({"id": "8", "desired_length": 30.0}, imuze_models.Song) == (
        imuze_models.Song(id=8, desired_length=30)
    )
    with pytest.raises(errors.ParseError) as caught:
        _common.structure({"id": 9, "tags": ["a", 5, None]}, imuze_models.Song)
    assert caught.value.path == "$.tags[2]"
    assert caught.value.__cause__ is not None
    # Nothing of the fast path's own failure is chained to the error.
    assert caught.value.__cause__.__context__ is None
    with pytest.raises(errors.ParseError) as missing:
        _common.structure({"title": "No Id"}, imuze_models.Song)
    assert missing.value.path == "$.id"
