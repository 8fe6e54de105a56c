"""``imuzekit musescore``: search MuseScore.com scores, download their files, log in (OAuth)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import attrs
import click

from imuzekit import errors
from imuzekit.cli._command import Invocation, command
from imuzekit.cli._common import (
    EMULATOR_POLL,
    EMULATOR_RENDER_SECONDS,
    EXIT_FAILED,
    CliError,
    CliState,
    CliUsageError,
    closing_despite_cancellation,
    describe_error,
    emit_json,
    run,
)
from imuzekit.cli._progress import human_bytes
from imuzekit.cli._tables import print_table
from imuzekit.providers.musescore import LicenseFilter, OAuthToken, Sort

__all__ = ["musescore"]

_FORMATS = ("pdf", "mid", "mxl", "mscz", "mp3")


@click.group()
def musescore() -> None:
    """MuseScore.com: search scores, download files, log in (IMUZEKIT_MUSESCORE_*)."""


@command(musescore)
@click.argument("text", required=False)
@click.option(
    "--part",
    type=click.IntRange(-1, 128),
    multiple=True,
    help="A MIDI program the score must have (repeatable; 128 drumset).",
)
@click.option("--parts", type=click.IntRange(min=0), default=None, help="Number of parts.")
@click.option("--language", default=None, help="Two-letter language code, e.g. en.")
@click.option(
    "--license",
    "license_",
    type=click.Choice([v.value for v in LicenseFilter]),
    default=None,
    help="What the licence must allow.",
)
@click.option(
    "--sort", type=click.Choice([v.value for v in Sort]), default=None, help="Result order."
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most N."
)
async def search(
    call: Invocation,
    text: str | None,
    part: tuple[int, ...],
    parts: int | None,
    language: str | None,
    license_: str | None,
    sort: str | None,
    limit: int,
) -> None:
    """Search scores by TEXT (title, description, composer) and filters."""
    found = call.kit.musescore.scores.search(
        text,
        part=list(part) or None,
        parts=parts,
        language=language,
        license=license_,
        sort=sort,
        limit=limit,
    )
    scores = [score async for score in found]
    if call.as_json:
        for score in scores:
            emit_json(score)
        return
    rows: list[tuple[str, ...]] = []
    for score in scores:
        meta = score.metadata
        rows.append(
            (
                str(score.id),
                score.title or "",
                score.user.username if score.user and score.user.username else "",
                str(len(meta.parts)) if meta else "",
                f"{meta.duration} s" if meta and meta.duration is not None else "",
                str(score.view_count or 0),
                score.license or "",
            )
        )
    print_table(("id", "title", "user", "parts", "duration", "views", "license"), rows)


@command(musescore, lookup="imuzekit musescore search")
@click.argument("score_id", type=int, metavar="ID")
@click.option(
    "--format",
    "formats",
    type=click.Choice(_FORMATS),
    multiple=True,
    default=("pdf",),
    show_default=True,
    help="File format (repeatable).",
)
@click.option("--secret", default=None, help="The score's secret (private scores).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=pathlib.Path("."),
    show_default=True,
    help="Directory for the files.",
)
async def download(
    call: Invocation,
    score_id: int,
    formats: tuple[str, ...],
    secret: str | None,
    out: pathlib.Path,
) -> int:
    """Download a score's files (pdf, mid, mxl, mscz, mp3), named after its title.

    `Maple Leaf Rag.pdf`; a file of another score with the same title is kept, and the new
    one takes the next free name (`Maple Leaf Rag-2.pdf`).
    """
    kit = call.kit
    rows: list[dict[str, Any]] = []
    score = await kit.musescore.scores.get(score_id, secret=secret)
    name = (score.title or "").strip() or f"score-{score.id}"
    files = {
        fmt: attrs.evolve(score.file(fmt).download_spec(), name=name)
        for fmt in dict.fromkeys(formats)
    }
    by_file = {id(f): fmt for fmt, f in files.items()}
    async for result in kit.download_many(list(files.values()), out, checksum=True):
        row: dict[str, Any] = {
            "score": score.id,
            "title": score.title,
            "format": by_file[id(result.source)],
        }
        if result.error is not None or result.path is None:
            error = result.error
            row["error"] = (
                describe_error(error)[0] if isinstance(error, errors.ImuzekitError) else str(error)
            )
        else:
            row.update(path=str(result.path), size=result.size, sha256=result.sha256)
        rows.append(row)
    if call.as_json:
        for row in rows:
            emit_json(row)
    else:
        lines = [
            (
                row["format"],
                human_bytes(row["size"]) if "size" in row else "",
                row.get("path") or f"[red]{row['error']}[/red]",
            )
            for row in rows
        ]
        print_table(("format", "size", "path"), lines, ids=("path",), title=f"score {score_id}")
    return EXIT_FAILED if any("error" in row for row in rows) else 0


@command(musescore, client=False, json=False)
@click.option(
    "--emulator",
    "emulated",
    is_flag=True,
    help="Log in to an embedded emulator started for this command (no account needed; "
    "nothing is saved).",
)
def login(call: Invocation, emulated: bool) -> None:
    """Authorize imuzekit on your MuseScore.com account (OAuth 1.0, three-legged).

    Needs the consumer key and secret (IMUZEKIT_MUSESCORE_CONSUMER_KEY and
    ..._CONSUMER_SECRET, or [musescore] in the config file). Prints the page to open, reads the
    verification code it shows from stdin, and stores the access token and its secret in the
    config file (mode 0600). With --emulator, the same flow against an embedded emulator's
    demo consumer and user, while the command runs; nothing is saved.
    """
    if emulated:  # not `use_emulator`: the @command decorator takes that name for its own
        run(_login_to_emulator())
        return
    from imuzekit.cli._config import load_settings, update_config_file

    state = call.ctx.find_object(CliState)
    settings = load_settings(state.config_path if state else None)
    values = settings.providers["musescore"]
    if not values["consumer_key"].value or not values["consumer_secret"].value:
        raise CliUsageError(
            "musescore login needs the consumer key and secret: set "
            "IMUZEKIT_MUSESCORE_CONSUMER_KEY and IMUZEKIT_MUSESCORE_CONSUMER_SECRET "
            f"(or consumer_key/consumer_secret in [musescore] of {settings.path})"
        )

    async def request_token() -> tuple[OAuthToken, str]:
        async with closing_despite_cancellation() as stack:
            kit = await stack.enter_async_context(settings.client())
            token = await kit.musescore.oauth.request_token()
            return token, kit.musescore.oauth.authorize_url(token)

    async def access_token(token: OAuthToken, verifier: str) -> OAuthToken:
        async with closing_despite_cancellation() as stack:
            kit = await stack.enter_async_context(settings.client())
            return await kit.musescore.oauth.access_token(token, verifier)

    token, url = run(request_token())
    _show_authorize_page(url)
    verifier = _verifier(_read_code)
    access = run(access_token(token, verifier))
    update_config_file(
        settings.path,
        "musescore",
        {"token": access.oauth_token, "token_secret": access.oauth_token_secret},
    )
    click.echo(f"Logged in; the access token is saved in {settings.path} (mode 0600).", err=True)


def _show_authorize_page(url: str) -> None:
    click.echo("Open this page, approve imuzekit, then enter the code it shows:", err=True)
    click.echo(url)


def _read_code() -> str:
    return str(click.prompt("Verification code", err=True))


def _verifier(read: Callable[[], str]) -> str:
    try:
        verifier = read().strip()
    except click.Abort:  # end of input
        verifier = ""
    if not verifier:
        raise CliError("no verification code given; run `imuzekit musescore login` again")
    return verifier


async def _login_to_emulator() -> None:
    """The three legs against an embedded emulator, which serves the authorize page while the
    code is typed (read in a thread, so that the event loop keeps serving)."""
    import asyncio
    import threading

    from imuzekit.emulator import Emulator

    async with closing_despite_cancellation() as stack:
        emu = await stack.enter_async_context(Emulator(render_seconds=EMULATOR_RENDER_SECONDS))
        kit = await stack.enter_async_context(emu.client(poll=EMULATOR_POLL))
        token = await kit.musescore.oauth.request_token()
        _show_authorize_page(kit.musescore.oauth.authorize_url(token))
        loop = asyncio.get_running_loop()
        typed: asyncio.Future[str] = loop.create_future()

        def settle(outcome: Callable[[], str]) -> None:
            try:
                value = _verifier(outcome)
            except BaseException as exc:  # handed to the loop, raised there
                loop.call_soon_threadsafe(_fail, typed, exc)
            else:
                loop.call_soon_threadsafe(_succeed, typed, value)

        # A daemon thread: Ctrl-C while it waits on stdin must not keep the process alive.
        threading.Thread(target=settle, args=(_read_code,), daemon=True).start()
        verifier = await typed
        access = await kit.musescore.oauth.access_token(token, verifier)
    shown = access.oauth_token[:4]
    click.echo(
        f"Logged in to the embedded emulator (access token {shown}...); nothing is saved: "
        "the emulator stopped with this command.",
        err=True,
    )


def _succeed(future: Any, value: str) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: Any, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
