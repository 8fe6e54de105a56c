"""`with_options(timeout=, retry=, headers=)`: a view sharing the pool, gates and logins."""

from __future__ import annotations

from typing import Any

import pytest

from imuzekit import errors
from imuzekit._http import Request, Response, Timeouts
from imuzekit._retry import RetryPolicy
from imuzekit._transport import Transport
from imuzekit.auth import LoginResult, TokenLogin
from imuzekit.testing import MockTransport, respond

BASE = "http://127.0.0.1:9"
FAST = RetryPolicy(backoff_base=0.001, backoff_max=0.002)


class Recorder:
    """Answers 503 to paths under /busy, a token to /tokens, and 200 otherwise."""

    def __init__(self) -> None:
        self.seen: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.seen.append(request)
        if request.url.endswith("/tokens"):
            return respond(request, 201, json={"token": f"tok{len(self.seen)}"})
        if "/busy" in request.url:
            return respond(request, 503, json={"error": "busy"})
        return respond(request, json={"ok": True})


def _transport(recorder: Recorder) -> Transport:
    return Transport(wire=MockTransport(recorder), retry=FAST, timeouts=Timeouts(total=30))


async def test_headers_go_with_the_views_calls_only() -> None:
    recorder = Recorder()
    kit = _transport(recorder)
    view = kit.with_options(headers={"X-Trace": "abc", "Accept": "text/plain"})
    nested = view.with_options(headers={"X-Trace": "def"})
    await view.send(Request("GET", f"{BASE}/a", headers={"Accept": "application/json"}))
    await kit.send(Request("GET", f"{BASE}/b"))
    await nested.send(Request("GET", f"{BASE}/c"))
    a, b, c = recorder.seen
    assert a.header("X-Trace") == "abc"
    assert a.header("Accept") == "application/json"  # the request's own header wins
    assert b.header("X-Trace") is None
    assert c.header("X-Trace") == "def" and c.header("Accept") == "text/plain"
    await kit.close()


async def test_credentials_win_over_a_views_headers() -> None:
    recorder = Recorder()
    kit = _transport(recorder)
    kit.set_auth("p", TokenLogin(provider="p", token="real"))
    view = kit.with_options(headers={"Authorization": "forged", "X-Trace": "abc"})
    await view.send(Request("GET", f"{BASE}/a", provider="p"))
    assert recorder.seen[0].header("Authorization") == "real"
    assert recorder.seen[0].header("X-Trace") == "abc"
    await kit.close()


async def test_retry_applies_to_the_views_calls_only() -> None:
    recorder = Recorder()
    kit = _transport(recorder)
    once = kit.with_options(retry=RetryPolicy.none())
    with pytest.raises(errors.ServerError):
        await once.send(Request("GET", f"{BASE}/busy"))
    assert len(recorder.seen) == 1
    with pytest.raises(errors.ServerError):
        await kit.send(Request("GET", f"{BASE}/busy"))
    assert len(recorder.seen) == 1 + FAST.max_attempts
    # A request's own policy still wins over the view's.
    with pytest.raises(errors.ServerError):
        await once.send(Request("GET", f"{BASE}/busy", retry=RetryPolicy(max_attempts=2)))
    assert len(recorder.seen) == 1 + FAST.max_attempts + 2
    await kit.close()


def test_a_number_is_the_total_time_of_each_attempt() -> None:
    kit = Transport(timeouts=Timeouts(connect=10, read=60, total=300))
    assert kit.with_options(timeout=5).timeouts == Timeouts(connect=5, read=5, total=5)
    assert kit.with_options(timeout=30.0).timeouts == Timeouts(connect=10, read=30, total=30)
    given = Timeouts(connect=1, read=None, total=None)
    assert kit.with_options(timeout=given).timeouts is given
    assert kit.timeouts == Timeouts(connect=10, read=60, total=300)  # the base is unchanged


async def test_a_view_shares_logins_gates_and_the_pool() -> None:
    recorder = Recorder()
    kit = _transport(recorder)
    hook = TokenLogin(
        provider="p",
        login=lambda: Request("POST", f"{BASE}/tokens", auth=False),
        parse=lambda r: LoginResult(token=str(r.text())),
    )
    kit.set_auth("p", hook)
    view = kit.with_options(timeout=5, headers={"X-A": "1"})
    await view.send(Request("GET", f"{BASE}/a", provider="p"))
    await kit.send(Request("GET", f"{BASE}/b", provider="p"))
    assert hook.logins == 1  # the view's login serves the Client too
    assert view.gate("p") is kit.gate("p")
    assert view.get_auth("p") is kit.get_auth("p") is hook
    assert view.adapter is kit.adapter
    await view.close()
    assert kit.closed  # one pool: closing either closes it


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"timeout": -1}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"retry": 3}, "retry"),
        ({"headers": {"X-A": 1}}, "headers"),
        ({"headers": [("X-A", "1")]}, "headers"),
        ({"headers": {"": "x"}}, "headers"),
    ],
)
def test_bad_options_are_refused_naming_them(options: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        Transport().with_options(**options)
    assert info.value.field == field
