"""Secret Manager's SecretManagerService over its real gRPC protocol (served by FakeServer from the official
secretmanager_v1 transport), keeping secrets and versions and enforcing the documented rules
(https://cloud.google.com/secret-manager/docs/reference/rpc/google.cloud.secretmanager.v1):
- CreateSecret: `secret_id` "can contain uppercase and lowercase letters, numerals, and the hyphen (-) and
  underscore (_) characters", at most 255; ALREADY_EXISTS for a taken id; a replication policy is required;
  label keys "must start with a lowercase letter", keys and values "lowercase letters, numeric
  characters, underscores, and dashes", at most 63 characters;
- AddSecretVersion: the payload "must be no larger than 64KiB"; NOT_FOUND for an unknown secret;
- GetSecretVersion / AccessSecretVersion: `projects/*/secrets/*/versions/*`, where "latest" is an alias of
  the most recently created version; NOT_FOUND when there is none; the payload carries its CRC32C.

What a test plays: `fail(method, code)` on the FakeServer, `corrupt = True`, and reads `secrets` / `versions`."""
from __future__ import annotations

import re
import threading

import google_crc32c
import grpc
from google.cloud import secretmanager_v1

SECRET_NAME = re.compile(r"projects/([^/]+)/secrets/([A-Za-z0-9_-]{1,255})")
VERSION_NAME = re.compile(r"(projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255})/versions/(latest|[0-9]+)")
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
MAX_PAYLOAD = 64 * 1024


class SecretManagerFake:
    def __init__(self):
        self.secrets: dict[str, secretmanager_v1.Secret] = {}
        self.versions: dict[str, list[bytes]] = {}  # secret name -> payloads, version n at index n-1
        self.lock = threading.Lock()
        self.corrupt = False  # answer a payload whose CRC32C does not match, as a damaged transfer would

    def create_secret(self, request, context):
        name = f"{request.parent}/secrets/{request.secret_id}"
        if not SECRET_NAME.fullmatch(name):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"secret_id {request.secret_id!r} is not a valid id")
        if not ("automatic" in request.secret.replication or "user_managed" in request.secret.replication):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "secret.replication is required")
        for key, value in request.secret.labels.items():
            if not LABEL_KEY.fullmatch(key) or not LABEL_VALUE.fullmatch(value):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"label {key}={value} is not a valid label")
        with self.lock:
            if name in self.secrets:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            secret = secretmanager_v1.Secret(name=name, replication=request.secret.replication,
                                             labels=dict(request.secret.labels))
            self.secrets[name], self.versions[name] = secret, []
        return secret

    def add_secret_version(self, request, context):
        if len(request.payload.data) > MAX_PAYLOAD:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "payload is larger than 64KiB")
        with self.lock:
            if request.parent not in self.secrets:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.parent}] not found.")
            self.versions[request.parent].append(bytes(request.payload.data))
            number = len(self.versions[request.parent])
        return secretmanager_v1.SecretVersion(name=f"{request.parent}/versions/{number}",
                                              state=secretmanager_v1.SecretVersion.State.ENABLED)

    def _version(self, name: str, context) -> tuple[str, bytes]:
        match = VERSION_NAME.fullmatch(name)
        if not match:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name!r} is not projects/*/secrets/*/versions/*")
        secret, version = match.groups()
        with self.lock:
            payloads = self.versions.get(secret)
            if not payloads:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
            number = len(payloads) if version == "latest" else int(version)
            if not 1 <= number <= len(payloads):
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
            return f"{secret}/versions/{number}", payloads[number - 1]

    def get_secret_version(self, request, context):
        name, _ = self._version(request.name, context)
        return secretmanager_v1.SecretVersion(name=name, state=secretmanager_v1.SecretVersion.State.ENABLED)

    def access_secret_version(self, request, context):
        name, data = self._version(request.name, context)
        crc = google_crc32c.Checksum(data)
        return secretmanager_v1.AccessSecretVersionResponse(
            name=name, payload={"data": data, "data_crc32c": int.from_bytes(crc.digest(), "big") + self.corrupt})
