"""Issue 14, point 7, at the CLI: a deeply nested answer is one line and an exit code, never a
traceback, in a provider command and in ``batch run`` (which used to crash with RecursionError).
"""

from __future__ import annotations

import json
import pathlib

from tests.cli.conftest import EmulatorThread, batch_run_argv, invoke, json_lines, song_line

ABYSS = b"[" * 100_000


def test_a_nested_answer_is_one_line_and_exit_1(
    emu_env: dict[str, str], emu_thread: EmulatorThread
) -> None:
    emu = emu_thread.emu
    emu_thread.call(
        lambda: emu.faults.add("imuze", "GET /arrangements*", status=200, body=ABYSS, times=None)
    )
    result = invoke(["imuze", "arrangements"])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "nested more than 128 levels" in line
    assert "Traceback" not in result.output


def test_batch_run_reports_a_nested_status_answer_and_keeps_the_line_resumable(
    emu_env: dict[str, str], emu_thread: EmulatorThread, tmp_path: pathlib.Path
) -> None:
    emu = emu_thread.emu
    emu_thread.call(
        lambda: emu.faults.add("imuze", "GET /songs/*", status=200, body=ABYSS, times=None)
    )
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(song_line("s1")) + "\n")
    out = tmp_path / "out"
    result = invoke(batch_run_argv(manifest, out, None))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "RecursionError" not in result.output
    assert "(key 's1', imuze) submitted: imuze answered 200 with JSON nested more than 128" in (
        result.stdout
    )
    # The song was created and paid for: the line waits for a later run, it is not lost.
    status = json_lines(invoke(["batch", "status", "--out", str(out), "--json"]).stdout)[0]
    assert status["counts"]["submitted"] == 1, status


def test_a_nested_manifest_line_is_a_manifest_error_not_a_crash(tmp_path: pathlib.Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(song_line("a")) + "\n" + "[" * 100_000 + "\n", encoding="utf-8")
    result = invoke(batch_run_argv(manifest, tmp_path / "out", None, "--emulator"))
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "line 2" in line and "nested more than 128" in line
    assert "Traceback" not in result.output
