"""Pure pieces of the core: the error map, Retry-After parsing, backoff, the converter, names."""

from __future__ import annotations

import datetime as dt
import email.utils
import subprocess
import sys

import attrs
import pytest

import imuzekit
from imuzekit import errors
from imuzekit._convert import make_converter
from imuzekit._http import Request, redact_url
from imuzekit._media import MediaKind, looks_like
from imuzekit._retry import RetryPolicy, backoff_delay, parse_retry_after
from imuzekit.downloads import safe_filename
from imuzekit.jobs import JobState
from imuzekit.jobs._state import next_state


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (422, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (402, errors.PaymentRequiredError),
        (412, errors.PaymentRequiredError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (410, errors.NotFoundError),
        (429, errors.RateLimitError),
        (500, errors.ServerError),
        (503, errors.ServerError),
        (596, errors.ServerError),
        (418, errors.APIError),
    ],
)
def test_every_documented_status_maps(status: int, cls: type[errors.APIError]) -> None:
    assert errors.error_for_status(status) is cls


def test_error_tree_shape() -> None:
    assert issubclass(errors.RequestTimeout, errors.TransportError)
    assert issubclass(errors.JobTimeout, errors.JobFailed)
    assert issubclass(errors.IntegrityError, errors.DownloadError)
    assert issubclass(errors.ValidationError, ValueError)
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.ImuzekitError)
    err = errors.RateLimitError("slow down", status=429, provider="imuze", retry_after=2.0)
    assert err.retry_after == 2.0 and err.status == 429
    assert "429" in str(err) and "slow down" in str(err)


def test_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"Retry-After": " 1.5 "}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "-1"}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=now) == pytest.approx(30, abs=1)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0.0


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=5.0)
    assert backoff_delay(1, policy, rand=lambda: 1.0) == 1.0
    assert backoff_delay(3, policy, rand=lambda: 1.0) == 4.0
    assert backoff_delay(10, policy, rand=lambda: 1.0) == 5.0
    assert backoff_delay(10, policy, rand=lambda: 0.0) == 0.0


def test_post_is_retried_only_on_429() -> None:
    policy = RetryPolicy()
    for status in (500, 502, 503, 504, 408):
        assert policy.should_retry_status(status, idempotent=True)
        assert not policy.should_retry_status(status, idempotent=False)
    assert policy.should_retry_status(429, idempotent=False)
    assert not policy.should_retry_status(400, idempotent=True)


def test_request_idempotency_defaults() -> None:
    assert Request("GET", "http://x").is_idempotent
    assert Request("DELETE", "http://x").is_idempotent
    assert not Request("POST", "http://x").is_idempotent
    assert Request("POST", "http://x", idempotent=True).is_idempotent


def test_redact_url_masks_credentials_only() -> None:
    url = "https://h/p?oauth_consumer_key=ck&token=abc&password=pw&q=rock&oauth_signature=s"
    redacted = redact_url(url)
    assert "abc" not in redacted and "pw" not in redacted and "=s" not in redacted
    assert "q=rock" in redacted and "oauth_consumer_key=ck" in redacted


@attrs.frozen
class _Model:
    id: int
    name: str | None = None
    tags: tuple[str, ...] = ()
    at: dt.datetime | None = None
    score: float | None = None


def test_converter_is_lenient_on_wire_types() -> None:
    conv = make_converter()
    model = conv.structure(
        {"id": "1111", "name": 42, "tags": ["a"], "at": "1700000000", "score": "4.5", "x": 1},
        _Model,
    )
    assert model == _Model(
        id=1111,
        name="42",
        tags=("a",),
        at=dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC),
        score=4.5,
    )
    assert conv.structure(conv.unstructure(model), _Model) == model


