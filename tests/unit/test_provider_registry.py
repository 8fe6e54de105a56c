"""The provider contract: a fifth provider, defined only here, plugs in with one registry line
and gets a client namespace, `from_env`, job resume and a masked config; the built-ins derive
their tables, hints, limits and crash search from their specs. No socket: `MockTransport`."""

from __future__ import annotations

from collections.abc import Iterator

import grimp
import pytest

from imuzekit import Client, ImuzeConfig, _configs, errors
from imuzekit.http import Request, Response
from imuzekit.jobs import JobState
from imuzekit.providers import registry
from imuzekit.providers._spec import ProviderSpec, markers_in, spelled_marker
from imuzekit.providers.imuze import _api as imuze_api
from imuzekit.providers.joplin import _api as joplin_api
from imuzekit.providers.mureka import _api as mureka_api
from imuzekit.providers.musescore import _api as musescore_api
from imuzekit.testing import MockTransport, respond
from tests._chirp import CHIRP, FAST, MARKER, ChirpAPI, ChirpConfig, ChirpService, Tune, plugged


@pytest.fixture
def chirp() -> Iterator[ProviderSpec]:
    with plugged() as spec:  # registry().register(CHIRP): one line plugs a provider in
        yield spec


# -- the fifth provider ------------------------------------------------------------------------


def test_one_registry_line_plugs_a_provider_in(chirp: ProviderSpec) -> None:
    assert registry().names() == ("imuze", "joplin", "mureka", "musescore", "chirp")
    assert registry().get("chirp") is chirp
    assert _configs.CONFIGS["chirp"] is ChirpConfig
    assert _configs.PROVIDER_NAMES["chirp"] == "Chirp tunes"
    assert _configs.ENV_HINTS["chirp"] == "IMUZEKIT_CHIRP_TOKEN"
    with pytest.raises(errors.ValidationError, match="is registered"):
        registry().register(CHIRP)


def test_unregistered_provider_is_gone(chirp: ProviderSpec) -> None:
    registry().unregister("chirp")
    try:
        assert "chirp" not in registry() and "chirp" not in _configs.CONFIGS
        with pytest.raises(TypeError, match="chirp"):
            Client(chirp=ChirpConfig(token="x"))
    finally:
        registry().register(CHIRP)


async def test_plugged_provider_gets_a_namespace_and_its_jobs_run(chirp: ProviderSpec) -> None:
    service = ChirpService()
    async with Client(chirp=ChirpConfig(token="sekrit"), transport=MockTransport(service)) as kit:
        api = kit.namespace("chirp")
        assert isinstance(api, ChirpAPI) and kit.chirp is api
        assert api.policy is FAST  # the spec's default poll policy
        job = await api.create("Morning Song")
        tune = await job.wait()
        assert (job.provider, job.state, tune.id, tune.title) == (
            "chirp",
            JobState.READY,
            "t1",
            "Morning Song",  # read from "name": the spec's converter hook
        )
        assert service.auth == ["Bearer sekrit"] * 3
        assert "chirp" in repr(kit)


async def test_plugged_provider_reads_its_config_from_the_environment(
    chirp: ProviderSpec,
) -> None:
    env = {"IMUZEKIT_CHIRP_TOKEN": "envtok", "IMUZEKIT_CHIRP_BASE_URL": "http://127.0.0.1:9/chirp"}
    service = ChirpService()
    async with Client.from_env(env, transport=MockTransport(service)) as kit:
        assert kit._configs["chirp"] == ChirpConfig(token="envtok")
        await (await kit.chirp.create("Evening Song")).wait()
    assert service.auth[0] == "Bearer envtok"
    async with Client.from_env({}) as kit:
        assert kit._configs["chirp"] is None
        with pytest.raises(errors.ConfigurationError) as info:
            kit.namespace("chirp")
    assert str(info.value) == (
        "Chirp tunes is not configured: pass Client(chirp=ChirpConfig(...)) "
        "or set IMUZEKIT_CHIRP_TOKEN"
    )


async def test_a_plugged_providers_job_token_resumes_in_another_client(
    chirp: ProviderSpec,
) -> None:
    service = ChirpService()
    config = ChirpConfig(token="sekrit")
    async with Client(chirp=config, transport=MockTransport(service)) as kit:
        token = (await kit.chirp.create("Rainy Day")).token()
    async with Client(chirp=config, transport=MockTransport(service)) as kit:
        job = kit.resume(token)
        assert (job.provider, job.id, job.result) == ("chirp", "t1", Tune("t1", "Rainy Day"))
        assert (await job.wait()).status == "done"
        with pytest.raises(errors.ValidationError, match="unknown chirp job kind 'song'"):
            kit.resume(token.replace('"tune"', '"song"'))


