"""No credential ever shows: logs, reprs, exception messages, job tokens, files written.

A whole session over the four providers runs with the ``imuzekit`` logger at DEBUG; every
secret met along the way (the emulator's credentials, the tokens the auth hooks hold, the
OAuth signatures the SDK computed, the access token of a three-legged flow) is then searched
for in everything observable with `find_leaks`, which a deliberate leak shows to work.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from imuzekit import (
    Client,
    ImuzeConfig,
    JoplinConfig,
    MurekaConfig,
    MuseScoreConfig,
    PollPolicy,
    RetryPolicy,
    errors,
)
from imuzekit._http import Request
from imuzekit.emulator import Emulator
from imuzekit.jobs import Job
from imuzekit.providers.musescore import _oauth
from tests.reliability._ops import mscz_file, musescore_config
from tests.reliability._secrets import find_leaks

FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
FAST_POLL = PollPolicy(initial=0.02, max_interval=0.05, timeout=10)


def _signature(request: Request) -> str | None:
    header = request.header("Authorization") or ""
    for part in header.removeprefix("OAuth ").split(","):
        key, _, value = part.strip().partition("=")
        if key == "oauth_signature":
            return unquote(value.strip('"'))
    return dict(request.params).get("oauth_signature")


def test_the_scanner_catches_a_deliberate_leak(caplog: pytest.LogCaptureFixture) -> None:
    token = "tok-0123456789abcdef"
    with caplog.at_level(logging.DEBUG, logger="imuzekit"):
        logging.getLogger("imuzekit.transport").debug("sending with token %s", token)

    class Leaky:
        def __repr__(self) -> str:
            return f"Leaky(secret={token!r})"

    texts = {"log": caplog.text, "repr": repr(Leaky()), "url": f"http://h/?t={token}", "ok": "x"}
    assert sorted(find_leaks([token], texts)) == ["log: tok-...", "repr: tok-...", "url: tok-..."]
    assert find_leaks(["a/b+c=d?"], {"query": "?q=a%2Fb%2Bc%3Dd%3F"}) == ["query: a/b+..."]
    assert find_leaks(["", None, "abc"], {"t": "abc"}) == []  # too short to mean anything


def test_config_reprs_mask_secrets() -> None:
    configs = [
        ImuzeConfig(email="me@example.test", password="pw-123456", token="tok-123456"),
        JoplinConfig(email="me@example.test", password="pw-123456", token="tok-123456"),
        MurekaConfig(token="tok-123456", accounts=("1",)),
        MuseScoreConfig(
            consumer_key="key",
            consumer_secret="cs-123456",
            token="at-123456",
            token_secret="ts-123456",
        ),
    ]
    secrets = ["pw-123456", "tok-123456", "cs-123456", "at-123456", "ts-123456"]
    for config in configs:
        assert find_leaks(secrets, {"repr": repr(config), "str": str(config)}) == []
        assert "***" in repr(config)


async def test_a_whole_session_leaks_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    signatures: list[str] = []
    original = _oauth.sign

    def recording_sign(request: Request, credentials: Any) -> Request:
        signed = original(request, credentials)
        if (signature := _signature(signed)) is not None:
            signatures.append(signature)
        return signed

    monkeypatch.setattr(_oauth, "sign", recording_sign)
    seen: dict[str, Any] = {}
    error_texts: dict[str, str] = {}
    folder = tmp_path / "downloads"
    folder.mkdir()

    def note(name: str, value: Any) -> None:
        seen[name] = value

    with caplog.at_level(logging.DEBUG, logger="imuzekit"):
        async with Emulator(render_seconds=0.05) as emu:
            secrets: list[str | None] = []
            for creds in emu.credentials.values():
                secrets += [creds.password, creds.token, *creds.extra.values()]
            secrets = [s for s in secrets if s != emu.musescore.consumer_key]
            async with emu.client(retry=FAST_RETRY, poll=FAST_POLL) as kit:
                note("client", kit)
                await kit.imuze.login()
                await kit.joplin.login()
                secrets += [kit.imuze._auth._token, kit.joplin._auth._token]
                note("arrangements", [a async for a in kit.imuze.arrangements.list()])
                song_job = await kit.imuze.songs.create(
                    title="Secret Song", arrangement_id=1, tags=["x"], desired_length=2
                )
                note("song job", song_job)
                note("song", await song_job.wait(timeout=5))
                note("song path", await kit.download(seen["song"], folder))
                note("genres", await kit.joplin.genres())
                music_job = await kit.joplin.musics.create("electronic", "house", 2_000, "calm:1")
                note("music", await music_job.wait(timeout=5))
                note("music path", await kit.download(seen["music"], folder))
                account = next(iter(emu.mureka.accounts))
                feed_job = await kit.mureka.music.create("a song", account=account)
                note("feed", await feed_job.wait(timeout=5))
                note("feeds", [f async for f in kit.mureka.music.list(account=account)])
                note("feed path", await kit.download(seen["feed"].songs[0], folder))
                scores = await kit.musescore.scores.search(limit=2).collect()
                note("scores", scores)
                note("me", await kit.musescore.me())
                upload = await kit.musescore.scores.upload(mscz_file(tmp_path), "Mine")
                note("upload", await upload.wait(timeout=5))
                note("score path", await kit.download(scores[0].file("mp3"), folder))
                for name, call in [
                    ("404", kit.imuze.songs.get(999_999)),
                    ("404 musescore", kit.musescore.scores.get(999_999_999)),
                ]:
                    try:
                        await call
                    except errors.ImuzekitError as exc:
                        error_texts[name] = f"{exc!s} {exc!r} {exc.__dict__!r}"
                jobs: list[Job[Any]] = [song_job, music_job, feed_job, upload]
                tokens = {f"token {job.provider}": job.token() for job in jobs}
                for job in jobs:
                    note(f"job {job.provider}", job)
                    note(f"resumed {job.provider}", kit.resume(job.token()))
                note("transport", kit.transport)

            # The three-legged flow from a consumer-only client.
            async with Client(musescore=musescore_config(emu, with_token=False)) as flow:
                request_token = await flow.musescore.oauth.request_token()
                verifier = emu.musescore.approve(request_token.oauth_token)
                access = await flow.musescore.oauth.access_token(request_token, verifier)
                note("request token", request_token)
                note("access token", access)
                note("flow me", await flow.musescore.me())
                secrets += [request_token.oauth_token_secret, access.oauth_token_secret]
                secrets += [access.oauth_token, verifier]

            # Wrong credentials: the errors must not quote them either.
            wrong = ImuzeConfig(
                email="demo@imuzekit.test", password="wrong-password-1", base_url=emu.urls["imuze"]
            )
            async with Client(imuze=wrong, retry=RetryPolicy.none()) as bad:
                with pytest.raises(errors.AuthenticationError) as info:
                    await bad.imuze.songs.get(1)
                error_texts["wrong password"] = f"{info.value!s} {info.value!r}"
                secrets.append("wrong-password-1")
    secrets += signatures
    assert len(signatures) >= 5
    texts = {"log": caplog.text, **error_texts, **tokens}
    texts.update({f"repr({name})": repr(value) for name, value in seen.items()})
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.parent == folder:
            texts[f"file {path.name}"] = path.read_bytes().decode("latin-1")
            texts[f"name {path.name}"] = path.name
    assert caplog.text, "nothing was logged: the scan proves nothing"
    assert find_leaks(secrets, texts) == []
