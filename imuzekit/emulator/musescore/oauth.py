"""OAuth 1.0 (RFC 5849, HMAC-SHA1) as the emulated MuseScore.com verifies it, and its endpoints.

`authenticate` checks a request's consumer, timestamp, nonce, token and signature for real and
says who the `Caller` is; `request_token` and `access_token` are the three-legged flow's endpoints
(`access_token` also takes xAuth's ``x_auth_username``, ``x_auth_password`` and
``x_auth_mode=client_auth``, signed by the consumer alone, as the MuseScore 2 desktop app logs in).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Final, Literal
from urllib.parse import parse_qsl, unquote, urlencode
from urllib.request import parse_http_list

import attrs
from aiohttp import web
from authlib.oauth1.rfc5849 import signature as oauth_signature

from imuzekit.emulator._kit.http import dumps, json_error
from imuzekit.emulator._kit.routes import StateKey

from .models import MuseScoreError, MuseScoreUser, RequestToken
from .state import MuseScoreState

__all__ = ["Caller", "access_token", "authenticate", "request_token", "state_of"]

state_of = StateKey("musescore_state", MuseScoreState)
"""The `MuseScoreState` of the application that routed a request."""

_TokenKind = Literal["none", "request", "access"]


@attrs.frozen
class Caller:
    """Who sent a request: the consumer, and the user when signed with an access token."""

    consumer_key: str
    user: MuseScoreUser | None = None

    @property
    def user_id(self) -> int | None:
        """The signing user's id, None at public level."""
        return self.user.id if self.user is not None else None


def _parse_authorization(value: str) -> list[tuple[str, str]] | None:
    """The parameters of an ``OAuth`` Authorization header, None for another scheme."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "oauth":
        return None
    pairs: list[tuple[str, str]] = []
    for item in parse_http_list(rest):
        key, sep, raw = item.strip().partition("=")
        if not sep or not key.strip():
            raise MuseScoreError(401, "malformed Authorization header")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
        pairs.append((unquote(key.strip()), unquote(raw)))
    return pairs


def _oauth_only(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(key, value) for key, value in pairs if key.startswith("oauth_")]


async def _form_params(request: web.Request) -> list[tuple[str, str]]:
    """The form-urlencoded body's parameters (signed like the query); none for other bodies."""
    if request.content_type != "application/x-www-form-urlencoded" or not request.body_exists:
        return []
    raw = await request.read()
    try:
        return parse_qsl(
            raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=1000
        )
    except ValueError:
        raise MuseScoreError(400, "Malformed form body") from None


async def authenticate(
    request: web.Request,
    state: MuseScoreState,
    *,
    token_kind: _TokenKind = "access",
    require_signature: bool = False,
) -> tuple[Caller, dict[str, str], RequestToken | None]:
    """Verify the request's OAuth parameters; `MuseScoreError` (401) on any failure.

    Returns the caller, the oauth parameters, and the request token when `token_kind` is
    ``"request"`` (the access-token exchange).
    """
    header = request.headers.get("Authorization")
    header_pairs = _parse_authorization(header) if header else None
    try:
        query = parse_qsl(
            request.rel_url.raw_query_string, keep_blank_values=True, max_num_fields=1000
        )
    except ValueError:
        raise MuseScoreError(400, "Malformed query string") from None
    body = await _form_params(request)
    # Protocol parameters come from one place: the header, else the query, else the body. The
    # others' oauth_* parameters are then ordinary (signed) parameters.
    source = next(
        (pairs for pairs in (header_pairs or [], _oauth_only(query), _oauth_only(body)) if pairs),
        [],
    )
    oauth: dict[str, str] = {}
    for key, value in source:
        if key == "realm" or not key.startswith("oauth_"):
            continue
        if key in oauth:
            raise MuseScoreError(401, f"duplicated oauth parameter {key}")
        oauth[key] = value

    consumer_key = oauth.get("oauth_consumer_key")
    if not consumer_key:
        raise MuseScoreError(401, "missing consumer key")
    consumer_secret = state.consumers.get(consumer_key)
    if consumer_secret is None:
        raise MuseScoreError(401, "unknown consumer")
    provided = oauth.get("oauth_signature")
    if provided is None:
        if require_signature or token_kind == "request":
            raise MuseScoreError(401, "missing signature")
        if "oauth_token" in oauth:
            raise MuseScoreError(401, "a token needs a signature")
        # The reference's public call: the consumer key alone, public resources only.
        return Caller(consumer_key), oauth, None

    if oauth.get("oauth_signature_method", "").upper() != "HMAC-SHA1":
        raise MuseScoreError(401, "unsupported signature method (HMAC-SHA1 only)")
    if oauth.get("oauth_version", "1.0") != "1.0":
        raise MuseScoreError(401, "unsupported oauth_version")
    stamp_text, nonce = oauth.get("oauth_timestamp", ""), oauth.get("oauth_nonce", "")
    if not (stamp_text.isascii() and stamp_text.isdigit() and len(stamp_text) <= 12):
        raise MuseScoreError(401, "missing or invalid oauth_timestamp")
    if not nonce:
        raise MuseScoreError(401, "missing oauth_nonce")
    timestamp = int(stamp_text)
    if abs(timestamp - state.clock.wall()) > state.timestamp_window:
        raise MuseScoreError(401, "timestamp expired")

    token = oauth.get("oauth_token")
    token_secret = ""
    user: MuseScoreUser | None = None
    request_token: RequestToken | None = None
    if token_kind == "request":
        request_token = state.live_request_token(token) if token else None
        if request_token is None or request_token.consumer_key != consumer_key:
            raise MuseScoreError(401, "invalid token")
        token_secret = request_token.secret
    elif token:
        access = state.access_tokens.get(token) if token_kind == "access" else None
        if access is None or access.consumer_key != consumer_key:
            raise MuseScoreError(401, "invalid token")
        token_secret = access.secret
        user = state.users.get(access.user_id)

    uri = f"{request.scheme}://{request.host}{request.rel_url.raw_path}"
    params = [*query, *body, *(header_pairs or [])]
    try:
        base = oauth_signature.construct_base_string(request.method, uri, params)
        expected = oauth_signature.hmac_sha1_signature(base, consumer_secret, token_secret)
    except (ValueError, TypeError, UnicodeError):
        raise MuseScoreError(401, "invalid signature") from None
    if not hmac.compare_digest(str(expected).encode(), provided.encode("utf-8", "replace")):
        raise MuseScoreError(401, "invalid signature")
    # Recorded only once the signature holds: a forged request cannot burn a nonce.
    if not state.check_nonce(consumer_key, nonce, timestamp):
        raise MuseScoreError(401, "nonce already used")
    return Caller(consumer_key, user), oauth, request_token