def test_a_plugged_providers_config_masks_its_secrets(chirp: ProviderSpec) -> None:
    config = ChirpConfig(token="sekrit-TOKEN", base_url="http://127.0.0.1:9/x")
    assert "sekrit" not in repr(config) and "127.0.0.1:9/x" in repr(config)
    assert chirp.secret_fields == frozenset({"token"})
    kit = Client(chirp=config)
    assert "sekrit" not in repr(kit)


async def test_a_plugged_provider_finds_its_creations_by_marker(chirp: ProviderSpec) -> None:
    service = ChirpService()
    async with Client(chirp=ChirpConfig(token="t"), transport=MockTransport(service)) as kit:
        params = chirp.create("create").mark({"title": "x" * 40}, MARKER)
        assert params["title"] == "x" * 22 + f" [{MARKER}]"  # within the field's 40
        await kit.chirp.create(**params)
        found = await kit.find_created("chirp", [MARKER, "ik:ffffffffffff"])
    assert list(found) == [MARKER]
    assert found[MARKER].remote_id == "t1" and found[MARKER].job is not None


# -- the built-ins, derived from their specs ------------------------------------------------


def test_builtin_tables_are_derived_from_the_specs() -> None:
    assert list(_configs.CONFIGS) == ["imuze", "joplin", "mureka", "musescore"]
    assert _configs.ENV_HINTS == {
        "imuze": "IMUZEKIT_IMUZE_TOKEN, or IMUZEKIT_IMUZE_EMAIL and IMUZEKIT_IMUZE_PASSWORD",
        "joplin": "IMUZEKIT_JOPLIN_TOKEN, or IMUZEKIT_JOPLIN_EMAIL and IMUZEKIT_JOPLIN_PASSWORD",
        "mureka": "IMUZEKIT_MUREKA_TOKEN (and IMUZEKIT_MUREKA_ACCOUNTS)",
        "musescore": "IMUZEKIT_MUSESCORE_CONSUMER_KEY (and IMUZEKIT_MUSESCORE_CONSUMER_SECRET)",
    }
    secrets = {spec.name: spec.secret_fields for spec in registry()}
    assert secrets == {
        "imuze": {"token", "password"},
        "joplin": {"token", "password"},
        "mureka": {"token"},
        "musescore": {"consumer_secret", "token", "token_secret"},
    }
    assert {spec.name: spec.job_kinds for spec in registry()} == {
        "imuze": ("song",),
        "joplin": ("music",),
        "mureka": ("feed",),
        "musescore": ("upload",),
    }


def test_create_limits_come_from_the_wire_modules() -> None:
    advanced = registry().get("mureka").create("create_advanced")
    for name in ("lyrics", "title", "desc"):
        assert advanced.field(name).max_length == mureka_api.CREATE_LIMITS["create-advanced"][name]
    joplin = registry().get("joplin").create("create")
    assert joplin.field("duration_ms").maximum == joplin_api.MAX_DURATION_MS
    title = registry().get("imuze").create("create").field("title")
    assert (title.min_length, title.max_length, title.pattern) == (
        imuze_api.TITLE_MIN_LENGTH,
        imuze_api.TITLE_MAX_LENGTH,
        imuze_api.TITLE_PATTERN,
    )
    with pytest.raises(errors.ValidationError, match="known: create, create_advanced"):
        registry().get("mureka").create("remix")


def test_every_limit_is_a_named_constant_of_the_wire_module() -> None:
    imuze = registry().get("imuze").create("create")
    assert imuze.field("arrangement_id").minimum == imuze_api.MIN_ARRANGEMENT_ID == 0
    assert imuze.field("desired_length").minimum == imuze_api.MIN_DESIRED_LENGTH == 1
    assert imuze.field("tags").max_length == imuze_api.MAX_TAG_LENGTH == 255
    joplin = registry().get("joplin").create("create")
    assert joplin.field("genre").max_length == joplin_api.MAX_GENRE_LENGTH == 128
    assert joplin.field("subgenre").max_length == joplin_api.MAX_GENRE_LENGTH
    assert joplin.field("duration_ms").minimum == joplin_api.MIN_DURATION_MS == 1
    fadeout = joplin.field("fadeout_ms")
    assert (fadeout.minimum, fadeout.at_most) == (joplin_api.MIN_FADEOUT_MS, "duration_ms")
    assert joplin_api.MAX_MOVEMENT_LENGTH == 64
    for call in registry().get("mureka").creates:
        assert call.field("model").max_length == mureka_api.MAX_TEXT_LENGTH == 1000
        assert call.field("account").max_length == mureka_api.MAX_ACCOUNT_LENGTH == 128
        assert call.field("account").choices == "accounts"
    advanced = registry().get("mureka").create("create_advanced")
    for name in ("vocal_id", "ref_id", "motif_id"):
        assert advanced.field(name).max_length == mureka_api.MAX_TEXT_LENGTH
    upload = registry().get("musescore").create("upload")
    assert upload.field("title").max_length == musescore_api.MAX_UPLOAD_TITLE == 255
    assert upload.field("description").max_length == musescore_api.MAX_UPLOAD_DESCRIPTION
    assert upload.field("tags").max_length == musescore_api.MAX_UPLOAD_TAG == 100
    assert musescore_api.MAX_UPLOAD_DESCRIPTION == 10_000
    # The wire modules check the same constants before sending.
    with pytest.raises(errors.ValidationError, match="genre"):
        joplin_api.build_create_music(
            "http://127.0.0.1:9", genre="g" * 129, subgenre="s", duration_ms=1, structure="calm:1"
        )
    with pytest.raises(errors.ValidationError, match="desired_length"):
        imuze_api.build_create_song(
            "http://127.0.0.1:9", title="Morning Song", arrangement_id=1, tags=[], desired_length=0
        )


