"""No request forgery through an agency's notify URL: refused when it is set, refused again at every send (a name
rebound to a private address after the check is caught), posted to the address checked with the name kept for
Host, SNI and the certificate, and never redirected. DNS is the test's own (tests/fake_dns.py)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from sqlalchemy import select

from services.alerts.models import CadNotice
from services.alerts.worker import Worker
from shared.clock import FakeClock
from shared.egress import Egress, Refused
from shared.tables import Agency
from tests.conftest import PUBLIC_URL
from tests.factories import PHONES, SECRET, dv_event, make_program, post_event
from tests.fake_cad import FakeCad
from tests.fake_dns import FakeDns
from tests.fake_twilio import FakeTwilio

PUBLIC = "93.184.215.14"  # a public address; nothing is ever sent to it


@pytest.fixture
async def cad() -> AsyncIterator[FakeCad]:
    fake = FakeCad(secret=SECRET)
    await fake.start()
    yield fake
    await fake.stop()


def production(dns: FakeDns) -> Egress:
    return Egress(dns.resolve, development=False)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("https://127.0.0.1:8443/events", "127.0.0.1 is a loopback address"),
        ("https://[::1]/events", "::1 is a loopback address"),
        ("https://[::ffff:127.0.0.1]/events", "is a loopback address"),  # IPv4 inside IPv6
        ("https://[64:ff9b::a9fe:a9fe]/events", "is a link-local address"),  # NAT64 to 169.254.169.254
        ("https://10.0.0.5/events", "10.0.0.5 is a private address"),
        ("https://192.168.1.20/events", "is a private address"),
        ("https://[fd00::1]/events", "is a private address"),
        ("https://100.64.0.1/events", "is a reserved address"),
        ("https://0.0.0.0/events", "is an unspecified address"),
        ("https://private.example/events", "private.example resolves to 10.1.2.3, a private address"),
        ("https://mixed.example/events", "mixed.example resolves to 192.168.0.9, a private address"),
        ("https://nowhere.example/events", "nowhere.example does not resolve"),
        ("http://cad.example/events", "is not https://"),
        ("ftp://cad.example/events", "is not an https:// URL"),
    ],
)
async def test_production_refuses_every_destination_that_is_not_public_https(dns: FakeDns, url: str, why: str) -> None:
    dns.set("cad.example", PUBLIC)
    dns.set("private.example", "10.1.2.3")
    dns.set("mixed.example", PUBLIC, "192.168.0.9")  # one bad address of several is enough

    with pytest.raises(Refused, match=re.escape(why)):
        await production(dns).check(url)


async def test_production_posts_to_a_public_https_destination(dns: FakeDns) -> None:
    dns.set("cad.example", PUBLIC)

    dns.set("dual.example", "2606:4700::1111", PUBLIC)

    assert await production(dns).check("https://cad.example/events") == [ipaddress.ip_address(PUBLIC)]
    assert await production(dns).check(f"https://{PUBLIC}:8443/events") == [ipaddress.ip_address(PUBLIC)]
    assert [str(a) for a in await production(dns).check("https://dual.example/")] == ["2606:4700::1111", PUBLIC]


async def test_development_allows_plain_http_to_this_machine_only(dns: FakeDns) -> None:
    development = Egress(dns.resolve, development=True)
    dns.set("localhost", "127.0.0.1", "::1")
    dns.set("cad.example", PUBLIC)

    assert [str(a) for a in await development.check("http://127.0.0.1:9000/events")] == ["127.0.0.1"]
    assert [str(a) for a in await development.check("http://localhost:9000/events")] == ["127.0.0.1", "::1"]
    with pytest.raises(Refused, match="is not https://"):
        await development.check("http://cad.example/events")
    with pytest.raises(Refused, match="link-local"):
        await development.check("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(Refused, match="private"):
        await development.check("http://10.0.0.5/events")


async def test_an_admin_setting_a_notify_url_that_is_not_public_is_told_why_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], dns: FakeDns
) -> None:
    dns.set("cad.metro.example", "10.20.30.40")
    agency = {"name": "Metro 911", "hotline": "+12025550100"}

    metadata = await client.put(
        "/v1/directory/agencies/metro",
        json={**agency, "notify_url": "http://169.254.169.254/latest/meta-data/iam/"},
        headers=admin,
    )
    internal = await client.put(
        "/v1/directory/agencies/metro", json={**agency, "notify_url": "https://cad.metro.example/e"}, headers=admin
    )

    assert metadata.status_code == 422
    assert "notify_url refused: 169.254.169.254 is a link-local address" in metadata.json()["detail"]
    assert internal.status_code == 422
    assert "cad.metro.example resolves to 10.20.30.40, a private address" in internal.json()["detail"]
    async with app.state.db.sessionmaker() as session:
        assert await session.scalar(select(Agency.id)) is None


async def notices(app: FastAPI) -> list[CadNotice]:
    async with app.state.db.sessionmaker() as session:
        return list(await session.scalars(select(CadNotice).order_by(CadNotice.id)))


async def accepted(client: httpx.AsyncClient, worker: Worker, fake_twilio: FakeTwilio) -> None:
    """A DV call alerted, and accepted by text: a notice for the agency's dispatchers is queued."""
    await post_event(client, dv_event())
    await worker.run_once()
    await fake_twilio.text_in(f"{PUBLIC_URL}/v1/twilio/sms", PHONES["luis"], "1")


