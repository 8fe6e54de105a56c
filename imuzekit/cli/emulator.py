"""``imuzekit emulator``: serve the emulator standalone, for other programs' tests."""

from __future__ import annotations

import click

__all__ = ["emulator"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True)
@click.option("--render-seconds", type=float, default=2.0, show_default=True)
def emulator(host: str, port: int, render_seconds: float) -> None:
    """Serve the emulated provider APIs until Ctrl-C, printing their URLs and credentials."""
    from imuzekit.emulator.__main__ import main as serve_main

    raise SystemExit(
        serve_main(["--host", host, "--port", str(port), "--render-seconds", str(render_seconds)])
    )
