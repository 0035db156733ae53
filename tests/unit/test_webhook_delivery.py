"""The webhook sender's connection: it goes to the address that was checked (the name is not resolved
again), while TLS still names the webhook's host (SNI) and checks the certificate against it. Served by
a loopback HTTPS receiver with a certificate for hooks.test from a CA made here."""
from __future__ import annotations

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from shared.adapters.notify_targets import DeliveryError, DeliveryRefused, WebhookSender


def _tls_files(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer, key, signer, ca, names=()):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trainyard test CA")])
    ca = cert(ca_name, ca_name, ca_key, ca_key, True)
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.test")]), ca_name, key, ca_key, False,
                ["hooks.test"])
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(tmp_path / "ca.pem"), str(tmp_path / "leaf.pem")


class Receiver(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802
        type(self).seen.append((self.headers["Host"], self.path, self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def https_receiver(tmp_path):
    ca, leaf = _tls_files(tmp_path)
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf)
    names = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    Receiver.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"port": server.server_port, "ca": ca, "sni": names}
    server.shutdown()
    server.server_close()


def sender(receiver, resolved):
    asked = []

    def resolve(host, port):
        asked.append(host)
        return resolved

    # loopback is where the test receiver is; the allowance admits loopback and nothing else
    return WebhookSender(allow_loopback=True, resolve=resolve, verify=receiver["ca"], timeout_s=5), asked


def test_the_connection_goes_to_the_checked_address_with_the_hosts_name_and_certificate(https_receiver):
    send, asked = sender(https_receiver, ["127.0.0.1"])
    send.send(f"https://hooks.test:{https_receiver['port']}/services/T/x?a=1", {"text": "hi"})
    assert asked == ["hooks.test"]  # resolved once, by the sender, then pinned
    host, path, body = Receiver.seen[0]
    assert host == f"hooks.test:{https_receiver['port']}" and path == "/services/T/x?a=1" and b'"hi"' in body
    assert https_receiver["sni"] == ["hooks.test"]


def test_a_certificate_for_another_name_is_still_refused(https_receiver):
    send, _ = sender(https_receiver, ["127.0.0.1"])
    with pytest.raises(DeliveryError) as failed:
        send.send(f"https://other.test:{https_receiver['port']}/x", {"text": "hi"})
    assert "SSLError" in str(failed.value) and Receiver.seen == []


def test_an_address_refused_at_send_time_is_never_connected_to(https_receiver):
    send, _ = sender(https_receiver, ["127.0.0.1", "169.254.169.254"])
    with pytest.raises(DeliveryRefused):
        send.send(f"https://hooks.test:{https_receiver['port']}/x", {"text": "hi"})
    assert Receiver.seen == []


@pytest.mark.parametrize("address,refused", [
    ("93.184.216.34", False), ("2606:2800:220:1:248:1893:25c8:1946", False), ("8.8.8.8", False),
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.31.255.255", True), ("192.168.0.1", True),
    ("100.100.100.200", True), ("169.254.169.254", True), ("169.254.1.1", True), ("0.0.0.0", True),
    ("255.255.255.255", True), ("224.0.0.251", True), ("::", True), ("::1", True), ("fe80::1%eth0", True),
    ("fd00:ec2::254", True), ("fc00::1", True), ("ff02::1", True), ("::ffff:10.0.0.1", True),
    ("2002:0a00:0001::1", True),  # 6to4 carrying 10.0.0.1
    ("192.0.2.1", True),  # documentation range: not globally reachable
])
def test_which_addresses_a_webhook_may_reach(address, refused):
    from shared.domain.webhook_addresses import address_problem

    assert bool(address_problem(address)) is refused, address_problem(address)


def test_the_local_receivers_allowance_admits_loopback_and_nothing_else():
    from shared.domain.webhook_addresses import address_problem, url_problem

    assert address_problem("127.0.0.1", allow_loopback=True) is None
    assert address_problem("::1", allow_loopback=True) is None
    for other in ("10.0.0.5", "169.254.169.254", "192.168.1.1"):
        assert address_problem(other, allow_loopback=True)
    assert url_problem("http://127.0.0.1:9000/hook", allow_loopback=True) is None
    assert url_problem("http://127.0.0.1:9000/hook") == "must be an https:// URL"
    assert url_problem("https://metadata.google.internal/", allow_loopback=True)
