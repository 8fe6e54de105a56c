"""TokenLogin: when it logs in, renews, and what it never shows."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from imuzekit import errors
from imuzekit._http import Request, Response
from imuzekit.auth import LoginResult, TokenLogin


class FakeSender:
    """Answers every request with 200 and counts them."""

    def __init__(self) -> None:
        self.sent: list[Request] = []

    async def send(self, request: Request, *, ok_statuses: Collection[int] = ()) -> Response:
        self.sent.append(request)
        return Response(200, {}, b"{}", request=request)


def _hook(clock: list[float], lifetime: float = 100.0) -> tuple[TokenLogin, list[str]]:
    issued: list[str] = []

    def parse(_: Response) -> LoginResult:
        token = f"jwt{len(issued) + 1}"
        issued.append(token)
        return LoginResult(token=token, expires_at=clock[0] + lifetime)

    hook = TokenLogin(
        provider="p",
        login=lambda: Request("PUT", "http://127.0.0.1:9/token", auth=False),
        parse=parse,
        refresh_margin=30,
        clock=lambda: clock[0],
    )
    return hook, issued


async def test_token_is_renewed_shortly_before_it_expires() -> None:
    clock = [1000.0]
    hook, issued = _hook(clock)
    sender = FakeSender()
    first = await hook.apply(Request("GET", "http://127.0.0.1:9/x"), sender)
    assert first.header("Authorization") == "jwt1"
    clock[0] += 60  # 40 s left: more than the 30 s margin
    assert (await hook.apply(Request("GET", "http://x"), sender)).header("Authorization") == "jwt1"
    clock[0] += 15  # 25 s left: inside the margin, renew before the server refuses it
    assert (await hook.apply(Request("GET", "http://x"), sender)).header("Authorization") == "jwt2"
    assert issued == ["jwt1", "jwt2"]
    assert len(sender.sent) == 2  # the two logins; apply() itself sends nothing else


async def test_ready_header_is_offered_only_while_no_login_is_due() -> None:
    # The transport's fast path sends this header without awaiting apply(); it must say None
    # whenever apply() would log in first.
    clock = [1000.0]
    hook, issued = _hook(clock)
    sender = FakeSender()
    assert hook.ready_header() is None  # no token yet: apply() logs in
    await hook.apply(Request("GET", "http://x"), sender)
    assert hook.ready_header() == ("Authorization", "jwt1")
    clock[0] += 75  # 25 s left: inside the margin
    assert hook.ready_header() is None
    await hook.apply(Request("GET", "http://x"), sender)
    assert hook.ready_header() == ("Authorization", "jwt2")
    assert issued == ["jwt1", "jwt2"]
    schemed = TokenLogin(provider="p", token="tok", scheme="Bearer", header="X-Auth")
    assert schemed.ready_header() == ("X-Auth", "Bearer tok")


async def test_given_token_without_login_is_used_and_401_is_final() -> None:
    hook = TokenLogin(provider="p", token="tok", scheme="Token")
    sender = FakeSender()
    request = await hook.apply(Request("GET", "http://x"), sender)
    assert request.header("Authorization") == "Token tok"
    assert await hook.refresh(request, sender) is False
    assert sender.sent == []
    with pytest.raises(errors.ConfigurationError):
        await hook.login(sender)


def test_repr_never_shows_the_token() -> None:
    hook = TokenLogin(provider="p", token="SECRET-TOKEN")
    assert "SECRET" not in repr(hook)
    assert "SECRET" not in repr(LoginResult(token="SECRET-TOKEN"))


def test_needs_a_token_or_a_login() -> None:
    with pytest.raises(errors.ConfigurationError):
        TokenLogin(provider="p")
