"""Secrets Trainyard keeps and reads: webhook URLs (whose path is often the credential, security review
M2) and webhook signing secrets. Secret Manager in the cloud (google-cloud-secret-manager,
secretmanager_v1); on the local twin, a JSON file readable by its owner only.

`put(name, value, labels)` is idempotent: a name is the secret's id, chosen deterministically by the
caller, so a repeated request stores one secret with one version rather than a new secret each time.
`get(name)` reads the latest version, kept for a few minutes so a burst of notifications reads it once.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Protocol

from shared.adapters.lazy_client import GapicAdapter, gapic_client
from shared.errors import NotFound, TransientError


class SecretStore(Protocol):
    def put(self, name: str, value: str, labels: dict[str, str]) -> str: ...

    def get(self, name: str) -> str: ...


def _transient(exc) -> bool:
    from google.api_core import exceptions

    return isinstance(exc, (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.InternalServerError,
                            exceptions.TooManyRequests, exceptions.Aborted))


def _crc32c(data: bytes) -> int:
    import google_crc32c

    return int.from_bytes(google_crc32c.Checksum(data).digest(), "big")


class SecretManagerStore(GapicAdapter):
    """One Secret Manager secret per name, replicated automatically
    (https://cloud.google.com/secret-manager/docs/reference/rpc/google.cloud.secretmanager.v1)."""

    def __init__(self, project: str, client=None, emulator_host: str = "", ttl_s: float = 300.0,
                 timeout_s: float = 10.0):
        super().__init__(client, emulator_host)
        self.project, self.ttl_s, self.timeout_s = project, ttl_s, timeout_s
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def _make_client(self):
        from google.cloud import secretmanager_v1

        return gapic_client(secretmanager_v1.SecretManagerServiceClient, self.emulator_host)

    def _secret(self, name: str) -> str:
        return f"projects/{self.project}/secrets/{name}"

    def put(self, name: str, value: str, labels: dict[str, str]) -> str:
        """Create the secret (ALREADY_EXISTS: a retry of the same request) and add the value as its first
        version unless it has one (GetSecretVersion needs versions.get only, not the value)."""
        from google.api_core import exceptions

        try:
            try:
                self.client.create_secret(request={
                    "parent": f"projects/{self.project}", "secret_id": name,
                    "secret": {"replication": {"automatic": {}}, "labels": labels}}, timeout=self.timeout_s)
            except exceptions.AlreadyExists:
                try:
                    self.client.get_secret_version(request={"name": f"{self._secret(name)}/versions/latest"},
                                                   timeout=self.timeout_s)
                    return name
                except exceptions.NotFound:
                    pass  # created, but its version was never added
            self.client.add_secret_version(request={"parent": self._secret(name),
                                                    "payload": {"data": value.encode()}}, timeout=self.timeout_s)
        except exceptions.GoogleAPICallError as exc:
            if _transient(exc):
                raise TransientError(f"Secret Manager: {type(exc).__name__}") from None
            raise
        return name

    def get(self, name: str) -> str:
        from google.api_core import exceptions

        with self._lock:
            cached = self._cache.get(name)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        try:
            found = self.client.access_secret_version(request={"name": f"{self._secret(name)}/versions/latest"},
                                                      timeout=self.timeout_s)
        except exceptions.NotFound:
            raise NotFound(f"secret {name!r} (or a version of it)") from None
        except exceptions.GoogleAPICallError as exc:
            if _transient(exc):
                raise TransientError(f"Secret Manager: {type(exc).__name__}") from None
            raise
        data = found.payload.data
        if found.payload.data_crc32c and found.payload.data_crc32c != _crc32c(data):  # as Google's samples check
            raise TransientError(f"Secret Manager: secret {name!r} arrived corrupted (CRC32C mismatch)")
        value = data.decode()
        with self._lock:
            self._cache[name] = (time.monotonic(), value)
        return value


class LocalSecretFile:
    """The local twin's Secret Manager: {name: value} in one JSON file, mode 0600 (its owner only)."""

    def __init__(self, path: str):
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def put(self, name: str, value: str, labels: dict[str, str]) -> str:
        with self._lock:
            values = self._read()
            values[name] = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(values, out)
            os.chmod(temporary, 0o600)  # O_CREAT's mode does not apply to a file left by a crash
            os.replace(temporary, self.path)
        return name

    def get(self, name: str) -> str:
        with self._lock:
            values = self._read()
        if name not in values:
            raise NotFound(f"secret {name!r} (not in {self.path.name})")
        return values[name]
