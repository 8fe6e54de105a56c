"""The Batch API from Python code (issue 18, point 1): events, status, bad lines, bad journals."""

from __future__ import annotations

import pathlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest

from imuzekit import Client, PollPolicy, batch, errors
from imuzekit.batch._journal import Journal
from imuzekit.emulator import Emulator
from tests.cli.conftest import music_line

POLL = PollPolicy(initial=0.02, max_interval=0.1, timeout=30)


def song(key: str, **extra: Any) -> dict[str, Any]:
    """An iMuze line titled in letters and spaces."""
    return {
        "provider": "imuze",
        "key": key,
        "title": "Morning Song",
        "arrangement_id": 1,
        "desired_length": 30,
    } | extra


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(render_seconds=(0.05, 0.15)) as server:
        yield server


@pytest.fixture
async def kit(emu: Emulator) -> AsyncIterator[Client]:
    async with emu.client(poll=POLL) as client:
        yield client


async def test_a_run_yields_each_lines_moves_and_files_in_order(
    emu: Emulator, kit: Client, tmp_path: pathlib.Path
) -> None:
    music = music_line("m1", 3000)
    async with batch.open(tmp_path / "b.db") as run:
        added = await run.add([song("a"), song("b"), music])
        assert added == batch.AddResult(3)
        events = [e async for e in run.run(client=kit, out=tmp_path / "out", concurrency=4)]
        status = await run.status()
    moves: dict[str, list[str]] = {}
    files: dict[str, batch.FileWritten] = {}
    for event in events:
        if isinstance(event, batch.LineChanged):
            assert event.previous == (moves[event.key][-1] if event.key in moves else "pending")
            moves.setdefault(event.key, []).append(event.state)
            if event.state == "downloaded":
                assert event.key in files
        elif isinstance(event, batch.FileWritten):
            assert moves[event.key][-1] == "ready"
            files[event.key] = event
    path = ["submitting", "submitted", "ready", "downloaded"]
    assert moves == {"a": path, "b": path, "m1": path}
    assert {e.key: e.provider for e in events if isinstance(e, batch.LineChanged)} == {
        "a": "imuze",
        "b": "imuze",
        "m1": "joplin",
    }
    assert files["a"].path == (tmp_path / "out" / "a.mp3").resolve()
    assert files["a"].sha256 == emu.imuze.audio_sha256(int(files["a"].remote_id or 0))
    assert files["m1"].sha256 == emu.joplin.audio_sha256(files["m1"].remote_id or "")
    assert status.done and status.total == 3 and status.problems == ()
    assert status.counts["downloaded"] == 3 and sum(status.counts.values()) == 3
    assert {(f.key, f.path, f.sha256) for f in status.files} == {
        (e.key, str(e.path), e.sha256) for e in files.values()
    }
    assert emu.imuze.songs_created == 2


async def test_adding_again_is_idempotent_and_a_second_run_sends_nothing(
    emu: Emulator, kit: Client, tmp_path: pathlib.Path
) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"provider": "imuze", "title": "Morning Song", "arrangement_id": 1,'
        ' "desired_length": 30}\n\n'
    )
    async with batch.open(tmp_path / "b.db") as run:
        assert (await run.add(manifest)).lines == 1
        assert [e async for e in run.run(client=kit, out=tmp_path)][-1] == batch.LineChanged(
            "1", 1, "imuze", "ready", "downloaded", None, 1
        )
        assert (await run.add(str(manifest))).lines == 1
        assert [e async for e in run.run(client=kit, out=tmp_path)] == []
    assert emu.imuze.songs_created == 1


