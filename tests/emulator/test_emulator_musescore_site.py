"""The emulated MuseScore.com: users and resolve, oEmbed, site pages, faults and counters.
Raw aiohttp on 127.0.0.1 only."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import aiohttp
import pytest

from imuzekit.emulator import Emulator
from imuzekit.emulator.musescore import DEMO_USER_ID

from ._musescore_helpers import (
    OEMBED_KEYS,
    USER_KEYS,
    Reply,
    auth,
    jsonp_payload,
    key,
    other_public_score,
    private_score,
    rest,
    send,
)

# --- users and resolve ----------------------------------------------------------------------


async def test_me_and_users(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    site = emu.urls["musescore_site"]
    reply = await send(anon, "GET", rest(emu, "/me.json"), signer=auth(emu))
    assert reply.json() == {
        "id": str(DEMO_USER_ID),
        "name": "demo",
        "permalink": f"{site}/demo",
        "uri": rest(emu, f"/user/{DEMO_USER_ID}"),
    }
    reply = await send(anon, "GET", rest(emu, "/me.json"), key=key(emu))
    assert reply.status == 401
    nicolas = await send(anon, "GET", rest(emu, "/user/5.json"), key=key(emu))
    assert list(nicolas.json()) == USER_KEYS
    assert nicolas.json() == {
        "id": "5",
        "name": "Nicolas",
        "permalink": f"{site}/nicolas",
        "uri": rest(emu, "/user/5"),
    }
    by_name = await send(anon, "GET", rest(emu, "/user/Nicolas.json"), key=key(emu))
    assert by_name.json() == nicolas.json()
    for missing in ("/user/6.json", "/user/nobody.json"):
        reply = await send(anon, "GET", rest(emu, missing), key=key(emu))
        assert (reply.status, reply.error()) == (404, "Not found")


async def test_resolve(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    score = ms.scores[other_public_score(ms)]
    owner = ms.users[score.user_id]
    site = emu.urls["musescore_site"]
    permalink = f"{site}/{owner.slug}/scores/{score.id}"
    reply = await send(
        anon, "GET", rest(emu, "/resolve.json"), key=key(emu), params={"url": permalink}
    )
    assert reply.status == 302
    location = reply.headers["Location"]
    assert location == rest(emu, f"/score/{score.id}.json?oauth_consumer_key={key(emu)}")
    async with anon.get(location) as response:
        assert (await response.json())["id"] == str(score.id)
    # aiohttp follows the redirect by itself when left to.
    async with anon.get(
        rest(emu, "/resolve.xml"), params={"url": permalink, "oauth_consumer_key": key(emu)}
    ) as response:
        assert response.status == 200
        assert ET.fromstring(await response.read()).findtext("id") == str(score.id)

    for url, target in [
        (f"{site}/{owner.slug}", f"/user/{owner.id}.json"),
        (f"http://musescore.com/{owner.slug}/scores/{score.id}", f"/score/{score.id}.json"),
        (f"https://www.musescore.com/{owner.name}/", f"/user/{owner.id}.json"),
        (f"http://musescore.com/score/{score.id}", f"/score/{score.id}.json"),
        (f"{site}/user/{owner.id}", f"/user/{owner.id}.json"),
    ]:
        reply = await send(
            anon, "GET", rest(emu, "/resolve.json"), key=key(emu), params={"url": url}
        )
        assert reply.status == 302, url
        assert urlsplit(reply.headers["Location"]).path.endswith(target)

    hidden = ms.scores[private_score(ms, demo=True)]
    hidden_url = f"{site}/demo/scores/{hidden.id}"
    for url in (
        f"{site}/someoneelse/scores/{score.id}",
        f"{site}/nobody",
        f"{site}/{owner.slug}/scores/999999999",
        "http://example.com/nicolas",
        "not a url",
        hidden_url,
    ):
        reply = await send(
            anon, "GET", rest(emu, "/resolve.json"), key=key(emu), params={"url": url}
        )
        assert (reply.status, reply.error()) == (404, "Not found"), url
    reply = await send(
        anon, "GET", rest(emu, "/resolve.json"), signer=auth(emu), params={"url": hidden_url}
    )
    assert reply.status == 302
    reply = await send(anon, "GET", rest(emu, "/resolve.json"), key=key(emu))
    assert (reply.status, reply.error()) == (400, "url: is required")


# --- oEmbed and site pages ------------------------------------------------------------------


async def test_oembed_json_has_the_reference_shape(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    score = ms.scores[other_public_score(ms)]
    owner = ms.users[score.user_id]
    site = emu.urls["musescore_site"]
    permalink = f"{site}/{owner.slug}/scores/{score.id}"
    async with anon.get(emu.urls["musescore_oembed"], params={"url": permalink}) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        body = await response.json()
    assert list(body) == OEMBED_KEYS
    assert body == {
        "type": "rich",
        "version": "1.0",
        "provider_name": "MuseScore.com",
        "width": "100%",
        "height": 394,
        "provider_url": site,
        "html": f'<iframe width="100%" height="394" src="{site}/node/{score.id}/embed" '
        f'frameborder="0"></iframe><span><a href="{permalink}">{html.escape(score.title)}</a> '
        f'by <a href="{site}/user/{owner.id}">{owner.name}</a></span> ',
        "title": score.title,
        "author_name": owner.name,
        "author_url": f"{site}/{owner.slug}",
        "original_url": permalink,
    }
    async with anon.get(f"{site}/node/{score.id}/embed") as response:
        assert response.status == 200 and "score.mp3" in await response.text()


async def test_oembed_xml_jsonp_and_sizes(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    score = ms.scores[other_public_score(ms)]
    url = f"http://musescore.com/{ms.users[score.user_id].slug}/scores/{score.id}"
    endpoint = emu.urls["musescore_oembed"]
    params = {"url": url, "format": "xml", "maxwidth": "640", "maxheight": "300"}
    async with anon.get(endpoint, params=params) as response:
        assert response.content_type == "application/xml"
        root = ET.fromstring(await response.read())
    assert root.tag == "oembed"
    assert [child.tag for child in root] == OEMBED_KEYS
    assert (root.findtext("width"), root.findtext("height")) == ("640", "300")
    assert 'width="640" height="300"' in (root.findtext("html") or "")
    for fmt in ("jsonp", "js"):
        params = {"url": url, "format": fmt, "callback": "MyCallback", "maxwidth": "500"}
        async with anon.get(endpoint, params=params) as response:
            assert response.content_type == "application/javascript"
            body = jsonp_payload(
                Reply(response.status, "", await response.read(), response.headers), "MyCallback"
            )
        assert (body["width"], body["height"]) == (500, 394)


async def test_oembed_errors(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    endpoint = emu.urls["musescore_oembed"]
    score = ms.scores[private_score(ms, demo=False)]
    private_url = f"{emu.urls['musescore_site']}/{ms.users[score.user_id].slug}/scores/{score.id}"
    public = ms.scores[other_public_score(ms)]
    public_url = f"http://musescore.com/score/{public.id}"
    cases = [
        ({"url": private_url}, 404),
        ({"url": "http://musescore.com/nicolas/scores/1"}, 404),
        ({"url": f"{emu.urls['musescore_site']}/nicolas"}, 404),  # users are not embeddable
        ({}, 400),
        ({"url": public_url, "format": "yaml"}, 501),
        ({"url": public_url, "maxwidth": "wide"}, 400),
        ({"url": public_url, "maxheight": "0"}, 400),
        ({"url": public_url, "format": "jsonp"}, 400),
    ]
    for params, status in cases:
        async with anon.get(endpoint, params=params) as response:
            assert response.status == status, params
            assert (await response.json())["code"] == status


async def test_site_pages(emu: Emulator, anon: aiohttp.ClientSession) -> None:
    ms = emu.musescore
    score = ms.scores[other_public_score(ms)]
    owner = ms.users[score.user_id]
    site = emu.urls["musescore_site"]
    for path in (f"/{owner.slug}/scores/{score.id}", f"/score/{score.id}"):
        async with anon.get(site + path) as response:
            assert (response.status, response.content_type) == (200, "text/html")
            page = await response.text()
            assert html.escape(score.title) in page and f"/{score.secret}/score.pdf" in page
    for path in (f"/{owner.slug}", f"/user/{owner.id}"):
        async with anon.get(site + path) as response:
            assert f"/scores/{score.id}" in await response.text()
    hidden = ms.scores[private_score(ms, demo=False)]
    for path in (
        f"/{ms.users[hidden.user_id].slug}/scores/{hidden.id}",
        f"/nobody/scores/{score.id}",
        "/nobody",
        "/user/3",
        "/node/1/embed",
    ):
        async with anon.get(site + path) as response:
            assert (response.status, response.content_type) == (404, "text/html"), path


# --- faults and counters --------------------------------------------------------------------


async def test_faults_and_counters_use_musescore_labels(
    emu: Emulator, anon: aiohttp.ClientSession
) -> None:
    ms = emu.musescore
    score = ms.scores[other_public_score(ms)]
    emu.faults.add("musescore", "GET /score*", status=503, retry_after=2)
    reply = await send(anon, "GET", rest(emu, "/score.json"), key=key(emu))
    assert reply.status == 503 and reply.headers["Retry-After"] == "2"
    assert (await send(anon, "GET", rest(emu, "/score.json"), key=key(emu))).status == 200

    emu.faults.add("musescore", "POST /oauth/request_token", status=500)
    reply = await send(
        anon,
        "POST",
        emu.urls["musescore_oauth"] + "/request_token",
        signer=auth(emu, user=False, redirect_uri="oob"),
    )
    assert reply.status == 500

    static = f"{emu.urls['musescore_static']}/{score.id}/{score.secret}/score.pdf"
    emu.faults.add("musescore", "GET /static/*/score.pdf", truncate=100)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with anon.get(static) as response:
            await response.read()
    emu.faults.add("musescore", "GET /site/oembed/*", status=429)
    async with anon.get(emu.urls["musescore_oembed"], params={"url": "x"}) as response:
        assert response.status == 429

    assert emu.count("musescore", "GET", "/score*") == 2
    assert emu.count("musescore", "POST", "/oauth/*") == 1
    assert emu.count("musescore", "GET", "/static/*") == 1
    assert emu.count("musescore", "GET", "/site/oembed/endpoint") == 1
    logged = [r for r in emu.requests if r.provider == "musescore"]
    assert [r.path for r in logged[:2]] == ["/score.json", "/score.json"]
    assert logged[-1].path == "/site/oembed/endpoint"
    assert logged[0].route == "/score{fmt}"
