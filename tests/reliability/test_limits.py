"""Resource limits: oversized JSON bodies are refused, TLS is verified unless turned off."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from imuzekit import Client, RetryPolicy, errors
from imuzekit._http import Request
from imuzekit._transport import DEFAULT_MAX_BODY_BYTES
from imuzekit.emulator import Emulator


async def test_a_json_body_over_the_limit_is_a_parse_error() -> None:
    async with Emulator(render_seconds=0.05) as emu:
        account = next(iter(emu.mureka.accounts))
        emu.mureka.add_feeds(account, 20)
        async with emu.client(max_body_bytes=2_000, retry=RetryPolicy.none()) as kit:
            await kit.imuze.login()  # a small answer passes
            with pytest.raises(errors.ParseError, match="limit"):
                _ = [f async for f in kit.mureka.music.list(account=account)]
        async with emu.client(retry=RetryPolicy.none()) as kit:
            assert (
                len([f async for f in kit.mureka.music.list(account=account)]) >= 20
            )  # the default allows it
    assert DEFAULT_MAX_BODY_BYTES == 16 * 1024 * 1024


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def https_url(tmp_path: Path) -> AsyncIterator[str]:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def hello(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    yield f"https://127.0.0.1:{port}/hello"
    await runner.cleanup()


async def test_tls_is_verified_by_default(https_url: str) -> None:
    async with Client(retry=RetryPolicy.none()) as kit:
        assert kit.transport.verify_ssl is True
        with pytest.raises(errors.TransportError) as info:
            await kit.transport.send(Request("GET", https_url))
        assert not isinstance(info.value, errors.RequestTimeout)


async def test_only_verify_ssl_false_accepts_a_self_signed_certificate(https_url: str) -> None:
    async with Client(verify_ssl=False, retry=RetryPolicy.none()) as kit:
        response = await kit.transport.send(Request("GET", https_url))
    assert response.status == 200 and b"ok" in response.body
