"""Where notifications go (adapters): a webhook over HTTPS, a Pub/Sub topic, and the signing secrets —
Secret Manager in the cloud, the TRAINYARD_NOTIFY_SECRETS setting on the local stack."""
from __future__ import annotations

import base64
import json
import time
from typing import Optional, Protocol

from shared.errors import NotFound, TransientError
from shared.domain.notifications import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature


class Secrets(Protocol):
    def get(self, name: str) -> str:
        ...


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


class SecretManagerSecrets:
    """The latest version of a Secret Manager secret (REST: projects.secrets.versions.access,
    https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions/access),
    kept for a few minutes so a burst of notifications reads it once."""

    def __init__(self, project: str, rest, ttl_s: float = 300.0):
        self.project, self.rest, self.ttl_s = project, rest, ttl_s
        self._cache: dict[str, tuple[float, str]] = {}

    def get(self, name: str) -> str:
        cached = self._cache.get(name)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        url = f"https://secretmanager.googleapis.com/v1/projects/{self.project}/secrets/{name}/versions/latest:access"
        found = self.rest.call("GET", url, f"signing secret {name}")
        value = base64.b64decode(found["payload"]["data"]).decode()
        self._cache[name] = (time.monotonic(), value)
        return value


class DeliveryError(Exception):
    """A target refused or could not be reached; the message says which and why."""


class WebhookSender:
    def __init__(self, timeout_s: float = 10.0, session=None):
        import requests

        self.timeout_s = timeout_s
        self.session = session or requests.Session()

    def send(self, url: str, payload: dict, secret: Optional[str] = None) -> None:
        import requests

        body = json.dumps(payload, default=str).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "trainyard-notifier"}
        if secret is not None:
            stamp = str(int(time.time()))
            headers.update({TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(secret, stamp, body)})
        try:
            response = self.session.post(url, data=body, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise DeliveryError(f"{_host(url)}: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"{_host(url)}: HTTP {response.status_code} {response.text[:200]}")


class TopicSender:
    def __init__(self, publisher):
        self.publisher = publisher

    def send(self, topic: str, payload: dict) -> None:
        try:
            self.publisher.publish(topic, payload["trainyard"], event=payload["trainyard"]["event"],
                                   run_id=str(payload["trainyard"]["run_id"]))
        except (TransientError, NotFound, PermissionError) as exc:
            raise DeliveryError(f"topic {topic}: {exc}") from None


def _host(url: str) -> str:
    """A webhook's host only: its path may hold a token (Slack's does) and must not reach the logs."""
    return url.split("://", 1)[-1].split("/", 1)[0]
