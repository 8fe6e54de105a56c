"""``imuzekit musescore``: search MuseScore.com scores, download their files, log in (OAuth)."""

from __future__ import annotations

import pathlib
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from imuzekit import errors
from imuzekit.cli._command import Invocation, command
from imuzekit.cli._common import (
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
    table = Table("id", "title", "user", "parts", "duration", "views", "license")
    for score in scores:
        meta = score.metadata
        table.add_row(
            str(score.id),
            score.title or "",
            score.user.username if score.user and score.user.username else "",
            str(len(meta.parts)) if meta else "",
            f"{meta.duration} s" if meta and meta.duration is not None else "",
            str(score.view_count or 0),
            score.license or "",
        )
    Console().print(table)


@command(musescore)
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
    """Download a score's files (pdf, mid, mxl, mscz, mp3)."""
    kit = call.kit
    rows: list[dict[str, Any]] = []
    score = await kit.musescore.scores.get(score_id, secret=secret)
    files = {fmt: score.file(fmt) for fmt in dict.fromkeys(formats)}
    by_file = {id(f): fmt for fmt, f in files.items()}
    async for result in kit.download_many(list(files.values()), out, overwrite=True, checksum=True):
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
        table = Table("format", "size", "path", title=f"score {score_id}")
        for row in rows:
            size = human_bytes(row["size"]) if "size" in row else ""
            table.add_row(row["format"], size, row.get("path") or f"[red]{row['error']}[/red]")
        Console().print(table)
    return EXIT_FAILED if any("error" in row for row in rows) else 0


@command(musescore, client=False, json=False)
def login(call: Invocation) -> None:
    """Authorize imuzekit on your MuseScore.com account (OAuth 1.0, three-legged).

    Needs the consumer key and secret (IMUZEKIT_MUSESCORE_CONSUMER_KEY and
    ..._CONSUMER_SECRET, or [musescore] in the config file). Prints the page to open, reads the
    verification code it shows from stdin, and stores the access token and its secret in the
    config file (mode 0600).
    """
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
    click.echo("Open this page, approve imuzekit, then enter the code it shows:", err=True)
    click.echo(url)
    verifier = click.prompt("Verification code", err=True).strip()
    if not verifier:
        raise CliError("no verification code given; run `imuzekit musescore login` again")
    access = run(access_token(token, verifier))
    update_config_file(
        settings.path,
        "musescore",
        {"token": access.oauth_token, "token_secret": access.oauth_token_secret},
    )
    click.echo(f"Logged in; the access token is saved in {settings.path} (mode 0600).", err=True)
