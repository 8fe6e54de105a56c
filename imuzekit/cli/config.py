"""``imuzekit config``: the effective configuration and where each value comes from."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from imuzekit.cli._command import Invocation, command
from imuzekit.cli._common import CliState, emit_json

__all__ = ["config"]


@click.group()
def config() -> None:
    """Inspect the configuration (environment over config file over defaults)."""


@command(config, client=False)
def show(call: Invocation) -> None:
    """Print each provider's settings, secrets masked, with their source (env/file/default).

    Every provider in the registry has a section, one plugged in too.
    """
    from imuzekit.cli._config import load_settings

    as_json = call.as_json
    state = call.ctx.find_object(CliState)
    settings = load_settings(state.config_path if state else None)
    sections = {**settings.providers, "poll": settings.poll}
    if as_json:
        for name, values in sections.items():
            emit_json(
                {
                    "section": name,
                    "configured": settings.config(name) is not None
                    if name != "poll"
                    else settings.poll_policy() is not None,
                    "file": str(settings.path),
                    "values": {
                        field: {
                            "value": "***"
                            if value.secret and value.value is not None
                            else value.value,
                            "source": value.source,
                        }
                        for field, value in values.items()
                    },
                }
            )
        return
    console = Console()
    exists = "" if settings.file_exists else " (not found)"
    console.print(f"config file: {settings.path}{exists}")
    for name, values in sections.items():
        if name == "poll":
            status = "custom" if settings.poll_policy() is not None else "SDK defaults"
        else:
            status = "configured" if settings.config(name) is not None else "not configured"
        table = Table(
            "field", "value", "source", title=escape(f"[{name}] {status}"), title_justify="left"
        )
        for field, value in values.items():
            table.add_row(field, value.shown(), value.source)
        console.print(table)
