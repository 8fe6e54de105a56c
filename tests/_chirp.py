"""The test-only fifth provider, "chirp": a tune service with one create and a status
endpoint, plugged in with one registry line (`plugged()`), and the service itself as a
`MockTransport` handler (`ChirpService`). Shared by the registry tests and the CLI's."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from typing import Any, ClassVar

import attrs
import cattrs

from imuzekit import PollPolicy, errors
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
from imuzekit.testing import respond

FAST = PollPolicy(initial=0.01, max_interval=0.02, timeout=5.0)
MARKER = "ik:0123456789ab"


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


@contextlib.contextmanager
def plugged() -> Iterator[ProviderSpec]:
    """Chirp in the registry (the one line that plugs a provider in) for the block's time."""
    spec = registry().register(CHIRP)
    try:
        yield spec
    finally:
        registry().unregister("chirp")