async def test_a_name_rebound_to_a_private_address_after_the_check_is_refused_at_send_and_said_on_readyz(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    worker: Worker,
    fake_twilio: FakeTwilio,
    clock: FakeClock,
    dns: FakeDns,
    cad: FakeCad,
) -> None:
    port = cad.url.split(":")[2].split("/")[0]
    dns.set("cad.test", "127.0.0.1")  # this machine, which development allows
    await make_program(client, admin, notify_url=f"http://cad.test:{port}/callout-events")
    dns.set("cad.test", "169.254.169.254")  # rebound after the check: the cloud's metadata service

    await accepted(client, worker, fake_twilio)
    await worker.run_once()

    [notice] = await notices(app)
    why = "cad.test resolves to 169.254.169.254, a link-local address: Callout posts only to public addresses"
    assert cad.hosts == []  # nothing was sent anywhere
    assert notice.status == "pending" and notice.error == f"refused: {why}"
    assert notice.due_at == clock.now() + timedelta(minutes=5)  # looked at again later: the URL may be corrected
    assert (await client.get("/readyz")).json()["notify_refused"] == {"metro": why}

    dns.set("cad.test", "127.0.0.1")  # corrected
    clock.advance(timedelta(minutes=5))
    await worker.run_once()

    assert cad.types == ["callout.accepted"]
    assert cad.hosts == [f"cad.test:{port}"]  # the name the agency gave, though sent to the address checked
    assert (await client.get("/readyz")).json()["notify_refused"] == {}


async def test_a_notice_answered_with_a_redirect_is_not_followed(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    worker: Worker,
    fake_twilio: FakeTwilio,
    cad: FakeCad,
) -> None:
    await make_program(client, admin, notify_url=cad.url)
    cad.redirect_to = "http://169.254.169.254/latest/meta-data/"

    await accepted(client, worker, fake_twilio)
    await worker.run_once()

    [notice] = await notices(app)
    assert len(cad.hosts) == 1
    assert notice.status == "pending" and notice.error == "answered 307"


async def test_an_unreachable_address_of_several_is_passed_over_for_the_next(dns: FakeDns, cad: FakeCad) -> None:
    port = cad.url.split(":")[2].split("/")[0]
    dns.set("cad.test", "::1", "127.0.0.1")  # the fake CAD listens on the second alone

    async with Egress(dns.resolve, development=True).client(timeout=5) as http:
        answer = await http.post(f"http://cad.test:{port}/callout-events", content=b"{}")

    assert answer.status_code == 401  # reached (and its unsigned post refused by the CAD)
    assert cad.hosts == [f"cad.test:{port}"]


def certificate_for(name: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for `name` and its key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


async def test_https_goes_to_the_checked_address_with_the_name_for_sni_and_the_certificate(
    dns: FakeDns, tmp_path: Path
) -> None:
    certificate, key = certificate_for("cad.test")
    (tmp_path / "cert.pem").write_bytes(certificate)
    (tmp_path / "key.pem").write_bytes(key)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    sni: list[str | None] = []

    def server_name(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        sni.append(name)

    server_context.sni_callback = server_name
    hosts: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        hosts.append(request.host)
        return web.Response(status=204)

    application = web.Application()
    application.router.add_post("/events", receive)
    runner = web.AppRunner(application)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context).start()
    port = runner.addresses[0][1]
    dns.set("cad.test", "127.0.0.1")
    dns.set("other.test", "127.0.0.1")
    trusting = ssl.create_default_context(cadata=certificate.decode())
    try:
        async with Egress(dns.resolve, development=True).client(timeout=5, verify=trusting) as http:
            answer = await http.post(f"https://cad.test:{port}/events", content=b"{}")
            # The certificate is checked against the name, not the number, on a connection of the name's own.
            with pytest.raises(httpx.ConnectError, match="certificate"):
                await http.post(f"https://other.test:{port}/events", content=b"{}")
    finally:
        await runner.cleanup()

    assert answer.status_code == 204
    assert sni == ["cad.test", "other.test"] and hosts == [f"cad.test:{port}"]
