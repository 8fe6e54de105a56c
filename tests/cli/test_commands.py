"""The provider and config commands, in-process with CliRunner, against the emulator."""

from __future__ import annotations

import os
import pathlib
import re
import stat
import subprocess
import tomllib
import urllib.request

import pytest

from tests.cli.conftest import EmulatorThread, child_env, cli_command, invoke, json_lines


def test_help_lists_every_command() -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0
    for name in ("batch", "config", "demo", "emulator", "imuze", "joplin", "mureka", "musescore"):
        assert name in result.stdout


def test_every_list_command_prints_json_lines(
    emu_env: dict[str, str], tmp_path: pathlib.Path
) -> None:
    created = invoke(
        "imuze songs create --arrangement 1 --title Teatime --tag a --tag b --length 3"
        " --count 2 --wait --json"
    )
    assert created.exit_code == 0, created.output
    songs = json_lines(created.stdout)
    assert [s["state"] for s in songs] == ["ready", "ready"]
    mureka = invoke(["mureka", "create", "--prompt", "a calm tune", "--json"])
    assert mureka.exit_code == 0, mureka.output
    assert len(json_lines(mureka.stdout)) == 2  # a feed holds two songs

    commands = [
        ["imuze", "arrangements"],
        ["imuze", "songs", "list"],
        ["imuze", "songs", "show", str(songs[0]["id"])],
        ["joplin", "genres"],
        ["mureka", "list"],
        ["musescore", "search", "bach", "--limit", "3"],
        ["config", "show"],
    ]
    for command in commands:
        result = invoke([*command, "--json"])
        assert result.exit_code == 0, (command, result.output)
        objects = json_lines(result.stdout)
        assert objects, command
    listed = json_lines(invoke(["imuze", "songs", "list", "--json"]).stdout)
    assert {s["title"] for s in listed} == {"Teatime"}
    assert {tuple(s["tags"]) for s in listed} <= {("a", "b"), ()}
    feeds = json_lines(invoke(["mureka", "list", "--json"]).stdout)
    assert len(feeds) == 1 and feeds[0]["account"] in emu_env["IMUZEKIT_MUREKA_ACCOUNTS"]


def test_create_commands_download_with_out(emu_env: dict[str, str], tmp_path: pathlib.Path) -> None:
    out = tmp_path / "files"
    joplin = invoke(
        "joplin create --genre electronic --subgenre house --duration 1m30s"
        f" --structure calm:0.3,dynamic:0.7 --out {out} --json"
    )
    assert joplin.exit_code == 0, joplin.output
    (music,) = json_lines(joplin.stdout)
    assert music["duration"] == "90 s" and pathlib.Path(music["path"]).is_file()
    score_id = json_lines(invoke(["musescore", "search", "--limit", "1", "--json"]).stdout)[0]["id"]
    files = invoke(f"musescore download {score_id} --format pdf --format mid --out {out} --json")
    assert files.exit_code == 0, files.output
    rows = json_lines(files.stdout)
    assert {r["format"] for r in rows} == {"pdf", "mid"}
    assert pathlib.Path(rows[0]["path"]).read_bytes()[:4] in (b"%PDF", b"MThd")


def test_emulator_flag_needs_no_configuration(clean_env: pathlib.Path) -> None:
    result = invoke(["joplin", "genres", "--emulator", "--json"])
    assert result.exit_code == 0, result.output
    assert {"name", "subgenres"} <= json_lines(result.stdout)[0].keys()
    created = invoke(
        "imuze songs create --emulator --arrangement 1 --title Morning --length 2 --json"
    )
    assert created.exit_code == 0
    assert json_lines(created.stdout)[0]["token"]["provider"] == "imuze"  # nested, not a string


def test_missing_configuration_is_one_line_and_exit_2(clean_env: pathlib.Path) -> None:
    result = invoke(["imuze", "arrangements"])
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: iMuze API v4 is not configured")
    assert "IMUZEKIT_IMUZE_TOKEN" in line and "Traceback" not in result.stderr


def test_bad_usage_exits_2(clean_env: pathlib.Path) -> None:
    result = invoke(
        "joplin create --genre g --subgenre s --duration soon --structure calm:1 --emulator"
    )
    assert result.exit_code == 2
    assert "not a duration" in result.stderr
    structure = invoke(
        "joplin create --genre g --subgenre s --duration 30s --structure calm:0.5 --emulator"
    )
    assert structure.exit_code == 2 and "add up to 1" in structure.stderr


def test_api_error_exits_1_with_one_line(emu_env: dict[str, str]) -> None:
    result = invoke(["imuze", "songs", "show", "987654"])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "check the id" in line