async def test_a_bad_line_is_failed_with_its_reason_and_the_others_go_on(
    emu: Emulator, kit: Client, tmp_path: pathlib.Path
) -> None:
    lines: list[Any] = [
        song("ok-1"),
        song("long", desired_length="long"),
        '{"provider": "nowhere", "key": "lost"}',
        "not json",
        song("ok-2"),
        {"provider": "mureka", "key": "t", "prompt": "tea", "account": "000"},
        song("named", title="Song 3"),
    ]
    async with batch.open(tmp_path / "b.db") as run:
        added = await run.add(lines)
        assert [(r.line, r.key) for r in added.rejected] == [
            (2, "long"),
            (3, "lost"),
            (4, "4"),
            (7, "named"),
        ]
        assert added.rejected[0].reason == "desired_length: must be an integer, got string"
        assert added.rejected[1].reason.startswith("provider: must be one of ")
        assert "has '3', which iMuze does not allow" in added.rejected[3].reason
        failed = {row.key: row.error for row in await run.lines("failed")}
        assert failed == {r.key: r.reason for r in added.rejected}  # before anything is sent
        assert emu.imuze.songs_created == 0
        events = [e async for e in run.run(client=kit, out=tmp_path / "out", retry_failed=True)]
        status = await run.status()
        # The account is checked against the Client's: failed before anything is sent.
        [account] = [e for e in events if isinstance(e, batch.LineChanged) and e.key == "t"]
        assert (account.previous, account.state, account.attempts) == ("pending", "failed", 0)
        assert (account.error or "").startswith("'000' is not a configured account")
        assert status.counts["downloaded"] == 2 and status.counts["failed"] == 5
        assert {row.key for row in status.problems} == {"long", "lost", "4", "named", "t"}
        # A corrected line is sent; the rejected ones never are, even with retry_failed.
        assert (await run.add([song("long")], start=2)).rejected == ()
        assert [row.state for row in await run.lines(keys=["long"])] == ["pending"]
        assert [e async for e in run.run(client=kit, out=tmp_path / "out", retry_failed=True)]
        assert (await run.status()).counts["downloaded"] == 3
    assert emu.imuze.songs_created == 3
    assert emu.mureka.creations == 0


async def test_two_lines_with_one_key_add_nothing(tmp_path: pathlib.Path) -> None:
    async with batch.open(tmp_path / "b.db") as run:
        with pytest.raises(batch.ManifestError, match="'a' is already the key of line 1"):
            await run.add([song("a"), song("b"), song("a")])
        assert await run.lines() == []


async def test_a_journal_is_one_batch_at_a_time(tmp_path: pathlib.Path) -> None:
    async with batch.open(tmp_path / "b.db") as first:
        await first.add([song("a")])
        with pytest.raises(batch.JournalError, match="another `imuzekit batch` is using"):
            async with batch.open(tmp_path / "b.db"):
                pass
        # Reading beside a running batch is fine.
        async with batch.open(tmp_path / "b.db", create=False, lock=False) as reader:
            assert (await reader.status()).counts["pending"] == 1


async def test_stopping_the_iteration_stops_the_run_and_it_resumes(
    emu: Emulator, kit: Client, tmp_path: pathlib.Path
) -> None:
    async with batch.open(tmp_path / "b.db") as run:
        await run.add([song(f"s{n}") for n in range(6)])
        async for event in run.run(client=kit, out=tmp_path, concurrency=2):
            if isinstance(event, batch.LineChanged) and event.state == "submitted":
                break
        left = (await run.status()).counts
        assert left["downloaded"] < 6
        async for _ in run.run(client=kit, out=tmp_path, concurrency=6):
            pass
        assert (await run.status()).done
    assert emu.imuze.songs_created == 6


async def test_an_unconfigured_provider_is_an_error_before_anything_is_sent(
    emu: Emulator, tmp_path: pathlib.Path
) -> None:
    async with emu.client(joplin=None, poll=POLL) as kit, batch.open(tmp_path / "b.db") as run:
        await run.add(
            [
                song("a"),
                {
                    "provider": "joplin",
                    "genre": "electro",
                    "subgenre": "house",
                    "duration_ms": 3000,
                    "structure": "calm:1",
                },
            ]
        )
        with pytest.raises(errors.ConfigurationError, match="joplin"):
            async for _ in run.run(client=kit, out=tmp_path):
                pass
        assert (await run.status()).counts["pending"] == 2
    assert emu.imuze.songs_created == 0


