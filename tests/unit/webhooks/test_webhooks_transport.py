"""The dispatcher's HTTP client over TLS on loopback: it connects to the address the
guard vetted, but SNI and the certificate check use the callback URL's host name."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bioverify.webhooks._transport import GuardedHttp
from bioverify.webhooks.egress import EgressGuard, EgressRefused
from bioverify.webhooks.sending import endpoint_of

pytestmark = pytest.mark.anyio


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(
    subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
    )
    if subject == issuer:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


@dataclass
class TlsReceiver:
    port: int
    client_context: ssl.SSLContext
    seen_sni: list[str | None]


def _handler(targets: list[str]) -> type[BaseHTTPRequestHandler]:
    """A receiver answering every POST 204, recording each request's raw target."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            targets.append(self.path)
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[TlsReceiver]:
    """A loopback HTTPS server whose certificate names only ``receiver.test``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Test CA", "Test CA", ca_key, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("receiver.test", "Test CA", key, ca_key)
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    seen_sni: list[str | None] = []
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "key.pem")
    server_context.sni_callback = lambda _sock, name, _ctx: seen_sni.append(name)

    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler([]))
    server.daemon_threads = True
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    client_context = ssl.create_default_context(
        cadata=ca.public_bytes(serialization.Encoding.PEM).decode()
    )
    yield TlsReceiver(server.server_address[1], client_context, seen_sni)
    server.shutdown()
    server.server_close()


def _guarded(receiver: TlsReceiver) -> GuardedHttp:
    # Every name "resolves" to loopback; the guard allows it (development setting).
    guard = EgressGuard(allow_private=True, resolver=lambda _host, _port: ["127.0.0.1"])
    return GuardedHttp(
        guard, max_connections=4, per_endpoint=2, ssl_context=receiver.client_context
    )


async def test_tls_checks_the_urls_host_name_at_the_vetted_address(
    tls_receiver: TlsReceiver,
) -> None:
    http = _guarded(tls_receiver)
    try:
        url = f"https://receiver.test:{tls_receiver.port}/hook"
        async with http.post(url, b"{}", {"content-type": "application/json"}) as resp:
            assert resp.status == 204
    finally:
        await http.aclose()
    assert tls_receiver.seen_sni == ["receiver.test"]


async def test_a_certificate_for_another_name_is_refused(tls_receiver: TlsReceiver) -> None:
    http = _guarded(tls_receiver)
    try:
        # Same vetted address, same server: the name in the URL is not the certificate's.
        url = f"https://other.test:{tls_receiver.port}/hook"
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with http.post(url, b"{}", {}):
                pass
    finally:
        await http.aclose()
    assert tls_receiver.seen_sni == ["other.test"]


@pytest.fixture
def plain_receiver() -> Iterator[tuple[int, list[str]]]:
    """A loopback HTTP server recording each request's raw target."""
    targets: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(targets))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    yield server.server_address[1], targets
    server.shutdown()
    server.server_close()


async def test_the_callback_path_and_query_go_out_exactly_as_registered(
    plain_receiver: tuple[int, list[str]],
) -> None:
    port, targets = plain_receiver
    guard = EgressGuard(allow_private=True, resolver=lambda _host, _port: ["127.0.0.1"])
    http = GuardedHttp(guard, max_connections=4, per_endpoint=2)
    try:
        url = f"http://receiver.test:{port}/hooks/../tenant%7e1/%2Fx?sig=a%2Bb&next=%7e"
        async with http.post(url, b"{}", {}) as resp:
            assert resp.status == 204
    finally:
        await http.aclose()
    assert targets == ["/hooks/../tenant%7e1/%2Fx?sig=a%2Bb&next=%7e"]


async def test_a_name_server_that_never_answers_leaves_the_dispatchers_threads_free() -> None:
    """Lookups run on their own threads: a receiver whose names never resolve cannot
    take the threads the dispatcher's database work runs on (asyncio's default pool)."""
    release = threading.Event()

    def stuck(_host: str, _port: int) -> list[str]:
        release.wait(60)  # a name server that does not answer (bounded for the test)
        return ["127.0.0.1"]

    http = GuardedHttp(
        EgressGuard(allow_private=True, resolver=stuck), max_connections=64, per_endpoint=2
    )

    async def send(n: int) -> None:
        async with http.post(f"http://host{n}.test:9/hook", b"{}", {}):
            pass

    sends = [asyncio.create_task(send(n)) for n in range(32)]
    try:
        for _ in range(10):
            await asyncio.sleep(0)  # let every send start its lookup
        # Database work of the dispatcher (asyncio.to_thread) still runs at once.
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "recorded"), 10) == "recorded"
    finally:
        release.set()
        for task in sends:
            task.cancel()
        await asyncio.gather(*sends, return_exceptions=True)
        await http.aclose()


def test_default_ports_are_one_receiving_server() -> None:
    assert endpoint_of("https://Hooks.example/a") == endpoint_of("https://hooks.example:443/b")
    assert endpoint_of("http://hooks.example/a") == endpoint_of("http://hooks.example:80/a")
    assert endpoint_of("http://hooks.example/a") != endpoint_of("https://hooks.example/a")


def _no_lookup(host: str, _port: int) -> list[str]:
    raise AssertionError(f"{host} was looked up: a literal must never reach the resolver")


async def test_an_address_only_aiohttp_takes_for_one_is_refused() -> None:
    """aiohttp connects to what it calls an address without a resolver; a form the
    standard parser does not read is refused, never looked up on the event loop."""
    http = GuardedHttp(
        EgressGuard(allow_private=True, resolver=_no_lookup),
        max_connections=4,
        per_endpoint=2,
    )
    try:
        with pytest.raises(EgressRefused):
            async with http.post("http://1.2.3.4.5/hook", b"{}", {}):
                pass
    finally:
        await http.aclose()