@pytest.mark.parametrize("bad", [{"id": "x"}, {"id": True}, {"id": 1, "tags": "abc"}, {"id": 1.5}])
def test_converter_refuses_wrong_types(bad: dict[str, object]) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - cattrs' own error types
        make_converter().structure(bad, _Model)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("My Song", "My Song.mp3"),
        ("../../etc/passwd", "_.._etc_passwd.mp3"),
        ("/abs/path", "_abs_path.mp3"),
        ("con", "_con.mp3"),
        ("a\x00b\x07c", "a_b_c.mp3"),
        ("...", "download.mp3"),
        ("", "download.mp3"),
        ('what?<>:"|*', "what_.mp3"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name, ".mp3") == expected


def test_safe_filename_bounds_length_and_normalises() -> None:
    long = safe_filename("é" * 10_000, ".mp3")
    assert len(long.encode()) <= 160
    assert long.endswith(".mp3")
    assert safe_filename("e\u0301", "") == safe_filename("\u00e9", "")


def test_media_signatures() -> None:
    assert looks_like(MediaKind.MP3, b"\xff\xfb\x90\x00")
    id3 = b"ID3\x03\x00\x00\x00\x00\x00\x05" + b"\x00" * 5 + b"\xff\xfb"
    assert looks_like(MediaKind.MP3, id3)
    assert not looks_like(MediaKind.MP3, b"<html>")
    assert not looks_like(MediaKind.MP3, b"ID3\x03\x00\x00\x00\x00\x00\x05" + b"\x00" * 5 + b"<h")
    assert looks_like(MediaKind.PDF, b"%PDF-1.4")
    assert not looks_like(MediaKind.PNG, b"%PDF")


def test_terminal_states_are_sticky() -> None:
    assert next_state(JobState.QUEUED, JobState.PROCESSING) is JobState.PROCESSING
    assert next_state(JobState.READY, JobState.PROCESSING) is JobState.READY
    assert next_state(JobState.FAILED, JobState.READY) is JobState.FAILED
    assert next_state(JobState.PROCESSING, JobState.UNKNOWN) is JobState.UNKNOWN
    assert next_state(JobState.UNKNOWN, JobState.READY) is JobState.READY


def test_public_names_are_sorted_and_exist() -> None:
    assert imuzekit.__all__ == sorted(imuzekit.__all__)
    for name in imuzekit.__all__:
        assert hasattr(imuzekit, name), name


def test_config_reprs_mask_secrets() -> None:
    config = imuzekit.ImuzeConfig(token="tok-SECRET", email="a@b.c", password="pw-SECRET")
    text = repr(config)
    assert "SECRET" not in text and "a@b.c" in text
    ms = imuzekit.MuseScoreConfig(
        consumer_key="ck", consumer_secret="cs-SECRET", token_secret="ts-SECRET"
    )
    assert "SECRET" not in repr(ms)


def test_import_does_not_pull_cli_dependencies() -> None:
    code = "import sys, imuzekit; print(sorted(m for m in ('click', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_from_env_reads_every_field_and_skips_unconfigured() -> None:
    env = {
        "IMUZEKIT_IMUZE_EMAIL": "a@b.c",
        "IMUZEKIT_IMUZE_PASSWORD": "pw",
        "IMUZEKIT_IMUZE_BASE_URL": "http://127.0.0.1:1/imuze/api/4",
        "IMUZEKIT_MUREKA_TOKEN": "t",
        "IMUZEKIT_MUREKA_ACCOUNTS": "a1, a2,,",
        "IMUZEKIT_MUREKA_MAX_PARALLEL_PER_ACCOUNT": "3",
        "IMUZEKIT_MUSESCORE_BASE_URL": "http://x",  # no consumer key: stays unconfigured
    }
    kit = imuzekit.Client.from_env(env)
    imuze = kit._configs["imuze"]
    assert (imuze.email, imuze.password, imuze.base_url) == (
        "a@b.c",
        "pw",
        "http://127.0.0.1:1/imuze/api/4",
    )
    mureka = kit._configs["mureka"]
    assert mureka.accounts == ("a1", "a2") and mureka.max_parallel_per_account == 3
    assert kit._configs["musescore"] is None and kit._configs["joplin"] is None
    with pytest.raises(errors.ConfigurationError, match="IMUZEKIT_JOPLIN_TOKEN"):
        _ = kit.joplin