async def test_an_unreachable_journal_url_is_an_error_naming_it_masked() -> None:
    url = "postgresql://batcher:pa55-Secret@127.0.0.1:1/songs"
    with pytest.raises(batch.JournalError) as caught:
        async with batch.open(url):
            pass
    message = str(caught.value)
    assert "cannot reach the PostgreSQL journal postgresql://batcher:***@127.0.0.1:1/songs" in (
        message
    )
    assert "pa55-Secret" not in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None


async def test_a_journal_of_another_schema_version_is_an_error_naming_it(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "b.db"
    async with batch.open(path) as run:
        await run.add([song("a")])
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = '9' WHERE name = 'schema_version'")
    db.close()
    with pytest.raises(batch.JournalError, match=f"{path} has journal schema 9, expected 2"):
        async with batch.open(path):
            pass
    with pytest.raises(batch.JournalError, match="no journal at"):
        async with batch.open(tmp_path / "none.db", create=False):
            pass


async def test_the_client_given_to_open_is_the_one_run_sends_through(
    emu: Emulator, kit: Client, tmp_path: pathlib.Path
) -> None:
    # The documented shape: open(journal, client=kit), then run(out_dir, ...).
    async with batch.open(tmp_path / "b.db", client=kit) as run:
        assert run.client is kit
        await run.add([song("a")])
        events = [e async for e in run.run(tmp_path / "out", concurrency=2)]
        assert (await run.status()).done
    assert [e.state for e in events if isinstance(e, batch.LineChanged)][-1] == "downloaded"
    assert emu.count("imuze", "POST", "/songs") == 1


async def test_a_run_without_a_client_is_refused_before_anything_is_sent(
    emu: Emulator, tmp_path: pathlib.Path
) -> None:
    async with batch.open(tmp_path / "b.db") as run:
        await run.add([song("a")])
        with pytest.raises(errors.ValidationError) as caught:
            _ = [e async for e in run.run(tmp_path / "out")]
        assert caught.value.field == "client"
        assert [line.state for line in await run.lines()] == ["pending"]
    assert emu.count("imuze", "POST", "/songs") == 0


async def test_a_file_recorded_by_a_dead_run_is_announced_again_by_the_run_that_ends_it(
    emu: Emulator, kit: Client, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run that dies between recording a file and finishing its line (here: the journal
    # refuses the line's last move) may never have delivered that file's event: the run that
    # ends the line announces the file again, without writing it again.
    def dies(*args: Any, **kwargs: Any) -> Any:
        raise batch.JournalError("disk gone")

    async with batch.open(tmp_path / "b.db", client=kit) as run:
        await run.add([song("a")])
        with monkeypatch.context() as patch:
            patch.setattr(Journal, "downloaded", dies)
            died = [e async for e in run.run(tmp_path)]
        assert [e.message for e in died if isinstance(e, batch.LineError)] == ["disk gone"]
        assert [line.state for line in await run.lines()] == ["ready"]
        (recorded,) = await run.files()
        before = pathlib.Path(recorded.path).stat()
        events = [e async for e in run.run(tmp_path)]
        assert (await run.status()).done
    files = [e for e in events if isinstance(e, batch.FileWritten)]
    assert [(f.key, f.path, f.size, f.sha256) for f in files] == [
        ("a", pathlib.Path(recorded.path), recorded.size, recorded.sha256)
    ]
    assert [e.state for e in events if isinstance(e, batch.LineChanged)] == ["downloaded"]
    after = pathlib.Path(recorded.path).stat()  # the same file, not written again
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert emu.imuze.songs_created == 1
