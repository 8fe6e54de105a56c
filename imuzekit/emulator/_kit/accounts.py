"""The account registry the token-login providers (iMuze, joplin) keep, and its demo user.

Pure: no aiohttp.
"""

from __future__ import annotations

import itertools
import secrets

import attrs

__all__ = ["DEMO_EMAIL", "DEMO_PASSWORD", "Accounts", "User"]

DEMO_EMAIL = "demo@imuzekit.test"
"""Email of the demo user every emulator starts with."""
DEMO_PASSWORD = "imuze-demo-2024"
"""Password of the demo user."""


@attrs.frozen
class User:
    """An account of an emulated provider."""

    id: int
    email: str
    password: str


class Accounts:
    """The account registry an emulated provider keeps (mixed into its state class).

    The state class declares ``users`` and ``_user_ids`` as attrs fields; this adds the ways to
    look accounts up, create them and check a password.
    """

    __slots__ = ()
    users: dict[int, User]
    _user_ids: itertools.count[int]

    @property
    def demo_user(self) -> User:
        """The demo user (``demo@imuzekit.test``)."""
        return self.user_by_email(DEMO_EMAIL)

    def add_user(self, email: str, password: str) -> User:
        """Create another account (e.g. to check that generations are private to their owner)."""
        if any(user.email.lower() == email.lower() for user in self.users.values()):
            raise ValueError(f"user {email!r} already exists")
        user = User(next(self._user_ids), email, password)
        self.users[user.id] = user
        return user

    def user_by_email(self, email: str) -> User:
        """Return the account with this email (case-insensitive); KeyError if none."""
        wanted = email.lower()
        for user in self.users.values():
            if user.email.lower() == wanted:
                return user
        raise KeyError(email)

    def login(self, email: str, password: str) -> User | None:
        """The account these credentials open (constant-time password check), else None."""
        try:
            user = self.user_by_email(email)
        except KeyError:
            return None
        if not secrets.compare_digest(user.password.encode(), password.encode()):
            return None
        return user
