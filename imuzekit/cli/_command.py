"""One decorator for every command: its options, its client, its event loop and its exit code.

```python
@command(songs, "list")
async def list_songs(call: Invocation) -> None:
    items = [s async for s in call.kit.imuze.songs.list()]
    ...
```

`command` adds ``--emulator`` (run against an emulator started in-process) and ``--json``
(machine output), opens the Client from the configuration (or the emulator's) around an
async command in a new event loop, closes it completely even on Ctrl-C, and exits with the
code the command returns (None or 0: success). Errors become one line and an exit code in the
root group (`imuzekit.cli._root`). A synchronous command (no client, no loop) gets the same
``--json`` and exit code handling.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import attrs
import click

from imuzekit import Client
from imuzekit.cli._common import CliState, open_client, run

__all__ = ["Invocation", "command"]


@attrs.frozen
class Invocation:
    """What a command gets first: its click context, the Client (None for a command that
    opens none) and whether ``--json`` was given."""

    ctx: click.Context
    client: Client | None
    as_json: bool = False

    @property
    def kit(self) -> Client:
        """The Client (a command declared with `client=False` has none)."""
        if self.client is None:
            raise RuntimeError("this command opens no client (declared with client=False)")
        return self.client


def _flag(name: str, dest: str, help_text: str) -> click.Option:
    return click.Option([name, dest], is_flag=True, help=help_text)


def command(
    group: click.Group,
    name: str | None = None,
    *,
    client: bool = True,
    emulator: bool = True,
    json: bool = True,
    lookup: str | None = None,
    **settings: Any,
) -> Callable[[Callable[..., Any]], click.Command]:
    """Make the decorated function a command of `group` (named `name`, or after the function).

    The function takes an `Invocation` and its own click parameters, and returns an exit
    code or None. `client`: open a Client for an async function (``--emulator`` too unless
    `emulator` is False); `json`: add ``--json``; `lookup`: the command that lists the ids
    this one takes, named when the provider answers that an id does not exist
    (``"imuzekit imuze songs list"``). `settings` go to `click.Group.command`.
    """

    def decorate(func: Callable[..., Any]) -> click.Command:
        is_async = inspect.iscoroutinefunction(func)
        opens_client = client and is_async

        @functools.wraps(func)
        def callback(**params: Any) -> None:
            ctx = click.get_current_context()
            state = ctx.find_object(CliState)
            if state is not None:
                state.lookup = lookup
            use_emulator = bool(params.pop("use_emulator", False))
            as_json = bool(params.pop("as_json", False))
            if is_async:

                async def main() -> Any:
                    if not opens_client:
                        return await func(Invocation(ctx, None, as_json), **params)
                    async with open_client(ctx, use_emulator=use_emulator) as kit:
                        return await func(Invocation(ctx, kit, as_json), **params)

                code = run(main())
            else:
                code = func(Invocation(ctx, None, as_json), **params)
            if code:
                ctx.exit(code)

        # After the command's own options in --help (click lists them in reverse order).
        declared: list[click.Parameter] = list(getattr(func, "__click_params__", []))
        extra: list[click.Parameter] = []
        if json:
            extra.append(
                _flag(
                    "--json",
                    "as_json",
                    "Machine output: one JSON object per line, nothing else on stdout.",
                )
            )
        if opens_client and emulator:
            extra.append(
                _flag(
                    "--emulator",
                    "use_emulator",
                    "Run against an embedded emulator started for this command (no account "
                    "needed).",
                )
            )
        callback.__click_params__ = [*extra, *declared]  # type: ignore[attr-defined]
        made: click.Command = group.command(name, **settings)(callback)
        return made

    return decorate
