"""OAuth 1.0 (RFC 5849) for MuseScore.com, signed with authlib.

authlib has no aiohttp integration, so signing happens here, in MuseScore's auth flow: the
request's full URL (query included, RFC 3986 encoded) is signed with HMAC-SHA1 and the signature
goes in the ``Authorization`` header. The signed URL is then sent byte for byte
(``Request.url_encoded``) so that nothing re-encodes what was signed. Form-encoded bodies are
part of the signature; a multipart body (an upload) is not (RFC 5849 §3.4.1.3.1), only its URL
and oauth parameters are signed and the body is sent unchanged.

Without a consumer secret only public calls are possible: the consumer key goes in the query
(``oauth_consumer_key``), as the reference shows. Each attempt is signed anew (a fresh nonce and
timestamp), so a retried request is never a replay.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import attrs
from authlib.common.security import generate_token
from authlib.oauth1 import ClientAuth
from authlib.oauth1.rfc5849.parameters import prepare_headers
from authlib.oauth1.rfc5849.signature import construct_base_string, hmac_sha1_signature

from imuzekit._http import Body, Request, Response
from imuzekit.auth import FlowAuth

__all__ = ["OAuth1Credentials", "OAuth1Hook", "sign"]


class _HttpClientAuth(ClientAuth):  # type: ignore[misc]
    """authlib's client, also for plain-http APIs.

    authlib refuses to sign ``http://`` URLs other than loopback (its request wrapper raises
    InsecureTransportError), but MuseScore.com documents its API at ``http://``. The signature
    does not depend on the transport, so this signs with authlib's own building blocks
    (base string, HMAC-SHA1, header rendering) without that wrapper. HMAC-SHA1, header
    placement only; an independent verifier (oauthlib) checks the result in the tests.
    """

    def sign(self, method: str, uri: str, headers: dict[str, str], body: Any) -> Any:
        oauth_params = self.get_oauth_params(generate_token(30), str(int(time.time())))
        params = list(oauth_params) + parse_qsl(urlsplit(uri).query, keep_blank_values=True)
        if body and headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            text = body.decode() if isinstance(body, bytes) else body
            params += parse_qsl(text, keep_blank_values=True)
        base_string = construct_base_string(method, uri, params)
        signature = hmac_sha1_signature(base_string, self.client_secret, self.token_secret)
        oauth_params.append(("oauth_signature", signature))
        return uri, prepare_headers(oauth_params, dict(headers), realm=self.realm), body


@attrs.define
class OAuth1Credentials:
    """The consumer and (optionally) the user's access token. Secrets never show in reprs."""

    consumer_key: str
    consumer_secret: str | None = attrs.field(default=None, repr=False)
    token: str | None = attrs.field(default=None, repr=False)
    token_secret: str | None = attrs.field(default=None, repr=False)


def sign(
    request: Request,
    credentials: OAuth1Credentials,
    *,
    token: str | None = None,
    token_secret: str | None = None,
    callback: str | None = None,
    verifier: str | None = None,
) -> Request:
    """``request`` signed with HMAC-SHA1 (``token``/``token_secret`` default to the user's)."""
    use_token = token if token is not None else credentials.token
    use_secret = token_secret if token_secret is not None else credentials.token_secret
    auth = _HttpClientAuth(
        credentials.consumer_key,
        credentials.consumer_secret,
        token=use_token,
        token_secret=use_secret if use_token else None,
        redirect_uri=callback,
        verifier=verifier,
    )
    url = request.full_url
    headers: dict[str, str] = {}
    body = b""
    if request.body_kind is Body.FORM:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urlencode(request.form).encode()
    signed_url, signed_headers, _ = auth.prepare(request.method, url, headers, body)
    return attrs.evolve(
        request.with_header("Authorization", signed_headers["Authorization"]),
        url=signed_url,
        params=(),
        url_encoded=True,
    )


class OAuth1Hook(FlowAuth):
    """MuseScore.com's auth flow: sign each attempt (see the module docstring); never logs in."""

    def __init__(self, credentials: OAuth1Credentials) -> None:
        super().__init__()
        self.credentials = credentials

    def __repr__(self) -> str:
        level = "user" if self.credentials.token else "consumer"
        return f"<OAuth1Hook {level} key={self.credentials.consumer_key!r}>"

    @property
    def can_sign(self) -> bool:
        """Whether a consumer secret is configured (otherwise only public calls work)."""
        return bool(self.credentials.consumer_secret)

    def auth_flow(self, request: Request) -> Generator[Request, Response, Request]:
        """Sign ``request``, or add the consumer key for a public call when there is no secret.

        A flow that needs no login request: it returns at once, with no I/O.
        """
        yield from ()
        if not self.can_sign:
            return request.with_params(oauth_consumer_key=self.credentials.consumer_key)
        return sign(request, self.credentials)

    def refresh_flow(self, failed: Request) -> Generator[Request, Response, bool]:
        """A 401 is final: OAuth 1.0 tokens do not expire, so there is nothing to renew."""
        yield from ()
        return False
