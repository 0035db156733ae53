"""Where webhook URLs and signing secrets are kept: the Secret Manager adapter through Google's own
SecretManagerServiceClient against the gRPC fake built from the official protos
(tests/protocol_fakes/secret_manager.py), and the local twin's 0600 file."""
from __future__ import annotations

import os
import stat

import grpc
import pytest

from shared.adapters.secret_store import LocalSecretFile, SecretManagerStore
from shared.errors import NotFound, TransientError
from tests.protocol_fakes.grpc_service import FakeServer

URL = "https://hooks.slack.com/services/T0/B0/credential"


@pytest.fixture
def secret_manager():
    pytest.importorskip("google.cloud.secretmanager_v1",
                        reason="google-cloud-secret-manager is not installed (requirements/api.txt, run_commands)")
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports.grpc import (
        SecretManagerServiceGrpcTransport)

    from tests.protocol_fakes.secret_manager import SecretManagerFake

    fake = SecretManagerFake()
    server = FakeServer().add(SecretManagerServiceGrpcTransport, fake).start()
    yield fake, server, SecretManagerStore("p1", emulator_host=server.address)
    server.stop()


def test_a_url_is_stored_once_with_its_labels_and_read_back(secret_manager):
    fake, server, store = secret_manager
    assert store.put("trainyard-webhook-tr-1-0", URL, {"trainyard": "webhook-url", "run": "tr-1"}) == \
        "trainyard-webhook-tr-1-0"
    assert store.put("trainyard-webhook-tr-1-0", URL, {"trainyard": "webhook-url", "run": "tr-1"})  # a retry
    name = "projects/p1/secrets/trainyard-webhook-tr-1-0"
    assert list(fake.secrets) == [name] and fake.versions[name] == [URL.encode()]  # one secret, one version
    assert dict(fake.secrets[name].labels) == {"trainyard": "webhook-url", "run": "tr-1"}
    assert SecretManagerStore("p1", emulator_host=server.address).get("trainyard-webhook-tr-1-0") == URL


def test_a_secret_created_but_never_given_its_value_gets_it_on_the_retry(secret_manager):
    fake, server, store = secret_manager
    server.fail("add_secret_version", grpc.StatusCode.INTERNAL)
    with pytest.raises(TransientError):
        store.put("trainyard-webhook-tr-2-0", URL, {"run": "tr-2"})
    store.put("trainyard-webhook-tr-2-0", URL, {"run": "tr-2"})
    assert fake.versions["projects/p1/secrets/trainyard-webhook-tr-2-0"] == [URL.encode()]


def test_a_missing_secret_is_not_found_and_an_outage_is_transient(secret_manager):
    _, server, store = secret_manager
    with pytest.raises(NotFound):
        store.get("nobody")
    server.fail("access_secret_version", grpc.StatusCode.INTERNAL)  # UNAVAILABLE the client retries itself
    with pytest.raises(TransientError):
        store.get("nobody")


def test_a_corrupted_payload_is_refused(secret_manager):
    fake, _, store = secret_manager
    store.put("hook", URL, {})
    fake.corrupt = True
    with pytest.raises(TransientError, match="CRC32C"):
        store.get("hook")


def test_the_local_file_is_its_owners_only(tmp_path):
    store = LocalSecretFile(str(tmp_path / "secrets" / "webhook-urls.json"))
    store.put("trainyard-webhook-tr-1-0", URL, {"run": "tr-1"})
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert LocalSecretFile(str(store.path)).get("trainyard-webhook-tr-1-0") == URL
    with pytest.raises(NotFound):
        store.get("other")
