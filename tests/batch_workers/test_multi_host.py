"""Acceptance: workers on separate test hosts share one PostgreSQL batch while random workers
are killed with SIGKILL (at least 20 times) and restarted.

Where the machine allows it (root, ``ip``), each worker host is a network namespace of its own
(`tests.batch_workers._hosts`): the emulator and PostgreSQL are on the "server" side of a
bridge, the workers reach them over veth links, and each records its files under its own
hostname. Otherwise the workers are processes on 127.0.0.1 (the reason is printed).

In the end every line is ``downloaded``, each line made exactly one remote creation (the
emulator's counters), every file's SHA-256 is the emulator's, and no lease is left held.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.batch_workers._hosts import Forwarder, Hosts, open_hosts
from tests.batch_workers._lines import manifest_text
from tests.cli.conftest import EmulatorThread

N_LINES = 150  # 100 iMuze songs, 50 Mureka feeds (two files each)
N_HOSTS = 4
KILLS = 20
LEASE = 2.0
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def hosts() -> Iterator[Hosts | None]:
    made, why = open_hosts(N_HOSTS)
    print(f"worker hosts: {why}")
    try:
        yield made
    finally:
        if made is not None:
            made.remove()


def _env(emu: EmulatorThread) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("IMUZEKIT_")}
    return {**base, **emu.env(), "PYTHONPATH": str(ROOT)}


def _query(url: str, schema: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, options=f"-c search_path={schema}") as conn:
        return list(conn.execute(sql).fetchall())


def _busy(url: str, schema: str) -> set[int]:
    """The pids of the live workers holding leases now (none before the schema exists)."""
    try:
        rows = _query(
            url,
            schema,
            "SELECT w.pid FROM workers w WHERE w.stopped_at IS NULL AND EXISTS"
            " (SELECT 1 FROM lines l WHERE l.lease_owner = w.id"
            " AND l.lease_until > extract(epoch FROM clock_timestamp()))",
        )
    except psycopg.errors.UndefinedTable:
        return set()
    return {int(str(pid)) for (pid,) in rows}


def test_workers_on_many_hosts_survive_twenty_kills(
    hosts: Hosts | None, pg_url: str, pg_schema: str, tmp_path: pathlib.Path
) -> None:
    server = hosts.server if hosts is not None else "127.0.0.1"
    emu_thread = EmulatorThread(host=server, render_seconds=(0.5, 2.0))
    forwarder: Forwarder | None = None
    workers: dict[int, subprocess.Popen[bytes]] = {}
    try:
        emu = emu_thread.emu
        url = pg_url
        if hosts is not None:
            parsed = psycopg.conninfo.conninfo_to_dict(pg_url)
            forwarder = Forwarder(server, (str(parsed["host"]), int(str(parsed["port"]))))
            url = psycopg.conninfo.make_conninfo(pg_url, host=server, port=str(forwarder.port))
        manifest = tmp_path / "manifest.jsonl"
        manifest.write_text(manifest_text(N_LINES))
        env = _env(emu_thread)

        def start(host: int) -> subprocess.Popen[bytes]:
            out = tmp_path / f"host{host}"
            command = [
                sys.executable, "-m", "tests.batch_workers._worker",
                url, pg_schema, str(manifest), str(out), str(LEASE), "6",
            ]  # fmt: skip
            if hosts is not None:
                command = hosts.argv(host, command)
            with (tmp_path / f"worker{host}.log").open("ab") as log:
                return subprocess.Popen(
                    command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log
                )

        rng = random.Random(18)
        started = time.monotonic()
        for host in range(1, N_HOSTS + 1):
            workers[host] = start(host)
        kills = 0
        while kills < KILLS:
            # A worker that is working: registered and holding leases (by its pid, which the
            # namespaces share), killed a random moment later.
            time.sleep(rng.uniform(0.2, 0.6))
            busy = _busy(pg_url, pg_schema)
            victims = [h for h, c in workers.items() if c.pid in busy and c.poll() is None]
            assert time.monotonic() - started < 90, f"only {kills} kills in 90 s"
            if not victims:
                continue
            host = rng.choice(victims)
            child = workers[host]
            os.kill(child.pid, signal.SIGKILL)  # this very worker, by its pid
            child.wait(10)
            assert child.returncode == -signal.SIGKILL
            kills += 1
            workers[host] = start(host)
        # Let the survivors (and the restarted) finish the batch.
        for host, child in workers.items():
            try:
                child.wait(max(5.0, 100 - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
                raise AssertionError(f"worker {host} did not finish") from None
            stderr = (tmp_path / f"worker{host}.log").read_text(errors="replace")
            assert child.returncode == 0, stderr[-3000:]
        elapsed = time.monotonic() - started

        counts = dict(_query(pg_url, pg_schema, "SELECT state, count(*) FROM lines GROUP BY 1"))
        assert counts == {"downloaded": N_LINES}
        created = emu_thread.call(lambda: (emu.imuze.songs_created, emu.mureka.creations))
        assert created == (100, 50)  # exactly one remote creation per line
        files = _query(
            pg_url,
            pg_schema,
            "SELECT l.provider, f.remote_id, f.host, f.path, f.size, f.sha256"
            " FROM files f JOIN lines l USING (key)",
        )
        assert len(files) == 100 + 2 * 50
        for provider, remote_id, _host, path, size, digest in files:
            data = pathlib.Path(str(path)).read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest), path
            if provider == "imuze":
                expected = emu_thread.call(lambda r=remote_id: emu.imuze.audio_sha256(int(r)))
            else:
                expected = emu_thread.call(lambda r=remote_id: emu.mureka.audio_sha256(r))
            assert digest == expected, (provider, remote_id)
        if hosts is not None:
            recorded = {str(h) for _, _, h, _, _, _ in files}
            assert recorded <= {f"worker-{i}" for i in range(1, N_HOSTS + 1)}
            assert len(recorded) >= 2
        held = _query(pg_url, pg_schema, "SELECT count(*) FROM lines WHERE lease_owner IS NOT NULL")
        assert held == [(0,)]
        time.sleep(LEASE)  # a killed worker's slot lapses by itself
        live_slots = _query(
            pg_url,
            pg_schema,
            "SELECT count(*) FROM slots WHERE lease_until > extract(epoch FROM clock_timestamp())",
        )
        assert live_slots == [(0,)]
        takeovers = _query(pg_url, pg_schema, "SELECT sum(takeovers) FROM lines")[0][0]
        reconciled = _query(
            pg_url, pg_schema, "SELECT count(*) FROM events WHERE detail LIKE 'reconciled%'"
        )[0][0]
        registered = _query(pg_url, pg_schema, "SELECT count(*) FROM workers")[0][0]
        running = emu_thread.call(lambda: dict(emu.mureka.max_running))
        print(
            f"{registered} workers registered, {kills} kills, {elapsed:.1f} s, "
            f"{takeovers} takeovers, {reconciled} reconciled, "
            f"max Mureka running {max(running.values())}"
        )
        assert max(running.values()) <= 10
    finally:
        for child in workers.values():
            if child.poll() is None:
                child.kill()  # this very worker, by its handle
                child.wait(5)
        if forwarder is not None:
            forwarder.close()
        emu_thread.close()
