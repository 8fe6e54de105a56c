"""Test hosts for the multi-worker test: network namespaces joined by a bridge, or loopback.

With root and ``ip``, :class:`Hosts` builds a small network the test owns: a bridge
``ik<id>br`` with ``10.<a>.<b>.1/24`` in this (the "server") namespace, and per worker host a
namespace ``ik<id>h<n>`` with one end of a veth pair (``10.<a>.<b>.<10+n>``), the other end on
the bridge. Workers run there in their own UTS namespace, with the hostname ``worker-<n>``
(``ip netns exec NS unshare --uts``), so each file's recorded host is its worker's. The
emulator binds the bridge's address; PostgreSQL, on 127.0.0.1, is reached through a TCP
forwarder (:class:`Forwarder`) on the bridge's address. Everything is removed afterwards.

Without root or ``ip`` (or when a namespace cannot be made), :func:`open_hosts` says why and
the workers are plain processes on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import threading

__all__ = ["Forwarder", "Hosts", "open_hosts"]


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=20)


class Hosts:
    """Worker hosts as network namespaces on a bridge (see the module docstring)."""

    def __init__(self, n: int) -> None:
        self.id = secrets.token_hex(2)
        self.bridge = f"ik{self.id}br"
        self.names = [f"ik{self.id}h{i}" for i in range(1, n + 1)]
        taken = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
        for _ in range(50):
            a, b = 200 + secrets.randbelow(50), secrets.randbelow(250)
            if f"10.{a}.{b}." not in taken:
                break
        self.prefix = f"10.{a}.{b}"
        self.server = f"{self.prefix}.1"
        """The server side's address (the emulator, the PostgreSQL forwarder)."""
        self._made: list[tuple[str, str]] = []

    def create(self) -> None:
        """Make the bridge, the namespaces and their links (``CalledProcessError`` if not)."""
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made.append(("link", self.bridge))
        _ip("addr", "add", f"{self.server}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, ns in enumerate(self.names, 1):
            _ip("netns", "add", ns)
            self._made.append(("netns", ns))
            outer, inner = f"ik{self.id}v{i}", f"ik{self.id}p{i}"
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            self._made.append(("link", outer))
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", self.bridge)
            _ip("link", "set", outer, "up")
            _ip("-n", ns, "addr", "add", f"{self.prefix}.{10 + i}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def argv(self, host: int, command: list[str]) -> list[str]:
        """``command`` run on worker host ``host`` (1-based), named ``worker-<host>``."""
        script = f'hostname worker-{host} && exec "$@"'
        ns = self.names[host - 1]
        return ["ip", "netns", "exec", ns, "unshare", "--uts", "sh", "-c", script, "sh", *command]

    def remove(self) -> None:
        """Remove everything :meth:`create` made (the veths go with their namespaces)."""
        for kind, name in reversed(self._made):
            if kind == "netns":
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
            else:
                subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=20)
        self._made.clear()


def open_hosts(n: int) -> tuple[Hosts | None, str]:
    """``n`` namespaced worker hosts, or None and the reason they are plain processes."""
    if os.geteuid() != 0:
        return None, "not root: the workers are processes on 127.0.0.1"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return None, "no `ip`/`unshare`: the workers are processes on 127.0.0.1"
    hosts = Hosts(n)
    try:
        hosts.create()
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as exc:
        hosts.remove()
        detail = getattr(exc, "stderr", b"") or b""
        return None, f"cannot make network namespaces ({exc} {detail!r}): loopback processes"
    return hosts, f"{n} network namespaces on bridge {hosts.bridge} ({hosts.prefix}.0/24)"


class Forwarder:
    """Forwards TCP connections from ``listen`` (host, 0) to ``target`` (host, port)."""

    def __init__(self, listen: str, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server((listen, 0))
        self.port: int = self._server.getsockname()[1]
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # the other direction closed both
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        """Stop accepting (open connections end with their processes)."""
        self._stopped = True
        self._server.close()
