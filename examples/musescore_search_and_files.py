"""MuseScore.com: search with filters, a score's measure timings and layout, its pdf and midi.

    python examples/musescore_search_and_files.py [--text bach] [--out DIR]

Filters are checked before anything is sent; the search iterator fetches 20 scores a page as
you go and stops at ``limit``. ``time`` says when each measure starts in the audio, ``space``
where it is drawn on the page: together they let a player highlight the measure being played.
Runs on the embedded emulator unless ``IMUZEKIT_MUSESCORE_*`` variables are set.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib

from _connect import add_out_argument, connect, output_dir


async def main(text: str, out: pathlib.Path) -> None:
    """Search, pick the first score whose files are public, fetch its timings and files."""
    async with connect("musescore") as kit:
        scores = [
            score
            async for score in kit.musescore.scores.search(
                text, license="to_share", sort="view_count", limit=10
            )
        ]
        print(f"{len(scores)} scores for {text!r} (shareable, most viewed first):")
        for score in scores[:5]:
            print(f"  {score.id:>8}  {score.view_count or 0:>7} views  {score.title}")
        pianos = [s async for s in kit.musescore.scores.search(part=0, parts=1, limit=3)]
        print(f"solo piano scores: {', '.join(str(s.title) for s in pianos)}")

        score = next(s for s in scores if s.secret)
        times = await kit.musescore.scores.time(score.id)
        boxes = await kit.musescore.scores.space(score.id)
        first = ", ".join(f"m{t.elid}@{t.position / 1000:.1f}s" for t in times[:4])
        print(f"{score.title!r}: {len(times)} measure timings ({first}, ...), {len(boxes)} boxes")

        for fmt in ("pdf", "mid"):
            path = await kit.download(score.file(fmt), out)  # format checked: %PDF, MThd
            print(f"downloaded {fmt}: {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default="bach", help="what to search for (default: bach)")
    add_out_argument(parser)
    args = parser.parse_args()
    with output_dir(args.out) as folder:
        asyncio.run(main(args.text, folder))