def _token_answer(state: MuseScoreState, values: Mapping[str, str]) -> web.Response:
    if state.token_format == "json":
        return web.Response(text=dumps(dict(values)), content_type="application/json")
    return web.Response(text=urlencode(values), content_type="application/x-www-form-urlencoded")


async def request_token(request: web.Request) -> web.Response:
    """``/oauth/request_token`` (GET or POST): a temporary credential."""
    state = state_of(request)
    try:
        caller, oauth, _ = await authenticate(
            request, state, token_kind="none", require_signature=True
        )
        if "oauth_token" in oauth:
            raise MuseScoreError(401, "invalid token")
    except MuseScoreError as exc:
        return json_error(exc.status, exc.message)
    callback = oauth.get("oauth_callback") or "oob"
    token = state.new_request_token(caller.consumer_key, callback)
    return _token_answer(
        state,
        {
            "oauth_token": token.token,
            "oauth_token_secret": token.secret,
            "oauth_callback_confirmed": "true",
        },
    )


# xAuth's refusals, as the desktop app reads them: a JSON array of {"code"} (loginmanager.cpp).
_XAUTH_CODES: Final[Mapping[str, str]] = {"timestamp expired": "USER_TIMESTAMP_EXPIRED"}


def _xauth_refusal(code: str) -> web.Response:
    return web.Response(status=401, text=dumps([{"code": code}]), content_type="application/json")


async def _xauth(
    request: web.Request, state: MuseScoreState, params: Mapping[str, str]
) -> web.Response:
    """xAuth: a consumer-signed exchange of a user's name and password for an access token."""
    try:
        caller, oauth, _ = await authenticate(
            request, state, token_kind="none", require_signature=True
        )
        if "oauth_token" in oauth:
            raise MuseScoreError(401, "xAuth takes no token")
        if params.get("x_auth_mode") != "client_auth":
            raise MuseScoreError(400, "x_auth_mode must be client_auth")
    except MuseScoreError as exc:
        code = _XAUTH_CODES.get(exc.message)
        return _xauth_refusal(code) if code else json_error(exc.status, exc.message)
    user = state.login(params.get("x_auth_username", ""), params.get("x_auth_password", ""))
    if user is None:
        return _xauth_refusal("USER_AUTHENTICATION_FAILED")
    token, secret = state.issue_token(user.id, caller.consumer_key)
    return _token_answer(
        state,
        {
            "oauth_token": token,
            "oauth_token_secret": secret,
            "user_id": str(user.id),
            "username": user.name,
        },
    )


async def access_token(request: web.Request) -> web.Response:
    """``/oauth/access_token`` (GET or POST): an approved request token for an access token, or
    (xAuth, with ``x_auth_mode=client_auth``) a user's name and password for one."""
    state = state_of(request)
    try:
        query = parse_qsl(
            request.rel_url.raw_query_string, keep_blank_values=True, max_num_fields=1000
        )
        params = dict([*query, *await _form_params(request)])
    except (MuseScoreError, ValueError):
        params = {}  # authenticate() answers the malformed request
    if "x_auth_mode" in params:
        return await _xauth(request, state, params)
    try:
        _, oauth, record = await authenticate(
            request, state, token_kind="request", require_signature=True
        )
        assert record is not None
        access = state.exchange(record, oauth.get("oauth_verifier"))
    except MuseScoreError as exc:
        return json_error(exc.status, exc.message)
    user = state.users[access.user_id]
    return _token_answer(
        state,
        {
            "oauth_token": access.token,
            "oauth_token_secret": access.secret,
            "user_id": str(user.id),
            "username": user.name,
        },
    )
