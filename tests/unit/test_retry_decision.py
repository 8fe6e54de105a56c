"""`imuzekit._retry.decide`: the whole retry rule as a table, with no socket and no clock.

One row per case: the policy, the attempt, the request, what the attempt came to (an HTTP status
with its Retry-After, or a connection failure that did or did not reach the server), the
caller's deadline, and the decision expected. The same function decides buffered calls and
streams (`imuzekit._pipeline`), so one table covers both.
"""

from __future__ import annotations

from typing import Any

import pytest

from imuzekit._http import Request
from imuzekit._retry import Action, Decision, Outcome, RetryPolicy, decide

POLICY = RetryPolicy(max_attempts=4, backoff_base=0.5, backoff_max=30.0, max_retry_after=60.0)
GET = Request("GET", "http://127.0.0.1:9/songs/1", provider="imuze")
CREATE = Request("POST", "http://127.0.0.1:9/songs", provider="imuze", json={"title": "Morning"})
IDEMPOTENT_POST = Request("POST", "http://127.0.0.1:9/search", json={}, idempotent=True)
REFUSED = Outcome(sent=False, failure="TransportError")  # provably never received
READ_TIMEOUT = Outcome(sent=True, failure="RequestTimeout")  # may have been received

# rand() == 1.0: the jittered backoff is its ceiling, 0.5 * 2 ** (attempt - 1).
ROWS: list[tuple[str, Request, int, Outcome, dict[str, Any], Decision]] = [
    ("200 is done", GET, 1, Outcome(200), {}, Decision(Action.DONE)),
    ("304 is done", GET, 1, Outcome(304), {}, Decision(Action.DONE)),
    (
        "an ok_status is done",
        GET,
        1,
        Outcome(416),
        {"ok_statuses": (416,)},
        Decision(Action.DONE),
    ),
    ("404 raises", GET, 1, Outcome(404), {}, Decision(Action.RAISE, reason="404")),
    # Idempotent vs paid create.
    ("GET 503 retries", GET, 1, Outcome(503), {}, Decision(Action.RETRY, 0.5, reason="503")),
    ("GET 503, attempt 3", GET, 3, Outcome(503), {}, Decision(Action.RETRY, 2.0, reason="503")),
    ("create 503 raises", CREATE, 1, Outcome(503), {}, Decision(Action.RAISE, reason="503")),
    ("create 500 raises", CREATE, 1, Outcome(500), {}, Decision(Action.RAISE, reason="500")),
    (
        "idempotent POST 503 retries",
        IDEMPOTENT_POST,
        1,
        Outcome(503),
        {},
        Decision(Action.RETRY, 0.5, reason="503"),
    ),
    # Connection failures: provably not received vs maybe received.
    (
        "create refused retries",
        CREATE,
        1,
        REFUSED,
        {},
        Decision(Action.RETRY, 0.5, reason="TransportError"),
    ),
    (
        "create read timeout raises",
        CREATE,
        1,
        READ_TIMEOUT,
        {},
        Decision(Action.RAISE, reason="RequestTimeout"),
    ),
    (
        "GET read timeout retries",
        GET,
        2,
        READ_TIMEOUT,
        {},
        Decision(Action.RETRY, 1.0, reason="RequestTimeout"),
    ),
    # 429: with Retry-After the whole gate pauses and the gate does the waiting.
    (
        "create 429 with Retry-After",
        CREATE,
        1,
        Outcome(429, 2.0),
        {},
        Decision(Action.RETRY, 0.0, pause=2.0, reason="429"),
    ),
    (
        "create 429 without Retry-After",
        CREATE,
        1,
        Outcome(429),
        {},
        Decision(Action.RETRY, 0.5, reason="429"),
    ),
    (
        "429 over the cap: raise, gate paused for the cap",
        GET,
        1,
        Outcome(429, 3600.0),
        {},
        Decision(Action.RAISE, pause=60.0, reason="429"),
    ),
    (
        "429 on the last attempt still pauses the gate",
        GET,
        4,
        Outcome(429, 1.0),
        {},
        Decision(Action.RAISE, pause=1.0, reason="429"),
    ),
    # 5xx with Retry-After: honoured (buffered and streamed alike), capped, deadline first.
    (
        "503 Retry-After longer than the backoff",
        GET,
        1,
        Outcome(503, 5.0),
        {},
        Decision(Action.RETRY, 5.0, reason="503"),
    ),
    (
        "503 Retry-After shorter than the backoff",
        GET,
        3,
        Outcome(503, 0.1),
        {},
        Decision(Action.RETRY, 2.0, reason="503"),
    ),
    (
        "503 Retry-After over the cap raises at once",
        GET,
        1,
        Outcome(503, 120.0),
        {},
        Decision(Action.RAISE, reason="503"),
    ),
    (
        "503 Retry-After past the deadline raises now",
        GET,
        1,
        Outcome(503, 5.0),
        {"deadline_left": 0.5},
        Decision(Action.RAISE, reason="503"),
    ),
    (
        "503 retry within the deadline",
        GET,
        1,
        Outcome(503),
        {"deadline_left": 0.6},
        Decision(Action.RETRY, 0.5, reason="503"),
    ),
    (
        "a connection retry past the deadline raises now",
        GET,
        1,
        REFUSED,
        {"deadline_left": 0.1},
        Decision(Action.RAISE, reason="TransportError"),
    ),
    # 401: one re-login, then the plain error.
    (
        "401 with credentials to renew",
        GET,
        1,
        Outcome(401),
        {"can_relogin": True},
        Decision(Action.RELOGIN, reason="401"),
    ),
    (
        "401 once renewed raises",
        GET,
        1,
        Outcome(401),
        {"can_relogin": False},
        Decision(Action.RAISE, reason="401"),
    ),
    (
        "create 401 re-logs in too",
        CREATE,
        1,
        Outcome(401),
        {"can_relogin": True},
        Decision(Action.RELOGIN, reason="401"),
    ),
    # Attempts exhausted.
    ("503 on the last attempt", GET, 4, Outcome(503), {}, Decision(Action.RAISE, reason="503")),
    (
        "refused on the last attempt",
        CREATE,
        4,
        REFUSED,
        {},
        Decision(Action.RAISE, reason="TransportError"),
    ),
]


