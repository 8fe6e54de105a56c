"""The ``replyRef`` a creation sends: a job key and its HMAC, checked in constant time.

Pure: no I/O, no aiohttp. A reference reads ``ik1.<issued>.<key>.<mac>``:

* ``issued``: when it was made (Unix seconds, base 36), so a reference older than the
  provider keeps its jobs (useapi.net: 7 days) is refused without any lookup;
* ``key``: 16 random bytes (URL-safe base64), the job's identity on our side. The job id only
  exists once the create has answered, so the key is what the MAC covers and the receiver's
  registration binds the key to the job id (and account) the create returned;
* ``mac``: HMAC-SHA256 over ``ik1.<issued>.<key>`` with the receiver's secret (URL-safe
  base64, 43 characters).

Only the holder of the secret can make a reference that verifies; a verified reference from
one job pasted into another job's callback is refused by the registration (its key differs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

import attrs

from imuzekit import errors

__all__ = ["MAX_REF_LENGTH", "PREFIX", "RefSigner", "Verified"]

PREFIX = "ik1"
"""Version tag of the reference format."""
MAX_REF_LENGTH = 128
"""Longest reference the receiver reads (ours are about 80 characters)."""
_KEY_BYTES = 16
_MIN_SECRET_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text


def secret_bytes(secret: str | bytes | None) -> bytes:
    """The secret as bytes: 32 random bytes when None; ValidationError when too short."""
    if secret is None:
        return secrets.token_bytes(32)
    if isinstance(secret, str):
        value = secret.encode("utf-8")
    elif isinstance(secret, bytes):
        value = secret
    else:
        raise errors.ValidationError("secret", f"must be a string or bytes, got {type(secret)}")
    if len(value) < _MIN_SECRET_BYTES:
        # The message never repeats the value.
        raise errors.ValidationError(
            "secret", f"must be at least {_MIN_SECRET_BYTES} bytes long (or None: a random one)"
        )
    return value


@attrs.frozen
class Verified:
    """A reference whose MAC verified: its job key and when it was issued (Unix seconds)."""

    key: str
    issued: int


@attrs.frozen(repr=False)
class RefSigner:
    """Makes and checks references with one secret (never shown in its repr)."""

    _secret: bytes = attrs.field(alias="secret")

    def __repr__(self) -> str:
        return "RefSigner(secret=<hidden>)"

    def _mac(self, message: str) -> str:
        return _b64(hmac.new(self._secret, message.encode("ascii"), hashlib.sha256).digest())

    def make(self, now: float) -> tuple[str, str]:
        """A new reference and its key, issued at Unix time ``now``."""
        key = _b64(secrets.token_bytes(_KEY_BYTES))
        body = f"{PREFIX}.{_base36(int(now))}.{key}"
        return f"{body}.{self._mac(body)}", key

    def verify(self, ref: object) -> Verified | None:
        """The reference's key and issue time when its MAC is ours, else None.

        The MAC is compared in constant time; malformed references are refused before it.
        """
        if not isinstance(ref, str) or not ref.isascii() or len(ref) > MAX_REF_LENGTH:
            return None
        parts = ref.split(".")
        if len(parts) != 4 or parts[0] != PREFIX:
            return None
        _, issued_text, key, mac = parts
        if not (1 <= len(issued_text) <= 8 and issued_text.isalnum()):
            return None
        raw_key = _unb64(key)
        if raw_key is None or len(raw_key) != _KEY_BYTES or _b64(raw_key) != key:
            return None
        expected = self._mac(f"{PREFIX}.{issued_text}.{key}")
        if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii")):
            return None
        return Verified(key=key, issued=int(issued_text, 36))
