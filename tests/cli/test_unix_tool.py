"""The CLI behaves like a Unix tool: quiet on a closed pipe, clean on Ctrl-C, one line if no click.

Every test runs the CLI as a child process, because what is checked (the exit status, every byte
on stderr, what happens at interpreter shutdown) only exists there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.cli.conftest import EmulatorThread, child_env, invoke

_TIMEOUT = 60

# Ctrl-C at the moment the work is done and the client starts closing: the child patches
# `Client.close` so that the SIGINT arrives exactly there (a real user's Ctrl-C lands anywhere;
# this is the window where an interrupted close used to leak the aiohttp session).
_SIGINT_WHILE_CLOSING = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from imuzekit.client import Client

    original = Client.close

    async def close(self):
        os.kill(os.getpid(), signal.SIGINT)
        if os.environ.get("TEST_YIELD_FIRST"):
            await asyncio.sleep(0)  # the first await of the close: the cancellation lands here
        await original(self)

    Client.close = close
    from imuzekit.cli import main
    main(sys.argv[1:])
    """
)

# A real missing package, not a mock: an import hook that refuses `click` (or `rich`) the way
# Python refuses a package that is not installed.
_WITHOUT = textwrap.dedent(
    """
    import importlib.abc, runpy, sys

    missing = sys.argv[1]

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == missing:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    how, args = sys.argv[2], sys.argv[3:]
    sys.argv = ["imuzekit", *args]
    if how == "script":  # what the `imuzekit` console script does
        from imuzekit.cli import main
        sys.exit(main())
    runpy.run_module(how, run_name="__main__", alter_sys=True)
    """
)