@pytest.mark.parametrize(
    ("request_", "attempt", "outcome", "options", "expected"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_decision_table(
    request_: Request, attempt: int, outcome: Outcome, options: dict[str, Any], expected: Decision
) -> None:
    assert decide(POLICY, attempt, request_, outcome, rand=lambda: 1.0, **options) == expected


def test_a_policy_that_never_retries() -> None:
    once = RetryPolicy.none()
    for outcome in (Outcome(503), Outcome(429), REFUSED):
        assert decide(once, 1, GET, outcome).action is Action.RAISE
    # Even then a 429's wait pauses the gate for everyone.
    assert decide(once, 1, GET, Outcome(429, 3.0)) == Decision(
        Action.RAISE, pause=3.0, reason="429"
    )


def test_an_infinite_cap_obeys_any_wait() -> None:
    patient = RetryPolicy(max_retry_after=float("inf"))
    decision = decide(patient, 1, GET, Outcome(503, 7 * 24 * 3600.0), rand=lambda: 0.0)
    assert decision == Decision(Action.RETRY, 7 * 24 * 3600.0, reason="503")


def test_the_backoff_is_jittered_and_capped() -> None:
    capped = RetryPolicy(max_attempts=20, backoff_base=0.5, backoff_max=3.0)
    assert decide(capped, 10, GET, Outcome(502), rand=lambda: 1.0).delay == 3.0
    assert decide(capped, 10, GET, Outcome(502), rand=lambda: 0.25).delay == 0.75
    assert decide(capped, 1, GET, Outcome(502), rand=lambda: 0.0).delay == 0.0


def test_statuses_outside_the_policy_are_never_retried() -> None:
    narrow = RetryPolicy(retry_statuses={503})
    assert decide(narrow, 1, GET, Outcome(502)).action is Action.RAISE
    assert decide(narrow, 1, GET, Outcome(429, 1.0)) == Decision(
        Action.RAISE, pause=1.0, reason="429"
    )
