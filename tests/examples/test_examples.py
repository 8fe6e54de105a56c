"""Every script in examples/ runs against the emulator, exits 0 and says what it did."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

# script -> (extra arguments, a line its output must contain, as a regular expression)
EXPECTED: dict[str, tuple[tuple[str, ...], str]] = {
    "quickstart.py": ((), r"^downloaded 'Morning Light': .+\.mp3 \(\d+ bytes\)$"),
    "bulk_pipeline.py": (
        ("--count", "25"),
        r"^pipeline done: 25 songs, [\d.]+ MB in .+ songs/s\)$",
    ),
    "joplin_structures.py": ((), r"^3 musics downloaded to "),
    "mureka_two_accounts.py": ((), r"^12 of 12 Mureka songs downloaded to "),
    "musescore_search_and_files.py": ((), r"^downloaded mid: .+\.mid \(\d+ bytes\)$"),
    "resume_in_another_process.py": ((), r"^resumed in another process: ok$"),
    "aiohttp_service.py": (("--selftest",), r'^POST /songs -> 200 \{"id": \d+, .*"size": \d+'),
}


def test_every_example_is_tested() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script: str, tmp_path: pathlib.Path) -> None:
    args, expected = EXPECTED[script]
    out = tmp_path / "out"
    # No IMUZEKIT_* variables: the examples must start their own emulator.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMUZEKIT_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args, "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(expected, result.stdout, re.MULTILINE), output
    # Files land only under --out (the working directory stays empty apart from it).
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert any(out.iterdir())