def _run(
    argv: Sequence[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        list(argv), capture_output=True, timeout=_TIMEOUT, env=env or child_env({}), check=False
    )


def _into_closed_pipe(args: Sequence[str]) -> tuple[int, bytes]:
    """Run the CLI with stdout on a pipe nobody reads any more (`imuzekit ... | head -0`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the child writes anything: every write is EPIPE
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "imuzekit.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=child_env({}),
        )
    finally:
        os.close(write_end)
    _, stderr = child.communicate(timeout=_TIMEOUT)
    return child.returncode, stderr


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    "args",
    [
        ["imuze", "arrangements", "--emulator", "--json"],  # click.echo inside the event loop
        ["imuze", "arrangements", "--emulator"],  # a rich table after the loop
        ["--help"],  # click's own output, before any command runs
        ["imuze", "songs", "--help"],  # a sub-group's help, inside the root group
        ["--version"],
    ],
    ids=["json", "table", "help", "group-help", "version"],
)
def test_a_closed_pipe_ends_the_command_quietly(args: list[str]) -> None:
    code, stderr = _into_closed_pipe(args)
    assert stderr == b""
    assert code == 0


@pytest.mark.usefixtures("clean_env")
def test_a_reader_that_stops_after_one_line_gets_one_line_and_no_error() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "imuzekit.cli", "imuze", "arrangements", "--emulator", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env({}),
    )
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline()
    child.stdout.close()  # what `head -1` does after its line
    stderr = child.stderr.read()
    code = child.wait(timeout=_TIMEOUT)
    child.stderr.close()
    assert first.startswith(b'{"id":')
    assert stderr == b""
    assert code == 0


@pytest.mark.usefixtures("clean_env")
def test_ctrl_c_while_the_embedded_emulator_client_closes_leaks_nothing() -> None:
    done = _run(
        [sys.executable, "-c", _SIGINT_WHILE_CLOSING, "imuze", "arrangements", "--emulator"],
        child_env({"TEST_YIELD_FIRST": "1"}),
    )
    assert done.stderr == b"Interrupted.\n"
    assert done.returncode == 130


def test_ctrl_c_while_the_configured_client_closes_leaks_nothing(
    emu_thread: EmulatorThread,
) -> None:
    env = child_env({**emu_thread.env(), "TEST_YIELD_FIRST": "1"})
    done = _run(
        [sys.executable, "-c", _SIGINT_WHILE_CLOSING, "imuze", "arrangements", "--json"], env
    )
    assert done.stderr == b"Interrupted.\n"
    assert done.returncode == 130


@pytest.mark.usefixtures("clean_env")
def test_ctrl_c_while_a_waited_job_closes_its_poller_leaks_nothing() -> None:
    # Closing a poller is the close's first real await: no extra await needed to land there.
    done = _run(
        [
            sys.executable,
            "-c",
            _SIGINT_WHILE_CLOSING,
            *("imuze", "songs", "create", "--arrangement", "1", "--title", "Morning"),
            *("--wait", "--emulator", "--json"),
        ]
    )
    assert done.stderr == b"Interrupted.\n"
    assert done.returncode == 130
    assert b'"state":"ready"' in done.stdout  # the job's line was printed before the Ctrl-C


@pytest.mark.parametrize(
    ("missing", "how"),
    [("click", "script"), ("rich", "script"), ("click", "imuzekit"), ("rich", "imuzekit.cli")],
)
def test_without_the_cli_extra_one_line_says_what_to_install(missing: str, how: str) -> None:
    done = _run([sys.executable, "-c", _WITHOUT, missing, how, "--help"])
    assert done.stdout == b""
    assert done.stderr.decode() == (
        f"imuzekit: the command line needs the cli extra (no module named {missing!r}): "
        "pip install 'imuzekit[cli]'\n"
    )
    assert done.returncode == 2


def test_a_missing_module_that_is_not_the_extra_is_not_disguised() -> None:
    done = _run([sys.executable, "-c", _WITHOUT, "attrs", "script", "--help"])
    assert b"Traceback" in done.stderr and b"No module named 'attrs'" in done.stderr
    assert b"imuzekit[cli]" not in done.stderr
    assert done.returncode == 1


def test_python_dash_m_imuzekit_runs_the_cli() -> None:
    done = _run([sys.executable, "-m", "imuzekit", "--help"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"Usage: imuzekit [OPTIONS] COMMAND [ARGS]...")
    assert done.stderr == b""


@pytest.mark.usefixtures("clean_env")
def test_ctrl_c_while_the_demo_closes_leaks_nothing(tmp_path: Path) -> None:
    # The demo opens its emulator and client itself (not through open_client).
    done = _run(
        [
            sys.executable,
            "-c",
            _SIGINT_WHILE_CLOSING,
            *("demo", "--out", str(tmp_path / "demo"), "--length", "1"),
        ],
        child_env({"TEST_YIELD_FIRST": "1"}),
    )
    assert done.stderr == b"Interrupted.\n"
    assert done.returncode == 130


def test_a_broken_pipe_that_is_not_stdout_is_reported(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A command whose subprocess (or socket) went away: stdout is fine, so the error is real.
    from imuzekit.cli.batch import status

    def broken(**_: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(status, "callback", broken)
    result = invoke(["batch", "status"])
    assert result.exit_code == 1
    assert result.stderr == "error: [Errno 32] Broken pipe\n"


@pytest.mark.usefixtures("clean_env")
def test_a_broken_pipe_that_is_not_stdout_is_reported_by_the_process() -> None:
    # The same in a real process with stdout on a live pipe: not mistaken for `| head`.
    script = textwrap.dedent(
        """
        import sys
        from imuzekit.cli.batch import status

        def broken(**_):
            raise BrokenPipeError(32, "Broken pipe")

        status.callback = broken
        from imuzekit.cli import main
        main(sys.argv[1:])
        """
    )
    done = _run([sys.executable, "-c", script, "batch", "status"])
    assert done.stderr == b"error: [Errno 32] Broken pipe\n"
    assert done.returncode == 1


@pytest.mark.parametrize(("level", "shown"), [("debug", True), ("info", False), ("", False)])
def test_imuzekit_log_sends_the_log_lines_to_stderr(level: str, shown: bool) -> None:
    env = child_env({"IMUZEKIT_LOG": level} if level else {})
    done = _run([sys.executable, "-m", "imuzekit", "imuze", "arrangements", "--emulator"], env)
    assert done.returncode == 0, done.stderr
    # A DEBUG line per request, on the imuzekit.http logger, with no credential in it.
    assert (b"DEBUG imuzekit.http: GET http://127.0.0.1:" in done.stderr) is shown
    assert b"password" not in done.stderr.lower()


def test_a_bad_imuzekit_log_is_a_usage_error() -> None:
    argv = [sys.executable, "-m", "imuzekit", "imuze", "arrangements", "--emulator"]
    done = _run(argv, child_env({"IMUZEKIT_LOG": "loud"}))
    assert done.returncode == 2
    assert b"IMUZEKIT_LOG must be one of debug, info" in done.stderr
