"""The page's Firebase ID tokens (shared/http/firebase_identity.py, review B2): verified in full, signature
included, against Firebase's published keys (here a key pair made for the test, published the way
Google publishes them: {kid: x509 PEM}); the Auth emulator's unsigned tokens only while it is configured."""
import base64
import datetime
import json
import time
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from shared.http import firebase_identity
from shared.errors import TransientError
from shared.http.app import Dependencies, create_app
from shared.settings import Settings, get_settings
from shared.adapters.artifact_store import ArtifactStore
from tests.fakes import FakePublisher, InMemoryRepository

PROJECT = "prod-proj"


def _key_and_cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem_key, cert.public_bytes(serialization.Encoding.PEM).decode()


KEY_PEM, CERT_PEM = _key_and_cert()
OTHER_KEY_PEM, _ = _key_and_cert()


def firebase_token(email="ana@example.com", *, key=KEY_PEM, kid="k1", project=PROJECT, **claims) -> str:
    now = int(time.time())
    payload = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "sub": "uid-ana",
               "user_id": "uid-ana", "auth_time": now, "iat": now, "exp": now + 3600, "email": email,
               "email_verified": True, "firebase": {"sign_in_provider": "google.com"}}
    payload.update(claims)
    return jwt.encode(crypt.RSASigner.from_string(key, kid), payload).decode()


def emulator_token(email="ana@example.com", **claims) -> str:
    """As the Firebase Auth emulator issues them: alg none, empty signature."""
    now = int(time.time())
    payload = {"iss": f"https://securetoken.google.com/{PROJECT}", "aud": PROJECT, "sub": "uid-ana", "iat": now,
               "exp": now + 3600, "email": email, "email_verified": True,
               "firebase": {"sign_in_provider": "google.com"}, **claims}

    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


class Published:
    def __init__(self):
        self.fetches = 0

    def __call__(self, url):
        assert url == firebase_identity.CERTS_URL
        self.fetches += 1
        return {"k1": CERT_PEM}, 3600.0


@pytest.fixture
def published(monkeypatch):
    fetch = Published()
    monkeypatch.setattr(firebase_identity, "_KEYS", firebase_identity.PublicKeys(fetch=fetch))
    return fetch


def _client(mode="firebase", **changes):
    settings = replace(get_settings(), auth_mode=mode, allowed_domain="example.com", auth_audience="https://api",
                       firebase={**get_settings().firebase, "projectId": PROJECT}, **changes)
    deps = Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=ArtifactStore(), settings=settings)
    return create_app(deps).test_client()


def _get(client, token):
    return client.get("/api/training-runs", headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("mode", ["firebase", "google"])
def test_a_signed_firebase_token_of_the_project_and_domain_is_accepted(published, mode):
    response = _get(_client(mode), firebase_token())
    assert response.status_code == 200, response.get_json()


def test_the_published_keys_are_fetched_once_per_their_max_age(published):
    client = _client()
    for _ in range(3):
        assert _get(client, firebase_token()).status_code == 200
    assert published.fetches == 1


@pytest.mark.parametrize("token, says", [
    (firebase_token(key=OTHER_KEY_PEM), "does not verify"),                       # forged signature
    (firebase_token(kid="unknown"), "does not verify"),                           # a key Firebase never published
    (firebase_token(project="other-proj"), "does not verify"),                    # audience: another project
    (firebase_token(iss="https://securetoken.google.com/other-proj"), "wrong issuer"),
    (firebase_token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200), "does not verify"),  # expired
    (firebase_token(sub=""), "no subject"),
    (firebase_token(email="eve@other.org"), "not in example.com"),
    (firebase_token(email_verified=False), "no verified email"),
    (emulator_token(), "does not verify"),                                        # unsigned, emulator not configured
])
def test_firebase_refusals_name_the_reason(published, token, says):
    response = _get(_client(), token)
    assert response.status_code == 401
    assert says in response.get_json()["message"], response.get_json()


def test_the_public_entrance_refuses_google_id_tokens_that_no_iam_checked(published):
    from tests.identity_tokens import delivered_token

    response = _get(_client("firebase"), delivered_token("ana@example.com", aud="https://api"))
    assert response.status_code == 401 and "Firebase ID tokens only" in response.get_json()["message"]
    assert _get(_client("google"), delivered_token("ana@example.com", aud="https://api")).status_code == 200


def test_auth_emulator_tokens_only_while_the_emulator_is_configured(published):
    client = _client(firebase_auth_emulator_host="127.0.0.1:9099")
    assert _get(client, emulator_token()).status_code == 200
    assert _get(client, emulator_token(email="eve@other.org")).status_code == 401
    assert _get(client, emulator_token(aud="other-proj")).status_code == 401
    refused = _get(client, firebase_token())  # a signed token is not what the emulator issues
    assert refused.status_code == 401 and "only its (unsigned) tokens" in refused.get_json()["message"]


def test_the_auth_emulator_is_refused_in_the_cloud():
    with pytest.raises(ValueError, match="FIREBASE_AUTH_EMULATOR_HOST"):
        Settings.from_environ({"TRAINYARD_PIPELINE_BACKEND": "vertex", "FIREBASE_AUTH_EMULATOR_HOST": "h:9099"})


def test_keys_that_cannot_be_fetched_refuse_with_a_reason_then_the_last_keys_are_kept():
    calls = []

    def flaky(url):
        calls.append(url)
        if len(calls) in (1, 3):
            raise OSError("network down")
        return {"k1": CERT_PEM}, 0.0  # max-age 0: fetched again next time
    keys = firebase_identity.PublicKeys(fetch=flaky)
    with pytest.raises(TransientError, match="cannot fetch Firebase's public keys"):  # the API answers 503
        keys.get()
    assert keys.get() == {"k1": CERT_PEM}
    assert keys.get() == {"k1": CERT_PEM}  # the fetch failed; the keys held are kept
