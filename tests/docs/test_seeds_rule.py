"""The seed comparisons skip without the seeds, except on CI (`CI=true`), where they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# One test per provider compares tests/samples with the seeds through `require_seed`.
SEED_TESTS = [
    "tests/unit/test_imuze_api.py::test_samples_are_the_seed_bodies_verbatim",
    "tests/unit/test_joplin_api.py::test_samples_are_the_seed_bodies_verbatim",
    "tests/unit/test_mureka_api.py::test_samples_are_the_seed_bodies",
    "tests/unit/test_musescore_api.py::test_samples_are_the_seed_examples_verbatim",
]


def _run(missing: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "IMUZEKIT_SEEDS_DIR"}}
    env["IMUZEKIT_SEEDS_DIR"] = str(missing)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *SEED_TESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_missing_seeds_fail_on_ci_naming_the_folder(tmp_path: Path, ci: str) -> None:
    missing = tmp_path / "no-seeds-here"
    run = _run(missing, ci)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "4 failed" in run.stdout, run.stdout
    assert "skipped" not in run.stdout
    assert str(missing) in run.stdout and "IMUZEKIT_SEEDS_DIR" in run.stdout


def test_missing_seeds_skip_off_ci_naming_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-seeds-here"
    run = _run(missing, None)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 skipped" in run.stdout, run.stdout
    assert str(missing) in run.stdout


def test_seeds_beside_the_checkout_pass_on_ci() -> None:
    seeds = ROOT.parent / "shared" / "seeds"
    if not seeds.is_dir():
        pytest.skip(f"no seeds in {seeds}")
    run = _run(seeds, "true")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout, run.stdout
