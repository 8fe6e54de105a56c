"""Route tables as data, and the one function that turns a table into an application.

Each provider's ``urls`` module lists its routes as `Route` values and hands them, with its
state, to `build_app`; `Mount` says where the emulator's root application mounts the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import attrs
from aiohttp import hdrs, web

from .http import MAX_BODY_BYTES

__all__ = ["Handler", "Mount", "Route", "StateKey", "build_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp handler."""

S = TypeVar("S")


@attrs.frozen
class Route:
    """One row of a route table: ``GET`` routes answer ``HEAD`` too, as aiohttp's `add_get`."""

    method: str
    path: str
    """An aiohttp path template, relative to the application's prefix (``/songs/{id}``)."""
    handler: Handler


class StateKey(Generic[S]):
    """Where an application keeps its provider's state; call it on a request to get the state."""

    def __init__(self, name: str, state_type: type[S]) -> None:
        """A typed `web.AppKey` called `name`."""
        self.key: web.AppKey[S] = web.AppKey(name, state_type)

    def __call__(self, request: web.Request) -> S:
        """The state of the application that routed `request`."""
        return request.app[self.key]


def build_app(key: StateKey[S], state: S, routes: Sequence[Route]) -> web.Application:
    """An application holding `state` under `key` and serving `routes`, in table order.

    Order matters where templates overlap: aiohttp matches in registration order.
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[key.key] = state
    for route in routes:
        if route.method == hdrs.METH_GET:
            app.router.add_get(route.path, route.handler)
        else:
            app.router.add_route(route.method, route.path, route.handler)
    return app


@attrs.frozen
class Mount:
    """One application of a provider and where the root application mounts it.

    Its requests are logged, counted and matched by faults under the provider's `name`, with
    `label` in place of `prefix`: Mureka's CDN at ``/mureka/cdn`` with label ``/cdn`` logs
    ``GET /mureka/cdn/<key>.mp3`` as ``/cdn/<key>.mp3`` (fault pattern ``"GET /cdn/*"``). The
    provider's own application, at its base URL, has the label ``""``.
    """

    name: str
    prefix: str
    """Absolute path prefix the application is mounted under, no trailing slash."""
    app: web.Application
    label: str = ""
    """What replaces `prefix` in logged paths, routes and fault matching."""
