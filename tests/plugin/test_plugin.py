"""The pytest plugin, as a user's project sees it: a temporary project using only its fixtures."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

PASSING = """
import pytest

from imuzekit import JobState


async def test_song_end_to_end(imuzekit_client, tmp_path):
    arrangement = [a async for a in imuzekit_client.imuze.arrangements.list()][0]
    job = await imuzekit_client.imuze.songs.create(
        title="Plugin", arrangement_id=arrangement.id, tags=["x"], desired_length=10
    )
    song = await job.wait(timeout=10)
    assert job.state is JobState.READY
    path = await imuzekit_client.download(song, tmp_path)
    assert path.stat().st_size > 0


async def test_emulator_alone(imuzekit_emulator):
    assert imuzekit_emulator.running
    assert imuzekit_emulator.urls["imuze"].startswith("http://127.0.0.1:")


@pytest.mark.imuzekit_faults(("imuze", "GET /arrangements*", {"status": 503, "times": 2}))
async def test_faults_are_installed(imuzekit_client, imuzekit_emulator):
    arrangements = [a async for a in imuzekit_client.imuze.arrangements.list()]
    assert arrangements
    # Two 503 answers, retried by the client, then the real one.
    assert imuzekit_emulator.count("imuze", "GET", "/arrangements*") == 3


@pytest.mark.imuzekit_faults(("imuze", "GET /arrangements*", {"status": 404, "times": None}))
async def test_a_permanent_fault(imuzekit_client):
    from imuzekit import errors

    with pytest.raises(errors.NotFoundError):
        [a async for a in imuzekit_client.imuze.arrangements.list()]
"""

FAILING = """
async def test_fails(imuzekit_client):
    joplin = await imuzekit_client.joplin.genres()
    assert joplin == []
"""

PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
addopts = --strict-markers
"""


def _run(project: pathlib.Path, test_source: str) -> subprocess.CompletedProcess[str]:
    (project / "pytest.ini").write_text(PYTEST_INI)
    (project / "test_user.py").write_text(textwrap.dedent(test_source))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "IMUZEKIT_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _output(project: pathlib.Path, test_source: str, exit_code: int) -> str:
    """What a run of `test_source` printed, asserting that it ended with `exit_code`."""
    result = _run(project, test_source)
    output = result.stdout + result.stderr
    assert result.returncode == exit_code, output
    return output


def test_a_user_project_passes_with_only_the_plugin(tmp_path: pathlib.Path) -> None:
    result = _run(tmp_path, PASSING)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_a_failing_user_test_fails(tmp_path: pathlib.Path) -> None:
    result = _run(tmp_path, FAILING)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout


def test_the_marker_is_registered(pytestconfig: pytest.Config) -> None:
    markers = pytestconfig.getini("markers")
    assert any(line.startswith("imuzekit_faults(") for line in markers)


def test_a_malformed_marker_is_a_usage_error(tmp_path: pathlib.Path) -> None:
    result = _run(
        tmp_path,
        """
        import pytest

        @pytest.mark.imuzekit_faults("imuze")
        async def test_bad(imuzekit_emulator):
            pass
        """,
    )
    assert result.returncode != 0
    assert "each fault is (provider, pattern)" in result.stdout + result.stderr


def test_a_marker_on_a_test_without_the_fixtures_is_a_usage_error(tmp_path: pathlib.Path) -> None:
    output = _output(
        tmp_path,
        """
        import pytest

        @pytest.mark.imuzekit_faults(("imuze", "GET /arrangements*", {"status": 503}))
        async def test_forgot_the_fixture():
            pass

        @pytest.mark.imuzekit_faults(("imuze", "GET /arrangements*", {"status": 503}))
        def test_forgot_it_too(tmp_path):
            pass

        @pytest.mark.imuzekit_faults(("imuze", "GET /arrangements*", {"status": 503}))
        async def test_asks_for_it(imuzekit_emulator):
            pass
        """,
        pytest.ExitCode.USAGE_ERROR,
    )
    assert "test_user.py::test_forgot_the_fixture" in output
    assert "test_user.py::test_forgot_it_too" in output
    assert "test_asks_for_it" not in output
    assert "imuzekit_emulator" in output
    assert "imuzekit_client" in output
    assert "passed" not in output  # nothing ran


def test_a_marker_reaches_the_fixtures_through_other_fixtures_and_classes(
    tmp_path: pathlib.Path,
) -> None:
    result = _run(
        tmp_path,
        """
        import pytest

        @pytest.fixture
        def songs(imuzekit_client):
            return imuzekit_client.imuze.songs

        @pytest.mark.imuzekit_faults(("imuze", "GET /arrangements*", {"status": 404}))
        async def test_through_a_fixture(songs, imuzekit_emulator):
            assert len(imuzekit_emulator.faults) == 1

        # A class's (or module's) marker applies to its tests that use the fixtures; the others
        # are left alone.
        @pytest.mark.imuzekit_faults(("imuze", "GET /arrangements*", {"status": 404}))
        class TestMixed:
            async def test_uses_it(self, imuzekit_emulator):
                assert len(imuzekit_emulator.faults) == 1

            def test_pure(self):
                assert True
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def _setup_error(project: pathlib.Path, fault: str) -> str:
    """The output of a run whose one test carries `fault`, asserting that it errored at setup."""
    output = _output(
        project,
        f"""
        import pytest

        @pytest.mark.imuzekit_faults({fault})
        async def test_bad(imuzekit_client):
            pass
        """,
        pytest.ExitCode.TESTS_FAILED,
    )
    assert "1 error" in output
    assert "@pytest.mark.imuzekit_faults on test_user.py::test_bad" in output
    return output


def test_a_typo_in_a_fault_option_lists_the_valid_ones(tmp_path: pathlib.Path) -> None:
    output = _setup_error(tmp_path, '("imuze", "GET /songs/*", {"staus": 503})')
    assert "unknown fault option 'staus' (did you mean 'status'?)" in output
    assert (
        "valid options: after_handler, body, content_length, delay, garbage, headers, "
        "ignore_range, read_first, reset, retry_after, status, times, truncate"
    ) in output


def test_a_typo_in_a_provider_lists_the_valid_ones(tmp_path: pathlib.Path) -> None:
    output = _setup_error(tmp_path, '("imuz", "GET /songs/*", {"status": 503})')
    assert "unknown provider 'imuz' (did you mean 'imuze'?)" in output
    assert "valid providers: '*', imuze, joplin, mureka, musescore" in output


def test_a_bad_fault_value_names_the_test(tmp_path: pathlib.Path) -> None:
    output = _setup_error(tmp_path, '("imuze", "GET /songs/*", {"status": 99})')
    assert "status must be an HTTP status in 200..599, got 99" in output
