"""``imuzekit demo`` on a real terminal (a pty): the progress bars render, the table appears."""

from __future__ import annotations

import fcntl
import os
import pathlib
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _run_in_pty(argv: list[str], *, columns: int, rows: int, timeout: float) -> tuple[int, str]:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def test_demo_renders_progress_bars_and_a_table(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "demo"
    started = time.monotonic()
    code, screen = _run_in_pty(
        [sys.executable, "-m", "imuzekit.cli", "demo", "--out", str(out)],
        columns=120,
        rows=40,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    text = _ANSI.sub("", screen)
    assert code == 0, text[-3000:]
    assert elapsed < 30
    # rich redraws the bars in place: cursor movements, then the bar glyphs and percentages.
    assert "\x1b[" in screen and "\x1b[1A" in screen
    assert "━" in text
    for state in ("queued", "processing", "ready", "failed", "downloaded"):
        assert re.search(rf"{state}\s+━+", text), state
    assert re.search(r"\b\d{1,3}%", text) and "100%" in text
    # The final table, as wide as the terminal allows.
    assert re.search(r"provider\s+┃\s+title\s+┃\s+duration\s+┃\s+size\s+┃\s+path", text)
    assert re.search(r"22 files from 4 providers", text)
    assert max(len(line) for line in text.splitlines()) <= 120
    for provider, suffixes in {
        "imuze": {".mp3"},
        "joplin": {".mp3"},
        "mureka": {".mp3"},
        "musescore": {".pdf", ".mid"},
    }.items():
        files = list((out / provider).iterdir())
        assert files and {f.suffix for f in files} == suffixes, provider
        assert all(f.stat().st_size > 0 for f in files)
    assert len(list((out / "imuze").iterdir())) == 12
