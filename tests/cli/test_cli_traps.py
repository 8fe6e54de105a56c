"""The CLI's small traps (issue 19, point 5): each one as a new user meets it."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import urllib.request
import warnings

import pytest

import imuzekit
from imuzekit.cli._config import load_settings, update_config_file
from imuzekit.jobs import parse_token
from tests.cli.conftest import child_env, cli_command, invoke, json_lines


def test_musescore_login_takes_emulator(clean_env: pathlib.Path) -> None:
    with subprocess.Popen(
        cli_command("musescore", "login", "--emulator"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env({}),
    ) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and "oauth_token=" in url, url
        with urllib.request.urlopen(url, timeout=10) as page:  # the emulator's own page
            html = page.read().decode()
        code = re.search(r'<code id="oauth_verifier">([^<]+)</code>', html)
        assert code is not None
        _, stderr = process.communicate(code.group(1) + "\n", timeout=30)
    assert process.returncode == 0, stderr
    assert "Logged in to the embedded emulator" in stderr and "nothing is saved" in stderr
    assert not (clean_env / "imuzekit" / "config.toml").exists()


def test_ids_in_tables_are_never_truncated(
    emu_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    created = invoke(["mureka", "create", "--prompt", "a calm tune", "--json"])
    assert created.exit_code == 0, created.output
    song_ids = [row["id"] for row in json_lines(created.stdout)]
    monkeypatch.setenv("COLUMNS", "100")
    listed = invoke(["mureka", "list"])
    assert listed.exit_code == 0, listed.output
    assert "…" not in listed.stdout
    for song_id in song_ids:
        assert song_id in listed.stdout  # whole, on one line: copyable


def test_created_jobs_print_whole_resume_tokens(clean_env: pathlib.Path) -> None:
    result = invoke(
        "imuze songs create --emulator --arrangement 1 --title 'Morning Song' --length 2 --count 2"
    )
    assert result.exit_code == 0, result.output
    tokens = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(tokens) == 2
    assert [parse_token(token)[0] for token in tokens] == ["imuze", "imuze"]


def test_json_nests_the_job_token_as_an_object(clean_env: pathlib.Path) -> None:
    result = invoke(
        "imuze songs create --emulator --arrangement 1 --title 'Morning Song' --length 2 --json"
    )
    assert result.exit_code == 0, result.output
    (row,) = json_lines(result.stdout)
    token = row["token"]
    assert isinstance(token, dict) and token["provider"] == "imuze"
    # The string `kit.resume` takes is the object written out (`jq -c .token`).
    assert parse_token(json.dumps(token))[:3] == ("imuze", "song", str(row["job"]))


@pytest.mark.parametrize(
    "args",
    [
        ["imuze", "songs", "list"],
        ["mureka", "list"],
        ["musescore", "search", "no score has this title zqxj"],
    ],
)
def test_an_empty_list_prints_none(clean_env: pathlib.Path, args: list[str]) -> None:
    result = invoke([*args, "--emulator"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("(none)")
    assert "┏" not in result.stdout  # no empty table


def test_musescore_files_are_named_after_the_score_title(
    emu_env: dict[str, str], tmp_path: pathlib.Path
) -> None:
    (score,) = json_lines(invoke(["musescore", "search", "--limit", "1", "--json"]).stdout)
    out = tmp_path / "scores"
    result = invoke(
        ["musescore", "download", str(score["id"]), "--format", "pdf", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [f"{score['title']}.pdf"]
    again = invoke(
        ["musescore", "download", str(score["id"]), "--format", "pdf", "--out", str(out), "--json"]
    )
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in out.iterdir()) == [f"{score['title']}.pdf"]  # the same file


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (
            "joplin create --genre g --subgenre s --duration soon --structure calm:1 --emulator",
            "error: invalid value for '--duration': not a duration: 'soon'",
        ),
        ("imuze songs bogus", "error: no such command 'bogus'; see `"),
        (
            "mureka create --prompt x --title y --emulator",
            "error: --title goes with --instrumental",
        ),
    ],
)
def test_usage_errors_are_one_error_line(clean_env: pathlib.Path, args: str, wanted: str) -> None:
    result = invoke(args)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(wanted), line
    assert line.endswith(" --help`")  # the command's own help (CliRunner calls the group "cli")
    assert result.stdout == ""


def test_a_bad_imuzekit_log_is_an_error_line(
    clean_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMUZEKIT_LOG", "loud")
    result = invoke(["joplin", "genres", "--emulator"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: IMUZEKIT_LOG must be one of debug, info, got 'loud'"
    ]


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["imuze", "songs", "show", "987654"], "`imuzekit imuze songs list`"),
        (["musescore", "download", "99999999"], "`imuzekit musescore search`"),
    ],
)
def test_not_found_names_the_command_to_run_not_the_route(
    clean_env: pathlib.Path, args: list[str], command: str
) -> None:
    result = invoke([*args, "--emulator"])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and line.endswith(f"check the id (see {command})")
    assert "http" not in line and "GET" not in line


def _arrangements_at(monkeypatch: pytest.MonkeyPatch, base_url: str) -> tuple[int, str]:
    """`imuzekit imuze arrangements` with iMuze's base URL set to `base_url`: the exit code
    and the one line on stderr."""
    monkeypatch.setenv("IMUZEKIT_IMUZE_TOKEN", "t")
    monkeypatch.setenv("IMUZEKIT_IMUZE_BASE_URL", base_url)
    result = invoke(["imuze", "arrangements"])
    (line,) = result.stderr.splitlines()
    return result.exit_code, line


def test_unreachable_service_names_the_host_not_the_route(
    clean_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, line = _arrangements_at(monkeypatch, "http://127.0.0.1:9/api/4")  # discard port
    assert code == 1
    assert line.startswith("error: cannot reach http://127.0.0.1:9: ")
    assert "/arrangements" not in line and "`imuzekit config show`" in line


def test_a_typo_in_a_variable_is_a_note(
    clean_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMUZEKIT_IMUZE_TOKN", "t")
    result = invoke(["joplin", "genres", "--emulator", "--json"])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "note: IMUZEKIT_IMUZE_TOKN is not a variable imuzekit reads; "
        "did you mean IMUZEKIT_IMUZE_TOKEN?"
    ]


def test_a_bad_base_url_names_where_it_was_set(
    clean_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    code, line = _arrangements_at(monkeypatch, "api.imuze.io/api/4")
    assert code == 2
    assert line.startswith("error: invalid IMUZEKIT_IMUZE_BASE_URL: must be an absolute http(s)")
    monkeypatch.delenv("IMUZEKIT_IMUZE_BASE_URL")
    config = tmp_path / "c.toml"
    config.write_text('[imuze]\nbase_url = "ftp://x"\n')
    result = invoke(["--config", str(config), "imuze", "arrangements"])
    assert result.exit_code == 2
    assert f"error: invalid base_url in [imuze] of {config}: " in result.stderr


def test_config_writes_keep_the_users_comments(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "# my imuzekit settings\n"
        "[imuze]\n"
        'email = "me@example.com"  # the work account\n'
        "\n"
        "# MuseScore: keys from the developer page\n"
        "[musescore]\n"
        'consumer_key = "k"\n'
    )
    update_config_file(path, "musescore", {"token": "a", "token_secret": "b"})
    text = path.read_text()
    for kept in (
        "# my imuzekit settings",
        "# the work account",
        "# MuseScore: keys from the developer page",
    ):
        assert kept in text
    settings = load_settings(path, env={})
    values = settings.providers["musescore"]
    assert (values["consumer_key"].value, values["token"].value) == ("k", "a")
    assert settings.providers["imuze"]["email"].value == "me@example.com"
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_emulator_prints_a_ready_to_paste_export_block(clean_env: pathlib.Path) -> None:
    with subprocess.Popen(
        cli_command("emulator", "--port", "0", "--render-seconds", "0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env({}),
    ) as process:
        assert process.stdout is not None
        try:
            lines = []
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("Press Ctrl-C"):
                    break
            exports = [line for line in lines if line.startswith("export ")]
            # Pasted into a shell, then used by the CLI and by Client.from_env().
            script = "\n".join(exports) + '\nexec "$@"'
            listed = subprocess.run(
                ["sh", "-c", script, "sh", *cli_command("joplin", "genres", "--json")],
                capture_output=True,
                text=True,
                env=child_env({}),
                timeout=60,
            )
            assert listed.returncode == 0, listed.stderr
            assert listed.stderr == ""  # no note about an unknown variable
            assert json_lines(listed.stdout)
            env = dict(line.removeprefix("export ").split("=", 1) for line in exports)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                kit = imuzekit.Client.from_env(env)
            assert all(config is not None for config in kit._configs.values())
            assert kit.poll_policy.initial == 0.1
        finally:
            process.terminate()
            process.wait(10)
    assert {"IMUZEKIT_IMUZE_BASE_URL", "IMUZEKIT_MUREKA_ACCOUNTS"} <= set(env)


def test_the_cli_extra_brings_tomlkit() -> None:
    import tomllib

    with open(pathlib.Path(__file__).parents[2] / "pyproject.toml", "rb") as handle:
        extras = tomllib.load(handle)["project"]["optional-dependencies"]
    assert any(dep.startswith("tomlkit") for dep in extras["cli"])
    assert os.path.basename(sys.executable)
