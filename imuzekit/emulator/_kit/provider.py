"""What the emulator needs from one provider's state, and the error a state refuses with.

Pure: no aiohttp. The HTTP side (applications, routes) lives in each provider's ``urls`` module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["ApiError", "Credentials", "ExtraUrls", "Provider"]


@attrs.frozen
class Credentials:
    """Demo credentials of one emulated provider (`emu.credentials["imuze"]`).

    `token` is a pre-issued, currently valid API token; `extra` holds provider-specific values
    that do not fit the email/password/token trio.
    """

    email: str | None = None
    password: str | None = None
    token: str | None = None
    extra: Mapping[str, str] = attrs.field(factory=dict)


class ApiError(Exception):
    """A request the API refuses: `status` and `message` become ``{"error", "code"}``."""

    def __init__(self, status: int, message: str) -> None:
        """Record the status and message to answer."""
        super().__init__(message)
        self.status = status
        self.message = message


class Provider(Protocol):
    """What the emulator needs from one emulated provider's state."""

    @property
    def name(self) -> str:
        """Short provider name, the key in `emu.urls` and `emu.credentials`."""

    @property
    def prefix(self) -> str:
        """Path prefix the provider is mounted under (``/imuze/api/4``), no trailing slash."""

    def credentials(self) -> Credentials:
        """The provider's current demo credentials."""


@runtime_checkable
class ExtraUrls(Protocol):
    """A provider with URLs besides its base URL (OAuth endpoints, a site, static files)."""

    @property
    def extra_urls(self) -> Mapping[str, str]:
        """Extra keys of ``emu.urls`` and their absolute paths (the emulator adds the origin)."""
