"""`imuzekit imuze songs create` without `--arrangement`: the tags choose it (seed 001)."""

from __future__ import annotations

from tests.cli.conftest import EmulatorThread, invoke, json_lines


def test_create_from_tags_alone(emu_env: dict[str, str], emu_thread: EmulatorThread) -> None:
    created = invoke("imuze songs create --title Swing --tag jazz --tag swing --length 2 --json")
    assert created.exit_code == 0, created.output
    (song,) = json_lines(created.stdout)
    shown = invoke(["imuze", "songs", "show", str(song["job"]), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json_lines(shown.stdout)[0]["arrangement_name"] == "Jazz Piano Trio"


def test_create_without_arrangement_or_tag_names_the_field(emu_env: dict[str, str]) -> None:
    result = invoke("imuze songs create --title Nothing --length 2")
    assert result.exit_code != 0
    assert "tags" in result.output