def test_unreachable_service_says_so(
    clean_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMUZEKIT_IMUZE_TOKEN", "t")
    monkeypatch.setenv("IMUZEKIT_IMUZE_BASE_URL", "http://127.0.0.1:9/api/4")  # discard port
    result = invoke(["imuze", "arrangements"])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "cannot reach" in line and "emulator" in line


def test_debug_shows_the_traceback_and_the_request_log(emu_env: dict[str, str]) -> None:
    result = invoke(["--debug", "imuze", "songs", "show", "987654"])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "DEBUG imuzekit" in result.stderr and "/songs/987654" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: ")


def _write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _show(*args: str) -> dict[str, dict[str, dict[str, object]]]:
    result = invoke([*args, "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    return {obj["section"]: obj["values"] for obj in json_lines(result.stdout)}


def test_config_precedence_env_over_file_over_default(
    clean_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        clean_env / "imuzekit" / "config.toml",
        '[imuze]\nemail = "file@example.com"\nbase_url = "http://file.example/api/4"\n'
        '[mureka]\naccounts = ["1", "2"]\nmax_parallel_per_account = 3\n[poll]\ninitial = 0.5\n',
    )
    monkeypatch.setenv("IMUZEKIT_IMUZE_EMAIL", "env@example.com")
    monkeypatch.setenv("IMUZEKIT_MUREKA_ACCOUNTS", "7, 8")
    shown = _show()
    assert shown["imuze"]["email"] == {"value": "env@example.com", "source": "env"}
    assert shown["imuze"]["base_url"] == {"value": "http://file.example/api/4", "source": "file"}
    assert shown["imuze"]["auth_scheme"] == {"value": None, "source": "default"}
    assert shown["joplin"]["base_url"] == {"value": "http://joplin.imuze.io", "source": "default"}
    assert shown["mureka"]["accounts"] == {"value": ["7", "8"], "source": "env"}
    assert shown["mureka"]["max_parallel_per_account"] == {"value": 3, "source": "file"}
    assert shown["poll"]["initial"] == {"value": 0.5, "source": "file"}
    # --config points elsewhere: the default file no longer counts.
    other = _write(clean_env.parent / "other.toml", '[imuze]\nbase_url = "http://other/api"\n')
    shown = _show("--config", str(other))
    assert shown["imuze"]["base_url"] == {"value": "http://other/api", "source": "file"}
    assert shown["mureka"]["max_parallel_per_account"]["source"] == "default"


def test_config_show_masks_secrets(
    clean_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        clean_env / "imuzekit" / "config.toml",
        '[imuze]\nemail = "me@example.com"\npassword = "file-secret-pw"\n'
        '[musescore]\nconsumer_key = "ck"\nconsumer_secret = "file-secret-cs"\n',
    )
    monkeypatch.setenv("IMUZEKIT_MUREKA_TOKEN", "env-secret-token")
    human = invoke(["config", "show"])
    machine = invoke(["config", "show", "--json"])
    for result in (human, machine):
        assert result.exit_code == 0
        for secret in ("file-secret-pw", "file-secret-cs", "env-secret-token"):
            assert secret not in result.output
        assert "***" in result.stdout
    assert "me@example.com" in human.stdout and "ck" in human.stdout
    shown = {o["section"]: o for o in json_lines(machine.stdout)}
    assert shown["imuze"]["configured"] is True
    assert shown["imuze"]["values"]["password"] == {"value": "***", "source": "file"}
    assert shown["mureka"]["values"]["token"] == {"value": "***", "source": "env"}
    assert shown["joplin"]["configured"] is False


def test_bad_config_file_is_a_usage_error(clean_env: pathlib.Path) -> None:
    path = _write(clean_env / "imuzekit" / "config.toml", "[imuze]\nemial = 'typo'\n")
    result = invoke(["config", "show"])
    assert result.exit_code == 2
    assert "unknown field 'emial' in [imuze]" in result.stderr and str(path) in result.stderr
    _write(path, "[imuze\n")
    assert invoke(["config", "show"]).exit_code == 2


def test_musescore_login_stores_the_token_0600(
    emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    env = emu_thread.env()
    env.pop("IMUZEKIT_MUSESCORE_TOKEN")
    env.pop("IMUZEKIT_MUSESCORE_TOKEN_SECRET")
    config = _write(
        tmp_path / "cfg" / "config.toml",
        '# mine\n[imuze]\nemail = "quote\\" back\\\\slash \\u00e9"\n',
    )
    config.chmod(0o644)
    with subprocess.Popen(
        cli_command("--config", str(config), "musescore", "login"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(env),
    ) as process:
        assert process.stdout is not None and process.stdin is not None
        url = process.stdout.readline().strip()
        assert url.startswith(env["IMUZEKIT_MUSESCORE_AUTHORIZE_URL"] + "?oauth_token="), url
        # What the user does: open the page, approve, read the code off it.
        with urllib.request.urlopen(url, timeout=10) as page:
            html = page.read().decode()
        verifier = re.search(r'<code id="oauth_verifier">([^<]+)</code>', html)
        assert verifier is not None
        stdout, stderr = process.communicate(verifier.group(1) + "\n", timeout=30)
    assert process.returncode == 0, stderr
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    data = tomllib.loads(config.read_text())
    assert data["imuze"]["email"] == 'quote" back\\slash é'  # the rest is kept
    token, secret = data["musescore"]["token"], data["musescore"]["token_secret"]
    assert token and secret and secret not in stdout + stderr
    # It is the access token the service issued, with its secret.
    issued = emu_thread.call(lambda: emu_thread.emu.musescore.access_tokens.get(token))
    assert issued is not None and issued.secret == secret


def test_musescore_login_needs_the_consumer_secret(clean_env: pathlib.Path) -> None:
    result = invoke(["musescore", "login"])
    assert result.exit_code == 2
    assert "IMUZEKIT_MUSESCORE_CONSUMER_SECRET" in result.stderr
