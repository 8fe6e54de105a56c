"""A provider plugged into the registry with one line (the test-only "chirp" of
tests/_chirp.py) gets its table in the CLI's configuration: `imuzekit config show` lists it,
from the environment or the config file, with its secrets masked, and the Client the CLI
builds from the configuration reaches it."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from collections.abc import Iterator

import pytest

from imuzekit import Client
from imuzekit.batch._journal import AsyncJournal, Journal
from imuzekit.batch._manifest import ManifestError, load_manifest, manifest_schema, parse_line
from imuzekit.batch._rules import marked_params
from imuzekit.batch._runner import BatchOptions, BatchRunner
from imuzekit.cli._config import load_settings
from imuzekit.providers._spec import ProviderSpec
from imuzekit.testing import MockTransport
from tests._chirp import ChirpAPI, ChirpConfig, ChirpService, plugged
from tests.cli.conftest import invoke, json_lines


@pytest.fixture
def chirp() -> Iterator[ProviderSpec]:
    with plugged() as spec:
        yield spec


def test_config_show_lists_a_plugged_provider_with_its_secrets_masked(
    clean_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch, chirp: ProviderSpec
) -> None:
    monkeypatch.setenv("IMUZEKIT_CHIRP_TOKEN", "chirp-secret-token")
    config = clean_env / "imuzekit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[chirp]\nbase_url = "http://127.0.0.1:9/chirp"\n')
    human = invoke(["config", "show"])
    machine = invoke(["config", "show", "--json"])
    for result in (human, machine):
        assert result.exit_code == 0, result.output
        assert "chirp-secret-token" not in result.output
    assert "[chirp] configured" in human.stdout
    shown = {obj["section"]: obj for obj in json_lines(machine.stdout)}
    assert list(shown) == ["imuze", "joplin", "mureka", "musescore", "chirp", "poll"]
    assert shown["chirp"]["configured"] is True
    assert shown["chirp"]["values"] == {
        "token": {"value": "***", "source": "env"},
        "base_url": {"value": "http://127.0.0.1:9/chirp", "source": "file"},
    }


def test_without_the_registry_line_a_chirp_table_is_unknown(clean_env: pathlib.Path) -> None:
    config = clean_env / "imuzekit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[chirp]\ntoken = "x"\n')
    result = invoke(["config", "show"])
    assert result.exit_code == 2
    assert "unknown table [chirp]" in result.stderr
    assert "known: imuze, joplin, mureka, musescore, poll" in result.stderr


def test_the_cli_client_reaches_a_plugged_provider(
    clean_env: pathlib.Path, chirp: ProviderSpec
) -> None:
    settings = load_settings(env={"IMUZEKIT_CHIRP_TOKEN": "tok"})
    assert settings.config("chirp") == ChirpConfig(token="tok")
    assert settings.providers["chirp"]["token"].secret
    service = ChirpService()

    async def main() -> str:
        async with settings.client() as kit:
            assert isinstance(kit.namespace("chirp"), ChirpAPI)
        # The same configuration over a MockTransport makes a tune.
        async with Client(chirp=settings.config("chirp"), transport=MockTransport(service)) as kit:
            tune = await (await kit.namespace("chirp").create("Morning Song")).wait()
        return str(tune.title)

    assert asyncio.run(main()) == "Morning Song"
    assert service.auth[0] == "Bearer tok"


def test_error_lines_name_a_plugged_provider_by_its_title(chirp: ProviderSpec) -> None:
    from imuzekit import errors
    from imuzekit.cli._common import describe_error

    refused = errors.AuthenticationError("bad token", status=401, provider="chirp")
    assert describe_error(refused)[0].startswith("Chirp tunes refused the credentials (401)")
    builtin = errors.AuthenticationError("bad token", status=401, provider="imuze")
    assert describe_error(builtin)[0].startswith("iMuze API v4 refused the credentials")
    unknown = errors.AuthenticationError("bad token", status=401, provider="")
    assert describe_error(unknown)[0].startswith("the service refused the credentials")


# -- the batch: manifest lines and reconciliation from the spec --------------------------------


def test_a_plugged_provider_is_a_manifest_line(chirp: ProviderSpec) -> None:
    line = parse_line(1, json.dumps({"provider": "chirp", "title": "Morning Song"}))
    assert (line.provider, line.kind, line.variant.marker_field) == ("chirp", "create", "title")
    with pytest.raises(ManifestError) as caught:
        parse_line(2, json.dumps({"provider": "chirp", "title": "x" * 41}))
    assert caught.value.field == "title" and "at most 40 characters" in caught.value.reason
    with pytest.raises(ManifestError, match="only Mureka"):
        parse_line(3, json.dumps({"provider": "chirp", "kind": "create", "title": "Song"}))
    schema = manifest_schema()
    assert schema["properties"]["provider"]["enum"][-1] == "chirp"
    (shape,) = [s for s in schema["oneOf"] if s["title"] == "chirp create"]
    assert shape["properties"]["title"]["maxLength"] == 40


def test_without_the_registry_line_chirp_is_no_manifest_line() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_line(1, json.dumps({"provider": "chirp", "title": "Morning Song"}))
    assert caught.value.reason == "must be one of imuze, joplin, mureka, got 'chirp'"


async def test_the_batch_reconciles_a_plugged_providers_lines(
    tmp_path: pathlib.Path, chirp: ProviderSpec
) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"provider": "chirp", "key": "landed", "title": "Morning Song"}\n'
        '{"provider": "chirp", "key": "lost", "title": "Evening Song"}\n'
    )
    lines = load_manifest(manifest)
    journal = Journal(tmp_path / "j.sqlite")
    journal.sync(lines)
    for key in ("landed", "lost"):
        # A crash after the creates were sent; their landing windows have passed.
        journal.transition(key, "submitting", count_attempt=True, settle_by=time.time())
    rows = {row.key: row for row in journal.lines()}
    params = marked_params(rows["landed"])
    assert params == {"title": f"Morning Song [{rows['landed'].marker}]"}
    service = ChirpService()
    async with Client(chirp=ChirpConfig(token="t"), transport=MockTransport(service)) as kit:
        await kit.namespace("chirp").create(**params)  # it landed; its answer was lost
        store = AsyncJournal(journal)
        runner = BatchRunner(kit, store, lines, BatchOptions(out=tmp_path / "out"))
        await runner.reconcile([rows["landed"], rows["lost"]])
        after = {row.key: row for row in journal.lines()}
        assert (after["landed"].state, after["landed"].remote_id) == ("submitted", "t1")
        assert after["lost"].state == "pending"  # not found, window passed: send again
        assert kit.resume(str(after["landed"].token)).id == "t1"
    journal.close()
    assert list(service.titles) == ["t1"]  # the search sent no create
