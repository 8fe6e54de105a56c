"""MuseScore.com (seed 004) through the public API against the emulator: the formats, paging,
string user ids, odd numbers, the upload answer, resolve's redirect, mus.cr links, secrets and
private scores."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import attrs
import pytest

from imuzekit import Client, MuseScoreConfig, PollPolicy, errors
from imuzekit.emulator import Emulator
from imuzekit.providers.musescore import Score, User
from tests._configs import musescore_config
from tests.emulator._musescore_helpers import expected_search


def _public_config(emu: Emulator) -> MuseScoreConfig:
    """Consumer-signed only: no user token."""
    return musescore_config(emu, token=None, token_secret=None)


FORMATS = [("xml", None), ("jsonp", None), ("jsonp", "my.cb_1")]


def _mscz(title: str = "Etude") -> tuple[str, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("etude.mscx", f"<museScore><Score><metaTag name='workTitle'>{title}"
                         "</metaTag></Score></museScore>")  # fmt: skip
    return ("etude.mscz", buffer.getvalue())


def _paths(emu: Emulator) -> list[str]:
    return [r.path for r in emu.requests if r.provider == "musescore"]


# -- user ids are strings -------------------------------------------------------------------------


async def test_users_by_int_numeric_string_and_name_are_the_same(emu: Emulator) -> None:
    async with Client(musescore=musescore_config(emu)) as kit:
        me = await kit.musescore.me()
        assert me.name is not None
        by_int = await kit.musescore.users.get(me.id)
        assert await kit.musescore.users.get(str(me.id)) == by_int
        assert await kit.musescore.users.get(me.name) == by_int
        ids = [s.id async for s in kit.musescore.users.scores(me.id)]
        assert ids and [s.id async for s in kit.musescore.users.scores(me.name)] == ids
        assert [s.id async for s in kit.musescore.users.scores(str(me.id))] == ids
        with pytest.raises(errors.NotFoundError):
            await kit.musescore.users.get("nobody-here")
        for bad in ("", "  ", 0, True):
            with pytest.raises(errors.ValidationError, match="user_id"):
                await kit.musescore.users.get(bad)  # type: ignore[arg-type]
    assert f"/user/{me.name}.json" in _paths(emu)


# -- every GET in XML and JSONP reads into the same models ---------------------------------------


@pytest.mark.parametrize(("fmt", "callback"), FORMATS)
async def test_every_get_endpoint_in_each_format_equals_json(
    emu: Emulator, fmt: str, callback: str | None
) -> None:
    asked = {"format": fmt, "callback": callback}
    async with Client(musescore=musescore_config(emu)) as kit:
        ms = kit.musescore
        as_json = await ms.scores.search(parts=2, limit=25).collect()
        assert len(as_json) == 25  # two pages
        assert await ms.scores.search(parts=2, limit=25, **asked).collect() == as_json
        score = as_json[0]
        assert await ms.scores.get(score.id, **asked) == await ms.scores.get(score.id)
        assert await ms.scores.time(score.id, **asked) == await ms.scores.time(score.id)
        assert await ms.scores.space(score.id, **asked) == await ms.scores.space(score.id)
        me = await ms.me()
        assert await ms.me(**asked) == me
        assert await ms.users.get(me.id, **asked) == me
        mine = await ms.users.scores(me.id).collect()
        assert await ms.users.scores(me.id, **asked).collect() == mine
        assert score.permalink is not None and me.permalink is not None
        assert await ms.resolve(score.permalink, **asked) == await ms.resolve(score.permalink)
        assert await ms.resolve(me.permalink, **asked) == me
        oembed = await ms.oembed(score.permalink)
        other = await ms.oembed(score.permalink, **asked)
        assert attrs_without_html(other) == attrs_without_html(oembed)
        assert other.html is not None and f"/node/{score.id}/embed" in other.html
    paths = _paths(emu)
    suffix = f".{fmt}"
    for path in ("/score", f"/score/{score.id}", f"/score/{score.id}/time", "/me", "/resolve"):
        assert path + suffix in paths
    sent = [r for r in emu.requests if r.provider == "musescore" and r.path.endswith(suffix)]
    if fmt == "jsonp":
        assert {r.query.get("callback") for r in sent} == {callback or "callback"}


def attrs_without_html(value: Any) -> dict[str, Any]:
    fields = attrs.asdict(value)
    # XML leaves are read stripped: the player markup's trailing space does not survive.
    fields["html"] = (fields["html"] or "").strip()
    return fields


async def test_format_and_callback_are_checked_before_sending(emu: Emulator) -> None:
    async with Client(musescore=musescore_config(emu)) as kit:
        ms = kit.musescore
        with pytest.raises(errors.ValidationError, match="format"):
            await ms.scores.get(1001, format="yaml")
        with pytest.raises(errors.ValidationError, match="callback"):
            await ms.me(format="json", callback="f")
        with pytest.raises(errors.ValidationError, match="callback"):
            await ms.oembed("http://musescore.com/x/scores/1", format="jsonp", callback="a b")
        with pytest.raises(errors.ValidationError, match="format"):
            ms.scores.search(format="csv")
    assert _paths(emu) == []


# -- search pages --------------------------------------------------------------------------------


async def test_search_starts_at_the_callers_zero_based_page(emu: Emulator) -> None:
    expected = expected_search(emu.musescore)
    assert len(expected) > 60
    async with Client(musescore=_public_config(emu)) as kit:
        results = kit.musescore.scores.search(page=2)
        ids = [s.id async for s in results]
        assert ids == expected[40:]
        assert results.pages == len(expected[40:]) // 20 + 1
        assert [s.id async for s in kit.musescore.scores.search(page=1, limit=5)] == expected[20:25]
        past_end = kit.musescore.scores.search(page=len(expected) // 20 + 1)
        assert [s async for s in past_end] == [] and past_end.pages == 1
        with pytest.raises(errors.ValidationError, match="page"):
            kit.musescore.scores.search(page=-1)
    first = next(r for r in emu.requests if r.provider == "musescore")
    assert first.query["page"] == "2"


async def test_user_scores_start_at_the_callers_page(emu: Emulator) -> None:
    counts: dict[int, int] = {}
    for score in emu.musescore.scores.values():
        if score.sharing == "public" and score.status == "ready":
            counts[score.user_id] = counts.get(score.user_id, 0) + 1
    owner = max(counts, key=lambda user_id: counts[user_id])
    expected = expected_search(emu.musescore, user_id=owner)
    assert len(expected) > 20
    name = emu.musescore.users[owner].name
    async with Client(musescore=_public_config(emu)) as kit:
        ids = [s.id async for s in kit.musescore.users.scores(name, page=1)]
    assert ids == expected[20:]


# -- odd numbers ---------------------------------------------------------------------------------


async def test_fractional_metadata_and_one_odd_score_never_fail_a_page(emu: Emulator) -> None:
    expected = expected_search(emu.musescore)[:20]
    fractional, odd, nameless = expected[0], expected[1], expected[2]
    emu.musescore.score_quirks[fractional] = {
        "metadata": {"duration": "474.5", "pages": "2.0", "measures": 101.6},
        "view_count": "14.2",
    }
    emu.musescore.score_quirks[odd] = {
        "metadata": {"parts": "piano"},
        "dates": {"posted": "yesterday"},
        "comment_count": "many",
    }
    emu.musescore.score_quirks[nameless] = {"id": "not-a-number"}
    async with Client(musescore=_public_config(emu)) as kit:
        page = await kit.musescore.scores.search(limit=20).collect()
        got = {score.id: score for score in page}
        assert [s.id for s in page] == [i for i in expected if i != nameless]
        meta = got[fractional].metadata
        assert meta is not None
        assert (meta.duration, meta.pages, meta.measures) == (474.5, 2, 102)
        assert got[fractional].view_count == 14
        strange = got[odd]
        assert strange.metadata is not None and strange.metadata.parts == ()
        assert strange.dates is not None and strange.dates.posted is None
        assert strange.comment_count is None and strange.title
        whole = await kit.musescore.scores.get(fractional)
        assert whole.metadata is not None and whole.metadata.duration == 474.5


# -- upload --------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["score", "id", "score_id", "uri", "permalink"])
async def test_upload_answer_that_only_names_the_score_is_completed(
    emu: Emulator, answer: str
) -> None:
    emu.musescore.upload_answer = answer
    policy = PollPolicy(initial=0.05, max_interval=0.1, timeout=10)
    async with Client(musescore=musescore_config(emu), poll=policy) as kit:
        job = await kit.musescore.scores.upload(_mscz(), "My étude", license="cc-by")
        assert int(job.id) in emu.musescore.scores
        assert job.result is not None and job.result.title == "My étude"
        assert job.result.status == "processing" and job.result.license == "cc-by"
        emu.clock.advance(60)
        score = await job.wait(timeout=10)
        assert score.status == "ready" and score.secret == emu.musescore.scores[score.id].secret
    assert emu.musescore.uploads == 1
    reads = [p for p in _paths(emu) if p == f"/score/{job.id}.json"]
    assert len(reads) == (1 if answer == "score" else 2)  # the wait's poll (+ the completion)


async def test_upload_private_is_private(emu: Emulator) -> None:
    policy = PollPolicy(initial=0.05, max_interval=0.1, timeout=10)
    async with Client(musescore=musescore_config(emu), poll=policy) as kit:
        job = await kit.musescore.scores.upload(_mscz(), "Hidden", private=True)
        emu.clock.advance(60)
        score = await job.wait(timeout=10)
        assert score.sharing == "private"
        assert emu.musescore.scores[score.id].sharing == "private"
        mine = [s.id async for s in kit.musescore.scores.search(text="Hidden")]
        assert score.id in mine
    async with Client(musescore=_public_config(emu)) as public:
        assert score.id not in [s.id async for s in public.musescore.scores.search(text="Hidden")]
        with pytest.raises(errors.NotFoundError):
            await public.musescore.scores.get(score.id)
        assert score.secret is not None
        assert (await public.musescore.scores.get(score.id, score.secret)).title == "Hidden"


# -- secrets and private scores ------------------------------------------------------------------


async def test_secret_opens_a_private_score_get_time_and_space(emu: Emulator) -> None:
    private = next(
        s
        for s in emu.musescore.scores.values()
        if s.sharing == "private" and s.status == "ready" and s.user_id != 1
    )
    async with Client(musescore=_public_config(emu)) as kit:
        ms = kit.musescore.scores
        for call in (ms.get, ms.time, ms.space):
            with pytest.raises(errors.NotFoundError):
                await call(private.id)
            with pytest.raises(errors.NotFoundError):
                await call(private.id, "0" * len(private.secret))
        score = await ms.get(private.id, private.secret)
        assert (score.id, score.sharing, score.secret) == (private.id, "private", private.secret)
        events = await ms.time(private.id, private.secret)
        assert [e.elid for e in events] == list(range(private.metadata.measures))
        boxes = await ms.space(private.id, secret=private.secret, format="xml")
        assert len(boxes) == private.metadata.measures
    secrets = [r.query.get("secret") for r in emu.requests if r.provider == "musescore"]
    assert secrets.count(private.secret) == 3


async def test_an_authenticated_search_lists_the_users_private_scores(emu: Emulator) -> None:
    me_id = next(iter(emu.musescore.access_tokens.values())).user_id
    own_private = {
        s.id
        for s in emu.musescore.scores.values()
        if s.user_id == me_id and s.sharing == "private" and s.status == "ready"
    }
    assert own_private
    async with Client(musescore=musescore_config(emu)) as kit:
        signed = [s.id async for s in kit.musescore.scores.search()]
        mine = [s.id async for s in kit.musescore.users.scores(me_id)]
    async with Client(musescore=_public_config(emu)) as public:
        anonymous = [s.id async for s in public.musescore.scores.search()]
    assert signed == expected_search(emu.musescore, viewer_id=me_id)
    assert own_private <= set(signed) and own_private <= set(mine)
    assert not own_private & set(anonymous)
    assert anonymous == expected_search(emu.musescore)


# -- resolve and oEmbed --------------------------------------------------------------------------


async def test_resolve_follows_a_redirect_to_https_on_the_same_host(emu: Emulator) -> None:
    emu.musescore.redirect_scheme = "https"
    async with Client(musescore=musescore_config(emu)) as kit:
        score = (await kit.musescore.scores.search(limit=1).collect())[0]
        assert score.permalink is not None
        resolved = await kit.musescore.resolve(score.permalink)
        assert isinstance(resolved, Score) and resolved.id == score.id
        me = await kit.musescore.me()
        assert me.permalink is not None
        assert isinstance(await kit.musescore.resolve(me.permalink), User)
    redirects = [r for r in emu.requests if r.provider == "musescore" and r.path == "/resolve.json"]
    assert len(redirects) == 2


async def test_oembed_takes_mus_cr_short_links(emu: Emulator) -> None:
    async with Client(musescore=_public_config(emu)) as kit:
        score = (await kit.musescore.scores.search(limit=1).collect())[0]
        assert score.permalink is not None
        long = await kit.musescore.oembed(score.permalink)
        for short in (f"http://mus.cr/{score.id}", f"https://mus.cr/{score.id}"):
            assert await kit.musescore.oembed(short) == long
            as_xml = await kit.musescore.oembed(short, format="xml")
            assert attrs_without_html(as_xml) == attrs_without_html(long)
        resolved = await kit.musescore.resolve(f"http://mus.cr/{score.id}")
        assert isinstance(resolved, Score) and resolved.id == score.id
        with pytest.raises(errors.NotFoundError):
            await kit.musescore.oembed("http://mus.cr/999999999")