def test_markers_go_where_each_create_carries_them() -> None:
    imuze = registry().get("imuze").create("create")
    marked = imuze.mark({"title": "Morning Song", "tags": ["rock"]}, MARKER)
    # iMuze: in the title, spelled in letters (titles are letters and spaces); never in the
    # tags, which steer the arrangement iMuze chooses.
    assert marked == {"title": "Morning Song ik abcdefghijkl", "tags": ["rock"]}
    assert spelled_marker(MARKER) == "ik abcdefghijkl" and markers_in(marked["title"]) == {MARKER}
    assert imuze_api.check_title("title", marked["title"]) == marked["title"]
    long = imuze.mark({"title": "T" * 255}, MARKER)["title"]
    assert long == "T" * 239 + " ik abcdefghijkl" and len(long) == imuze_api.TITLE_MAX_LENGTH
    assert imuze.arguments({"title": "Morning Song"}) == {"tags": [], "title": "Morning Song"}
    title = registry().get("mureka").create("create_instrumental")
    assert title.mark({"title": "y" * 50}, MARKER)["title"] == "y" * 32 + f" [{MARKER}]"
    assert not registry().get("mureka").create("create").searchable
    assert registry().get("joplin").find_created is None


async def test_a_builtin_namespace_is_the_typed_property() -> None:
    service = ChirpService()  # never asked: building a namespace sends nothing
    async with Client(imuze=ImuzeConfig(token="t"), transport=MockTransport(service)) as kit:
        assert kit.namespace("imuze") is kit.imuze
        with pytest.raises(errors.ValidationError, match="no provider 'nope'"):
            kit.namespace("nope")
        with pytest.raises(errors.ValidationError, match="cannot be searched"):
            await kit.find_created("joplin", [MARKER])
    assert service.auth == []


async def test_imuze_finds_songs_by_the_marker_in_their_tags_or_title() -> None:
    spelled = "ik:00000000000a"
    songs = [
        {
            "id": 11,
            "title": f"Morning Song {spelled_marker(spelled)}",
            "tags": [],
            "status": "ready",
        },
        {"id": 9, "title": "Late Song", "tags": [MARKER], "status": "ready"},
        {"id": 7, "title": f"Old [{MARKER}]", "tags": [], "status": "processing"},
        {"id": 5, "title": "Other", "tags": ["ik:ffffffffffff"], "status": "ready"},
    ]

    def handler(request: Request) -> Response:
        assert request.method == "GET" and request.url.endswith("/songs")
        return respond(request, json={"count": 4, "response": songs})

    async with Client(imuze=ImuzeConfig(token="t"), transport=MockTransport(handler)) as kit:
        found = await kit.find_created("imuze", {MARKER, spelled, "ik:aaaaaaaaaaaa"})
    assert sorted(found) == [spelled, MARKER]
    assert found[spelled].remote_id == "11"  # the title's letters spelling
    hit = found[MARKER]
    # The list is newest first: the oldest song carrying the marker wins.
    assert (hit.remote_id, hit.settled, hit.result) == ("7", True, None)
    assert hit.job is not None and (hit.job.provider, hit.job.id) == ("imuze", "7")


def test_the_converter_and_the_registry_import_no_provider() -> None:
    # The converter used to import every provider's _api inside a function (a hidden cycle):
    # now it reads the hooks from the registry, which names the built-ins by module path.
    graph = grimp.build_graph("imuzekit")
    for module in ("imuzekit.providers._common", "imuzekit.providers._registry"):
        for name in registry().names()[:4]:
            chain = graph.find_shortest_chain(module, f"imuzekit.providers.{name}")
            assert chain is None, chain
