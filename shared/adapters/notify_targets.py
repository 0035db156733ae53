"""Where notifications go (adapters): a webhook over HTTPS to a public address, a Pub/Sub topic, and the
local twin's signing secrets (TRAINYARD_NOTIFY_SECRETS; in the cloud, shared/adapters/secret_store.py)."""
from __future__ import annotations

import json
import socket
import time
from typing import Callable, Optional
from urllib.parse import urlsplit, urlunsplit

from shared import log
from shared.errors import NotFound, TransientError
from shared.domain.notifications import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from shared.domain.webhook_addresses import address_problem, host_of, url_problem


class LocalSecrets:
    """TRAINYARD_NOTIFY_SECRETS: a JSON object {name: secret} (the local twin's Secret Manager)."""

    def __init__(self, raw: str):
        try:
            self.values = json.loads(raw) if raw else {}
        except ValueError:
            raise ValueError("TRAINYARD_NOTIFY_SECRETS must be a JSON object {\"name\": \"secret\"}") from None

    def get(self, name: str) -> str:
        if name not in self.values:
            raise NotFound(f"signing secret {name!r} (not in TRAINYARD_NOTIFY_SECRETS)")
        return str(self.values[name])


class DeliveryError(Exception):
    """A target refused or could not be reached; the message says which host and why (never the URL, whose
    path may be the credential, nor the receiver's answer, which it chose)."""


class DeliveryRefused(DeliveryError):
    """Sending again would not help: the target points where webhooks may not go, redirects, or names a
    signing secret it may not use."""


def _resolve(host: str, port: int) -> list[str]:
    return list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


def _pinned_adapter(host: str):
    """requests' HTTPAdapter whose TLS names `host` (SNI) and checks the certificate against it, while the
    connection goes to the address in the URL, the one that was checked, so nothing resolves the name
    again (urllib3's HTTPSConnectionPool takes server_hostname and assert_hostname for this)."""
    from requests.adapters import HTTPAdapter

    class Pinned(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs.update(server_hostname=host, assert_hostname=host)
            super().init_poolmanager(*args, **kwargs)

    return Pinned(max_retries=0)


class WebhookSender:
    """POSTs to a webhook at the address its host resolves to now, once that address is checked
    (shared/domain/webhook_addresses.py: a name that resolved elsewhere when the run was created is judged
    again, against DNS rebinding). No redirects; the answer's body is never read."""

    def __init__(self, timeout_s: float = 10.0, allow_loopback: bool = False, resolve: Callable = _resolve,
                 verify=True):
        self.timeout_s, self.allow_loopback, self.resolve, self.verify = timeout_s, allow_loopback, resolve, verify

    def _address(self, url: str) -> tuple[str, str]:
        """(the URL to connect to, with the checked address in place of the host; the Host header)."""
        parts = urlsplit(url)
        shown = host_of(url)
        problem = url_problem(url, self.allow_loopback)
        if problem:
            raise DeliveryRefused(f"{shown}: refused: {problem}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.resolve(parts.hostname, port)
        except OSError:
            raise DeliveryError(f"{shown}: the name does not resolve") from None
        refused = [a for a in addresses if address_problem(a, self.allow_loopback)]
        if refused or not addresses:  # every address is judged: the client would pick any of them
            log.warning("webhook refused at send time", host=shown, addresses=addresses,
                        why=[address_problem(a, self.allow_loopback) for a in refused])
            raise DeliveryRefused(f"{shown}: refused: the host resolves to an address webhooks may not reach")
        address = addresses[0]
        netloc = f"[{address}]" if ":" in address else address
        return urlunsplit((parts.scheme, f"{netloc}:{port}", parts.path or "/", parts.query, "")), shown

    def send(self, url: str, payload: dict, secret: Optional[str] = None) -> None:
        import requests

        target, shown = self._address(url)
        body = json.dumps(payload, default=str).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "trainyard-notifier", "Host": shown}
        if secret is not None:
            stamp = str(int(time.time()))
            headers.update({TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(secret, stamp, body)})
        with requests.Session() as session:
            session.trust_env = False  # an environment proxy would resolve the name again, unchecked
            session.mount("https://", _pinned_adapter(urlsplit(url).hostname))
            try:
                response = session.post(target, data=body, headers=headers, timeout=self.timeout_s,
                                        allow_redirects=False, verify=self.verify, stream=True)
            except requests.RequestException as exc:
                raise DeliveryError(f"{shown}: {type(exc).__name__}") from None
            response.close()  # unread: a receiver's answer is never stored or shown
        if 300 <= response.status_code < 400:
            raise DeliveryRefused(f"{shown}: HTTP {response.status_code}: a redirect, which is not followed")
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"{shown}: HTTP {response.status_code}")


class TopicSender:
    def __init__(self, publisher):
        self.publisher = publisher

    def send(self, topic: str, payload: dict) -> None:
        try:
            self.publisher.publish(topic, payload["trainyard"], event=payload["trainyard"]["event"],
                                   run_id=str(payload["trainyard"]["run_id"]))
        except (TransientError, NotFound, PermissionError) as exc:
            raise DeliveryError(f"topic {topic}: {exc}") from None
