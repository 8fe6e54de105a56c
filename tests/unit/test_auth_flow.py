"""Auth as flows (httpx's ``auth_flow``): what they yield, and single-flight logins.

The flows are driven by hand (pure: no sender at all) and through the send pipeline over a
`MockTransport` (no socket), where one lock per provider keeps logins single-flight.
"""

from __future__ import annotations

import asyncio

import pytest

from imuzekit import errors
from imuzekit._http import Request, Response
from imuzekit._transport import Transport
from imuzekit.auth import LoginResult, TokenLogin
from imuzekit.providers.musescore._oauth import OAuth1Credentials, OAuth1Hook
from imuzekit.testing import MockTransport, respond

BASE = "http://127.0.0.1:9"
LOGIN = Request("POST", f"{BASE}/tokens", provider="p", auth=False)


def _hook(clock: list[float], **kwargs: object) -> TokenLogin:
    issued: list[str] = []

    def parse(response: Response) -> LoginResult:
        issued.append(f"tok{len(issued) + 1}")
        return LoginResult(token=issued[-1], expires_at=clock[0] + 3600)

    return TokenLogin(
        provider="p", login=lambda: LOGIN, parse=parse, clock=lambda: clock[0], **kwargs
    )


def test_a_token_flow_yields_the_login_then_returns_the_authenticated_request() -> None:
    hook = _hook([1000.0])
    request = Request("GET", f"{BASE}/songs/1", provider="p")
    flow = hook.auth_flow(request)
    assert next(flow) == LOGIN
    with pytest.raises(StopIteration) as done:
        flow.send(Response(201, {}, b"{}", request=LOGIN))
    assert done.value.value.header("Authorization") == "tok1"
    # With a token at hand the flow sends nothing.
    flow = hook.auth_flow(request)
    with pytest.raises(StopIteration) as done:
        next(flow)
    assert done.value.value.header("Authorization") == "tok1"
    assert hook.logins == 1


def test_a_refused_login_thrown_into_the_flow_is_withheld() -> None:
    hook = _hook([1000.0])
    flow = hook.auth_flow(Request("GET", f"{BASE}/x", provider="p"))
    next(flow)
    refused = errors.AuthenticationError("wrong password hunter2", status=401, body="hunter2")
    with pytest.raises(errors.AuthenticationError) as info:
        flow.throw(refused)
    assert info.value.body is None
    assert "hunter2" not in str(info.value)


def test_a_refresh_flow_sends_nothing_when_the_token_was_replaced_meanwhile() -> None:
    hook = TokenLogin(provider="p", token="new", login=lambda: LOGIN, parse=lambda r: None)  # type: ignore[arg-type,return-value]
    stale = Request("GET", f"{BASE}/x").with_header("Authorization", "old")
    with pytest.raises(StopIteration) as done:
        next(hook.refresh_flow(stale))
    assert done.value.value is True
    current = Request("GET", f"{BASE}/x").with_header("Authorization", "new")
    assert next(hook.refresh_flow(current)) == LOGIN  # the token that failed: log in again


def test_oauth1_signing_is_a_flow_that_never_logs_in() -> None:
    hook = OAuth1Hook(OAuth1Credentials("key", "secret", token="t", token_secret="ts"))
    with pytest.raises(StopIteration) as done:
        next(hook.auth_flow(Request("GET", "http://api.musescore.test/services/rest/me.json")))
    signed = done.value.value
    assert signed.url_encoded
    assert (signed.header("Authorization") or "").startswith("OAuth ")
    with pytest.raises(StopIteration) as done:
        next(hook.refresh_flow(signed))
    assert done.value.value is False
    public = OAuth1Hook(OAuth1Credentials("key"))
    with pytest.raises(StopIteration) as done:
        next(public.auth_flow(Request("GET", "http://api.musescore.test/x")))
    assert ("oauth_consumer_key", "key") in done.value.value.params


class Service:
    """A handler: counts logins; accepts only the latest token (older ones get 401)."""

    def __init__(self, delay: float = 0.01) -> None:
        self.logins = 0
        self.calls = 0
        self.delay = delay
        self.current: str | None = "tok0"

    async def __call__(self, request: Request) -> Response:
        await asyncio.sleep(self.delay)  # every call is in flight at once
        if request.url.endswith("/tokens"):
            self.logins += 1
            self.current = f"tok{self.logins}"
            return respond(request, 201, json={"token": self.current})
        self.calls += 1
        if request.header("Authorization") != self.current:
            return respond(request, 401, json={"error": "expired"})
        return respond(request, json={"ok": True})


def _login_hook(clock: list[float], expires_at: float | None = None) -> TokenLogin:
    def parse(response: Response) -> LoginResult:
        return LoginResult(token=response.text().split('"')[3], expires_at=clock[0] + 3600)

    return TokenLogin(
        provider="p",
        token="tok0",
        login=lambda: LOGIN,
        parse=parse,
        expires_at=expires_at,
        clock=lambda: clock[0],
    )


async def _fifty_calls(service: Service, hook: TokenLogin) -> None:
    """50 concurrent calls through a pipeline over ``service``; all must end in 200."""
    transport = Transport(wire=MockTransport(service))
    transport.set_auth("p", hook)
    try:
        results = await asyncio.gather(
            *(transport.send(Request("GET", f"{BASE}/songs/{i}", provider="p")) for i in range(50))
        )
    finally:
        await transport.close()
    assert [r.status for r in results] == [200] * 50


async def test_fifty_calls_with_an_expired_token_make_exactly_one_login() -> None:
    service = Service()
    hook = _login_hook([1000.0], expires_at=900.0)  # expired before the first call
    await _fifty_calls(service, hook)
    assert service.logins == 1
    assert hook.logins == 1
    assert service.calls == 50  # no call went out with the expired token


async def test_fifty_concurrent_401s_make_exactly_one_relogin() -> None:
    service = Service()
    service.current = None  # the server refuses the configured "tok0"
    await _fifty_calls(service, _login_hook([1000.0]))
    assert service.logins == 1
    assert service.calls == 100  # each call: once refused, once accepted


async def test_an_explicit_login_and_the_pipeline_share_one_lock() -> None:
    service = Service()
    transport = Transport(wire=MockTransport(service))
    hook = _login_hook([1000.0], expires_at=900.0)
    transport.set_auth("p", hook)
    try:
        await asyncio.gather(
            hook.login(transport),
            *(transport.send(Request("GET", f"{BASE}/x", provider="p")) for _ in range(10)),
        )
    finally:
        await transport.close()
    assert service.logins == 1  # the explicit login went first; the calls found its token
