"""The provider contract: a fifth provider, defined only here, plugs in with one registry line
and gets a client namespace, `from_env`, job resume and a masked config; the built-ins derive
their tables, hints, limits and crash search from their specs. No socket: `MockTransport`."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any, ClassVar

import attrs
import cattrs
import grimp
import pytest

from imuzekit import Client, ImuzeConfig, PollPolicy, _configs, errors
from imuzekit._convert import alias_keys
from imuzekit.auth import TokenLogin
from imuzekit.http import Request, Response
from imuzekit.jobs import Job, JobState, JobStatus
from imuzekit.providers import registry
from imuzekit.providers._common import decode_json, join_url, structure
from imuzekit.providers._spec import (
    Connected,
    Connection,
    CreateCall,
    FieldSpec,
    Found,
    ProviderSpec,
    markers_in,
    secret_field,
)
from imuzekit.providers.imuze import _api as imuze_api
from imuzekit.providers.joplin import _api as joplin_api
from imuzekit.providers.mureka import _api as mureka_api
from imuzekit.testing import MockTransport, respond

FAST = PollPolicy(initial=0.01, max_interval=0.02, timeout=5.0)
MARKER = "ik:0123456789ab"

# -- the fifth provider, "chirp": a tune service with one create and a status endpoint -------


@attrs.frozen
class Tune:
    id: str
    title: str | None = None
    status: str | None = None


@attrs.frozen
class ChirpConfig:
    """Chirp credentials."""

    CREDENTIALS: ClassVar[tuple[tuple[str, ...], ...]] = (("token",),)

    token: str | None = secret_field()
    base_url: str = "http://127.0.0.1:9/chirp"
    poll: PollPolicy | None = None


@attrs.frozen
class TuneDriver:
    base_url: str
    provider: str = "chirp"
    kind: str = "tune"
    ok_statuses: Collection[int] = ()

    def status_request(self, job_id: str) -> Request:
        return Request("GET", join_url(self.base_url, "tunes", job_id), provider="chirp")

    def parse_status(
        self, job_id: str, response: Response, previous: Tune | None
    ) -> JobStatus[Tune]:
        tune = structure(decode_json(response), Tune)
        state = JobState.READY if tune.status == "done" else JobState.PROCESSING
        return JobStatus(state, raw_status=tune.status, result=tune)

    def token_data(self, job_id: str, result: Tune | None) -> dict[str, Any]:
        return {"title": result.title} if result and result.title else {}

    def from_token_data(self, job_id: str, data: Mapping[str, Any]) -> Tune | None:
        return Tune(id=job_id, title=data.get("title"))


class ChirpAPI:
    def __init__(self, connection: Connection, base_url: str) -> None:
        self.sender = connection.sender
        self.base_url = base_url
        self.poller = connection.poller
        self.policy = connection.poll_policy
        self.driver = TuneDriver(base_url)

    def job_for(self, tune: Tune) -> Job[Tune]:
        return Job(
            job_id=tune.id,
            driver=self.driver,
            poller=self.poller,
            status=JobStatus(JobState.QUEUED, raw_status=tune.status, result=tune),
            policy=self.policy,
        )

    async def create(self, title: str) -> Job[Tune]:
        request = Request(
            "POST", join_url(self.base_url, "tunes"), provider="chirp", json={"title": title}
        )
        return self.job_for(structure(decode_json(await self.sender.send(request)), Tune))

    def resume(self, kind: str, job_id: str, data: Mapping[str, Any]) -> Job[Tune]:
        if kind != self.driver.kind:
            raise errors.ValidationError("token", f"unknown chirp job kind {kind!r}")
        return self.job_for(self.driver.from_token_data(job_id, data) or Tune(id=job_id))


def chirp_connect(config: ChirpConfig, connection: Connection) -> Connected:
    auth = TokenLogin(provider="chirp", token=config.token, scheme="Bearer")
    return Connected(ChirpAPI(connection, config.base_url), auth)


def chirp_hooks(converter: cattrs.Converter) -> None:
    # Chirp's wire calls the title "name": the rename lives in the spec's converter hook.
    alias_keys(converter, Tune, {"name": "title"})


async def chirp_find(api: ChirpAPI, markers: Collection[str]) -> dict[str, Found]:
    request = Request("GET", join_url(api.base_url, "tunes"), provider="chirp")
    tunes = structure(decode_json(await api.sender.send(request)), list[Tune])
    return {
        marker: Found(marker, remote_id=tune.id, job=api.job_for(tune))
        for tune in tunes
        for marker in markers_in(tune.title) & set(markers)
    }


CHIRP = ProviderSpec(
    name="chirp",
    title="Chirp tunes",
    config=ChirpConfig,
    connect=chirp_connect,
    job_kinds=("tune",),
    creates=(
        CreateCall(
            kind="create",
            method="create",
            description="kit.chirp.create(): a tune.",
            fields=(FieldSpec("title", "string", "Tune title.", required=True, max_length=40),),
            marker_title="title",
        ),
    ),
    converter_hooks=(chirp_hooks,),
    default_poll=FAST,
    find_created=chirp_find,
)


class ChirpService:
    """The chirp service as a MockTransport handler: tunes are done on their second read."""

    def __init__(self) -> None:
        self.reads: dict[str, int] = {}
        self.titles: dict[str, str] = {}
        self.auth: list[str | None] = []

    def __call__(self, request: Request) -> Response:
        self.auth.append(request.header("Authorization"))
        path = request.url.split("/chirp", 1)[1]
        if request.method == "POST" and path == "/tunes":
            tune_id = f"t{len(self.titles) + 1}"
            title = self.titles[tune_id] = request.json["title"]
            return respond(request, 201, json={"id": tune_id, "name": title, "status": "queued"})
        if path == "/tunes":
            items = [{"id": i, "name": t, "status": "done"} for i, t in self.titles.items()]
            return respond(request, json=items)
        tune_id = path.rsplit("/", 1)[1]
        if tune_id not in self.titles:
            return respond(request, 404, json={"error": "no such tune"})
        self.reads[tune_id] = self.reads.get(tune_id, 0) + 1
        status = "done" if self.reads[tune_id] >= 2 else "rendering"
        body = {"id": tune_id, "name": self.titles[tune_id], "status": status}
        return respond(request, json=body)


@pytest.fixture
def chirp() -> Iterator[ProviderSpec]:
    spec = registry().register(CHIRP)  # the one line that plugs a provider in
    yield spec
    registry().unregister("chirp")


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


def test_markers_go_where_each_create_carries_them() -> None:
    imuze = registry().get("imuze").create("create")
    marked = imuze.mark({"title": "Morning Song", "tags": ["rock"]}, MARKER)
    assert marked == {"title": "Morning Song", "tags": ["rock", MARKER]}
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
    songs = [
        {"id": 9, "title": "Late Song", "tags": [MARKER], "status": "ready"},
        {"id": 7, "title": f"Old [{MARKER}]", "tags": [], "status": "processing"},
        {"id": 5, "title": "Other", "tags": ["ik:ffffffffffff"], "status": "ready"},
    ]

    def handler(request: Request) -> Response:
        assert request.method == "GET" and request.url.endswith("/songs")
        return respond(request, json={"count": 3, "response": songs})

    async with Client(imuze=ImuzeConfig(token="t"), transport=MockTransport(handler)) as kit:
        found = await kit.find_created("imuze", {MARKER, "ik:aaaaaaaaaaaa"})
    assert list(found) == [MARKER]
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
