"""The batch progress view (`BatchBoard`): one overall bar (lines done of the total, the rate,
the time left), a compact line of counts per state, a bytes bar with its throughput and, on a
PostgreSQL journal, the live workers; rendered by rich on a recording terminal console."""

from __future__ import annotations

import io
import pathlib
import re

import attrs
from rich.console import Console

from imuzekit import PollPolicy, batch
from imuzekit.batch._journal import STATES
from imuzekit.cli._progress import BatchBoard, ByteMeter
from imuzekit.emulator import Emulator
from tests.batch.test_library import song
from tests.batch_pg import conftest as _pg

# The PostgreSQL server of tests/batch_pg (given by IMUZEKIT_TEST_POSTGRES_URL, or started).
pg_url = _pg.pg_url
pg_schema = _pg.pg_schema


def _console() -> Console:
    return Console(file=io.StringIO(), record=True, force_terminal=True, width=140)


@attrs.define
class _Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@attrs.frozen
class _Worker:
    host: str
    leases: int
    slots: int
    idle_seconds: float


def _render(console: Console, board: BatchBoard) -> str:
    console.print(board.renderable())
    return console.export_text()


def test_the_view_shows_the_bar_the_rate_the_eta_the_states_the_bytes_and_the_workers() -> None:
    console, clock = _console(), _Clock()
    board = BatchBoard(console, STATES, clock=clock)
    board.set_total(200)
    board.update({"downloaded": 10, "pending": 190})  # done before this run
    clock.now += 60
    board.update({"pending": 150, "submitted": 8, "downloaded": 40, "failed": 2})
    board.add_bytes(1_000_000, 2_000_000)
    clock.now += 2
    board.add_bytes(1_000_000, 0)
    board.show_workers(
        [
            _Worker("alpha", leases=4, slots=1, idle_seconds=1.0),
            _Worker("beta", leases=2, slots=1, idle_seconds=3.0),
            _Worker("gamma", leases=5, slots=0, idle_seconds=45.0),  # killed: silent
        ],
        30.0,
    )
    text = _render(console, board)
    lines = text.splitlines()
    assert len(lines) == 4, text
    bar, states, data, workers = lines
    # 32 lines settled in 60 s: 32/min; 158 left: 296 s.
    assert re.match(r"lines\s+[━╸╺]+\s+21%\s+42/200 done  32\.0 lines/min  ETA 0:04:56$", bar), bar
    assert states == (
        "states      pending 150 · submitting 0 · submitted 8 · ready 0 · downloaded 40 · "
        "failed 2 · uncertain 0"
    )
    assert re.match(r"downloaded\s+[━╸╺]+\s+100%\s+2\.0 MB / 2\.0 MB  500\.0 kB/s$", data), data
    assert workers == (
        "workers     2 live on 2 hosts (alpha, beta): 6 lines held, 2 generation slots; "
        "1 silent > 30 s: their lines are taken over"
    )


def test_before_any_progress_the_rate_and_eta_are_unknown_not_invented() -> None:
    console = _console()
    board = BatchBoard(console, STATES, clock=_Clock())
    board.set_total(5)
    board.update({"pending": 5})
    text = _render(console, board)
    assert "0/5 done  - lines/min  ETA -" in text
    assert "states      pending 5 · submitting 0" in text
    assert "workers" not in text  # SQLite: no workers line
    assert re.search(r"downloaded\s+[━╸╺]+\s+0 B$", text, re.MULTILINE), text


def test_a_disabled_view_writes_nothing() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with BatchBoard(console, STATES, enabled=False) as board:
        board.set_total(3)
        board.update({"downloaded": 3})
        board.add_bytes(10, 10)
        board.finish_bytes()
    assert out.getvalue() == ""


async def _drive(journal: str | pathlib.Path, out: pathlib.Path, **schema: str) -> list[str]:
    """Run four lines with the view on a recording terminal; the lines of its last frame."""
    console = _console()
    board = BatchBoard(console, STATES)
    async with (
        Emulator(render_seconds=(0.05, 0.1)) as emu,
        emu.client(poll=PollPolicy(initial=0.02, max_interval=0.1, timeout=30)) as kit,
        batch.open(journal, client=kit, **schema) as run,
    ):
        await run.add([song(f"s{n}") for n in range(4)])
        meter = ByteMeter(board.add_bytes)
        with board:
            async for _ in run.run(out, board=board, on_download=lambda key, i: meter.callback()):
                pass
        console.print(board.renderable())
    return console.export_text().splitlines()


def _assert_finished(frame: list[str]) -> None:
    assert re.match(r"lines\s+[━╸╺]+\s+100%\s+4/4 done  [\d.]+ lines/min  ETA 0:00:00$", frame[0])
    assert frame[1].startswith("states      pending 0 · submitting 0 · ")
    assert frame[1].endswith("downloaded 4 · failed 0 · uncertain 0")
    assert re.match(
        r"downloaded\s+[━╸╺]+\s+100%\s+([\d.]+ [kM]B) / \1  [\d.]+ [kMG]?B/s$", frame[2]
    )


async def test_a_sqlite_run_drives_the_view_to_the_end(tmp_path: pathlib.Path) -> None:
    text = await _drive(tmp_path / "b.db", tmp_path / "out")
    _assert_finished(text[-3:])  # no workers line on SQLite
    assert not any(line.startswith("workers") for line in text)


async def test_a_postgresql_run_shows_the_whole_batch_and_its_workers(
    pg_url: str,
    pg_schema: str,
    tmp_path: pathlib.Path,
) -> None:
    text = await _drive(pg_url, tmp_path / "out", schema=pg_schema)
    _assert_finished(text[-4:-1])
    # While it ran, this worker was live; its last reading (after it unregistered) shows none.
    assert "workers     1 live on 1 host" in "\n".join(text)
    assert re.match(r"workers\s+0 live on 0 hosts \(\): 0 lines held", text[-1]), text[-1]
