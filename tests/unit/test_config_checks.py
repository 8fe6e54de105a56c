"""Configuration that refuses nonsense: URLs and credentials checked where a config is made,
and `Client.from_env()` warning about `IMUZEKIT_*` variables it does not read."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import imuzekit
from imuzekit import PollPolicy, errors
from imuzekit.cli._config import load_settings
from imuzekit.client import ImuzeConfig, JoplinConfig, MurekaConfig, MuseScoreConfig


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ImuzeConfig(token="t", base_url="api.imuze.io/api/4"), "imuze.base_url"),
        (lambda: ImuzeConfig(token="t", base_url="ftp://api.imuze.io"), "imuze.base_url"),
        (lambda: ImuzeConfig(token="t", base_url="/api/4"), "imuze.base_url"),
        (lambda: ImuzeConfig(token="t", base_url="https://"), "imuze.base_url"),
        (lambda: ImuzeConfig(token="t", base_url=" https://api.imuze.io"), "imuze.base_url"),
        (lambda: JoplinConfig(token="t", base_url="joplin.imuze.io"), "joplin.base_url"),
        (lambda: MurekaConfig(token="t", base_url="localhost:8700"), "mureka.base_url"),
        (lambda: MuseScoreConfig(consumer_key="k", static_url="static"), "musescore.static_url"),
        (lambda: MuseScoreConfig(consumer_key="k", oauth_url=None), "musescore.oauth_url"),
    ],
)
def test_a_base_url_must_be_an_absolute_http_url(make: Any, field: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        make()
    assert info.value.field == field
    assert "absolute http(s) URL" in info.value.reason or "URL string" in info.value.reason


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ImuzeConfig(token=12345), "imuze.token"),
        (lambda: ImuzeConfig(email="a@b.c", password=b"pw"), "imuze.password"),
        (lambda: ImuzeConfig(email=["a@b.c"], password="pw"), "imuze.email"),
        (lambda: ImuzeConfig(token="t", auth_scheme=1), "imuze.auth_scheme"),
        (lambda: JoplinConfig(token=("jwt",)), "joplin.token"),
        (lambda: MurekaConfig(token=7), "mureka.token"),
        (lambda: MurekaConfig(token="t", accounts=[111, "222"]), "mureka.accounts[0]"),
        (lambda: MuseScoreConfig(consumer_key=1), "musescore.consumer_key"),
        (lambda: MuseScoreConfig(consumer_key="k", token_secret=2.5), "musescore.token_secret"),
    ],
)
def test_a_credential_must_be_a_string(make: Any, field: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        make()
    assert info.value.field == field
    assert info.value.reason.startswith("must be a string, got ")
    assert "12345" not in str(info.value) and "pw" not in str(info.value)  # never the value


def test_good_configs_still_pass() -> None:
    assert ImuzeConfig(token="t", base_url="http://127.0.0.1:8700/imuze/api/4").token == "t"
    assert MurekaConfig(token="t", accounts="111").accounts == ("111",)
    assert MuseScoreConfig(consumer_key="k", base_url="HTTPS://api.example.com").consumer_key
    assert ImuzeConfig().base_url == "https://api.imuze.io/api/4"


def test_a_url_with_credentials_is_not_echoed() -> None:
    with pytest.raises(errors.ValidationError) as info:
        ImuzeConfig(token="t", base_url="ftp://user:hunter2@host/x")
    assert "hunter2" not in str(info.value) and info.value.field == "imuze.base_url"


def test_from_env_names_the_field_of_a_bad_url() -> None:
    env = {"IMUZEKIT_IMUZE_TOKEN": "t", "IMUZEKIT_IMUZE_BASE_URL": "api.imuze.io"}
    with pytest.raises(errors.ValidationError) as info:
        imuzekit.Client.from_env(env)
    assert info.value.field == "imuze.base_url"


def test_from_env_warns_about_a_typo_naming_the_closest_variable() -> None:
    env = {"IMUZEKIT_IMUZE_TOKN": "t", "IMUZEKIT_IMUZE_EMAIL": "a@b.c"}
    with pytest.warns(UserWarning, match="IMUZEKIT_IMUZE_TOKN") as caught:
        kit = imuzekit.Client.from_env(env)
    (warning,) = caught
    assert str(warning.message) == (
        "IMUZEKIT_IMUZE_TOKN is not a variable imuzekit reads; did you mean IMUZEKIT_IMUZE_TOKEN?"
    )
    assert warning.filename == __file__  # points at the caller's line
    assert kit._configs["imuze"] is None  # the typo left it unconfigured: hence the warning


def test_from_env_warns_without_a_guess_when_nothing_is_close() -> None:
    with pytest.warns(UserWarning, match=r"^IMUZEKIT_XYZZY is not a variable imuzekit reads$"):
        imuzekit.Client.from_env({"IMUZEKIT_XYZZY": "1"})


def test_known_and_tooling_variables_are_not_warned_about() -> None:
    env = {
        "IMUZEKIT_LOG": "",
        "IMUZEKIT_TEST_POSTGRES_URL": "postgresql://127.0.0.1/x",
        "IMUZEKIT_CI_VENV": ".ci/.venv",
        "IMUZEKIT_SEEDS_DIR": "/tmp",
        "IMUZEKIT_SOAK_SECONDS": "1",
        "IMUZEKIT_FUZZ_EXAMPLES": "5",
        "IMUZEKIT_WRITE_RELIABILITY_DOC": "1",
        "IMUZEKIT_IMUZE_AUTH_SCHEME": "Bearer",
        "IMUZEKIT_MUREKA_FAILURE_STATES": "4,5",
        "IMUZEKIT_MUSESCORE_OEMBED_URL": "http://127.0.0.1:1/oembed",
        "IMUZEKIT_POLL_TIMEOUT": "60",
        "OTHER_VARIABLE": "x",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imuzekit.Client.from_env(env)


def test_from_env_reads_the_poll_settings_the_cli_reads() -> None:
    env = {
        "IMUZEKIT_POLL_INITIAL": "0.25",
        "IMUZEKIT_POLL_MAX_INTERVAL": "1.5",
        "IMUZEKIT_POLL_TIMEOUT": "30",
    }
    kit = imuzekit.Client.from_env(env)
    assert kit.poll_policy == PollPolicy(initial=0.25, max_interval=1.5, timeout=30.0)
    assert kit.poll_policy == load_settings(env=env).poll_policy()
    partial = imuzekit.Client.from_env(
        {"IMUZEKIT_POLL_INITIAL": "0.5", "IMUZEKIT_POLL_TIMEOUT": ""}
    )
    assert partial.poll_policy == PollPolicy(initial=0.5)
    assert imuzekit.Client.from_env({}).poll_policy == PollPolicy()


def test_from_env_keeps_an_explicit_poll_policy() -> None:
    mine = PollPolicy(initial=0.1)
    kit = imuzekit.Client.from_env({"IMUZEKIT_POLL_INITIAL": "5"}, poll=mine)
    assert kit.poll_policy is mine


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"IMUZEKIT_POLL_INITIAL": "soon"}, "IMUZEKIT_POLL_INITIAL"),
        ({"IMUZEKIT_POLL_MAX_INTERVAL": "-1"}, "IMUZEKIT_POLL_MAX_INTERVAL"),
        ({"IMUZEKIT_POLL_TIMEOUT": "0"}, "IMUZEKIT_POLL_TIMEOUT"),
    ],
)
def test_a_bad_poll_variable_is_named(env: dict[str, str], variable: str) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        imuzekit.Client.from_env(env)
    assert str(info.value).startswith(variable)
