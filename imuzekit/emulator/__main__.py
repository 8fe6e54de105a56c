"""``python -m imuzekit.emulator``: serve every emulated provider until Ctrl-C.

Prints the base URLs and the demo credentials once listening, for example:

    python -m imuzekit.emulator --port 8700 --render-seconds 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from . import Emulator, serve


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m imuzekit.emulator",
        description="Serve the imuzekit provider emulator until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8700, help="port, 0 for a free one (8700)")
    parser.add_argument(
        "--render-seconds",
        type=float,
        default=2.0,
        help="seconds a song (iMuze), a music (joplin), a generation (Mureka) or an upload "
        "(MuseScore) takes to render (default 2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the emulator's randomness")
    return parser.parse_args(argv)


def _print_banner(emulator: Emulator) -> None:
    print(emulator.describe(), "", "Press Ctrl-C to stop.", sep="\n", flush=True)


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGTERM (what process managers and test harnesses send) stops as cleanly as Ctrl-C.
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    await serve(
        args.host,
        args.port,
        render_seconds=args.render_seconds,
        seed=args.seed,
        on_ready=_print_banner,
        stop=stop,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parse_args(argv)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
