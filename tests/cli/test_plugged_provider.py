"""A provider plugged into the registry with one line (the test-only "chirp" of
tests/_chirp.py) gets its table in the CLI's configuration: `imuzekit config show` lists it,
from the environment or the config file, with its secrets masked, and the Client the CLI
builds from the configuration reaches it."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Iterator

import pytest

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
        from imuzekit import Client

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
