"""`Webhooks` without a server: references, the callback rules, limits and counters.

Every refused callback must leave the confirmer uncalled: a callback is a hint, and only a
valid one for a registered job, claiming it ended, may cause the one confirming GET.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from imuzekit import errors
from imuzekit.webhooks import MAX_REF_LENGTH, Webhooks, WebhookStats

from .conftest import JSON, PATH, PUBLIC_URL, SECRET, Confirmer, encode, record

JOB = "j1-u777-a12345678901234-bot:mureka"
OTHER = "j2-u777-a12345678901234-bot:mureka"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hooks(clock: Clock) -> Webhooks:
    return Webhooks(public_url=PUBLIC_URL, secret=SECRET, clock=clock)


async def post(hooks: Webhooks, body: Any, headers: dict[str, str] | None = None) -> int:
    data = body if isinstance(body, bytes) else encode(body)
    return await hooks.handle(PATH, headers if headers is not None else JSON, data)


def registered(hooks: Webhooks, job: str = JOB, **kwargs: Any) -> tuple[str, Confirmer]:
    confirm = Confirmer(**kwargs)
    ref = hooks.reply().ref
    assert hooks.register(job, ref, confirm, account="12345678901234")
    return ref, confirm


# --- references ----------------------------------------------------------------------------


def test_reply_gives_the_public_url_and_a_fresh_bounded_ref(hooks: Webhooks) -> None:
    first, second = hooks.reply(), hooks.reply()
    assert first.url == second.url == PUBLIC_URL
    assert first.ref != second.ref
    assert first.ref.startswith("ik1.") and len(first.ref) <= MAX_REF_LENGTH
    assert len(first.ref.split(".")) == 4


def test_the_secret_is_never_shown(hooks: Webhooks) -> None:
    assert SECRET not in repr(hooks)
    assert "secret" not in repr(hooks).lower()
    assert SECRET not in repr(vars(hooks))


def test_a_short_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(errors.ValidationError) as caught:
        Webhooks(public_url=PUBLIC_URL, secret="tiny-secret")
    assert caught.value.field == "secret"
    assert "tiny-secret" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["ftp://me.example/h", "me.example/h", "https:///h", "https://me.example/h?q=1", 3]
)
def test_public_url_must_be_an_http_url(url: Any) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        Webhooks(public_url=url)
    assert caught.value.field == "public_url"


async def test_random_secrets_differ_between_receivers() -> None:
    one, two = Webhooks(public_url=PUBLIC_URL), Webhooks(public_url=PUBLIC_URL)
    ref = one.reply().ref
    assert two.register(JOB, ref, Confirmer()) is False
    assert one.register(JOB, ref, Confirmer()) is True
    assert await two.handle(PATH, JSON, encode(record(JOB, ref))) == 401


# --- valid callbacks -----------------------------------------------------------------------


async def test_a_completed_callback_confirms_once(hooks: Webhooks) -> None:
    ref, confirm = registered(hooks)
    assert await post(hooks, record(JOB, ref)) == 202
    await hooks.drain()
    assert confirm.calls == 1
    assert not hooks.watching(JOB)
    assert hooks.stats() == WebhookStats(received=1, accepted=1, confirmations=1)


async def test_a_failed_callback_confirms_too(hooks: Webhooks) -> None:
    ref, confirm = registered(hooks)
    assert await post(hooks, record(JOB, ref, "failed")) == 202
    await hooks.drain()
    assert confirm.calls == 1


async def test_created_and_unknown_statuses_need_no_confirmation(hooks: Webhooks) -> None:
    ref, confirm = registered(hooks)
    assert await post(hooks, record(JOB, ref, "created")) == 200
    assert await post(hooks, record(JOB, ref, "teleported")) == 200
    await hooks.drain()
    assert confirm.calls == 0
    assert hooks.watching(JOB)
    assert hooks.stats().ignored == 2


async def test_duplicates_while_confirming_and_after_settling_change_nothing(
    hooks: Webhooks,
) -> None:
    ref, confirm = registered(hooks)
    body = encode(record(JOB, ref))
    statuses = [await post(hooks, body) for _ in range(3)]  # no await between: one in flight
    await hooks.drain()
    statuses += [await post(hooks, body) for _ in range(3)]  # the job settled meanwhile
    await hooks.drain()
    assert statuses == [202, 200, 200, 200, 200, 200]
    assert confirm.calls == 1
    assert hooks.stats().accepted == 1 and hooks.stats().ignored == 5


async def test_a_job_settled_by_polling_ignores_its_late_callbacks(hooks: Webhooks) -> None:
    ref, confirm = registered(hooks)
    hooks.settle(JOB)
    assert hooks.ref_of(JOB) is None
    assert await post(hooks, record(JOB, ref)) == 200
    await hooks.drain()
    assert confirm.calls == 0


async def test_a_stale_hint_is_confirmed_at_most_max_confirms_times(clock: Clock) -> None:
    hooks = Webhooks(public_url=PUBLIC_URL, secret=SECRET, max_confirms=2, clock=clock)
    ref, confirm = registered(hooks, settled=False)  # the GET says: still running
    statuses = []
    for _ in range(4):
        statuses.append(await post(hooks, record(JOB, ref)))
        await hooks.drain()
    assert statuses == [202, 202, 200, 200]
    assert confirm.calls == 2
    assert hooks.watching(JOB)  # the poller's safety schedule finishes it


async def test_a_failing_confirmation_leaves_the_job_watched(hooks: Webhooks) -> None:
    ref, confirm = registered(hooks, error=errors.ServerError("boom", status=503))
    assert await post(hooks, record(JOB, ref)) == 202
    await hooks.drain()
    assert confirm.calls == 1
    assert hooks.watching(JOB)
    assert hooks.stats().confirm_errors == 1


async def test_a_callback_that_outruns_the_create_answer_is_confirmed_at_register(
    hooks: Webhooks,
) -> None:
    reply = hooks.reply()
    assert await post(hooks, record(JOB, reply.ref)) == 200  # not registered yet
    confirm = Confirmer()
    assert hooks.register(JOB, reply.ref, confirm)
    await hooks.drain()
    assert confirm.calls == 1


async def test_an_early_created_callback_starts_nothing_at_register(hooks: Webhooks) -> None:
    reply = hooks.reply()
    assert await post(hooks, record(JOB, reply.ref, "created")) == 200
    confirm = Confirmer()
    hooks.register(JOB, reply.ref, confirm)
    await hooks.drain()
    assert confirm.calls == 0


async def test_token_ref_survives_a_restart_with_the_same_secret(clock: Clock) -> None:
    first = Webhooks(public_url=PUBLIC_URL, secret=SECRET, clock=clock)
    ref, _ = registered(first)
    assert first.ref_of(JOB) == ref
    second = Webhooks(public_url=PUBLIC_URL, secret=SECRET, clock=clock)  # another process
    confirm = Confirmer()
    assert second.register(JOB, ref, confirm)
    assert await post(second, record(JOB, ref)) == 202
    await second.drain()
    assert confirm.calls == 1


# --- refused callbacks ---------------------------------------------------------------------


def tampered(ref: str) -> str:
    head, mac = ref.rsplit(".", 1)
    return f"{head}.{('A' if mac[0] != 'A' else 'B') + mac[1:]}"


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda ref: record(JOB, None), 401),
        (lambda ref: record(JOB, ""), 401),
        (lambda ref: record(JOB, tampered(ref)), 401),
        (lambda ref: record(JOB, "ik1.0.AAAAAAAAAAAAAAAAAAAAAA." + "A" * 43), 401),
        (lambda ref: record(JOB, ref + "x" * 200), 401),
        (lambda ref: record(JOB, 12345), 401),
        (lambda ref: record(OTHER, ref), 404),
        (lambda ref: record(JOB, ref, account="98765432109876"), 403),
        (lambda ref: {"status": "completed", "request": {"replyRef": ref}}, 400),
        (lambda ref: {**record(JOB, ref), "jobid": 7}, 400),
        (lambda ref: {**record(JOB, ref), "jobid": "j" * 600}, 400),
        (lambda ref: [record(JOB, ref)], 400),
        (lambda ref: b"{not json", 400),
        (lambda ref: b"[" * 100_000, 400),
        (lambda ref: b"\xff\xfe", 400),
    ],
)
async def test_refused_callbacks_change_nothing(hooks: Webhooks, make: Any, status: int) -> None:
    ref, confirm = registered(hooks)
    assert await post(hooks, make(ref)) == status
    await hooks.drain()
    assert confirm.calls == 0
    assert hooks.watching(JOB)
    assert hooks.stats() == WebhookStats(received=1, refused=1)


async def test_a_valid_ref_of_another_job_is_refused(hooks: Webhooks) -> None:
    ref_a, confirm_a = registered(hooks, JOB)
    _, confirm_b = registered(hooks, OTHER)
    assert await post(hooks, record(OTHER, ref_a)) == 403  # job A's ref pasted into B's
    await hooks.drain()
    assert (confirm_a.calls, confirm_b.calls) == (0, 0)


async def test_an_expired_ref_is_refused(hooks: Webhooks, clock: Clock) -> None:
    ref, confirm = registered(hooks)
    clock.now += 8 * 86400 + 1
    assert await post(hooks, record(JOB, ref)) == 401
    await hooks.drain()
    assert confirm.calls == 0


async def test_a_replay_in_a_fresh_process_is_unknown(clock: Clock) -> None:
    first = Webhooks(public_url=PUBLIC_URL, secret=SECRET, clock=clock)
    ref, _ = registered(first)
    fresh = Webhooks(public_url=PUBLIC_URL, secret=SECRET, clock=clock)
    assert await post(fresh, record(JOB, ref)) == 404


async def test_wrong_path_and_content_type_are_refused(hooks: Webhooks) -> None:
    ref, confirm = registered(hooks)
    body = encode(record(JOB, ref))
    assert await hooks.handle("/elsewhere", JSON, body) == 404
    assert await hooks.handle(PATH, {"Content-Type": "text/html"}, body) == 415
    assert await hooks.handle(PATH + "/", {"content-type": "application/json"}, body) == 202
    await hooks.drain()
    assert confirm.calls == 1


async def test_oversized_bodies_are_refused_before_they_are_read(clock: Clock) -> None:
    hooks = Webhooks(public_url=PUBLIC_URL, secret=SECRET, max_body_bytes=1000, clock=clock)
    ref, confirm = registered(hooks)
    read: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1_000_000):
            read.append(1)
            yield b"x" * 100

    declared = {"Content-Length": "5000", **JSON}
    assert await hooks.handle(PATH, declared, endless()) == 413
    assert read == []  # refused on Content-Length alone
    assert await hooks.handle(PATH, JSON, endless()) == 413
    assert len(read) == 11  # stopped at the first chunk past the limit
    assert await hooks.handle(PATH, JSON, b"x" * 1001) == 413
    assert await hooks.handle(PATH, {"Content-Length": "12abc"}, b"{}") == 400
    small = encode(record(JOB, ref))
    assert len(small) < 1000
    assert await hooks.handle(PATH, JSON, small) == 202
    await hooks.drain()
    assert confirm.calls == 1


async def test_logs_never_show_the_secret_nor_the_ref(
    hooks: Webhooks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="imuzekit.webhooks")
    ref, _ = registered(hooks, error=RuntimeError(SECRET))
    for body in (record(JOB, tampered(ref)), record(OTHER, ref), record(JOB, ref)):
        await post(hooks, body)
    await hooks.drain()
    assert caplog.records
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in text and ref not in text and ref.rsplit(".", 1)[1] not in text


def test_importing_the_receiver_does_not_load_aiohttp() -> None:
    import subprocess
    import sys

    code = "import sys, imuzekit.webhooks; print('aiohttp' in sys.modules)"
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
