"""Identity from what was verified (docs/security.md, "Identity: from what was verified"; review C1, M3 and
the LOW dev-token finding), replayed through the HTTP app as an attacker would send the headers.

Behind Cloud Run IAM (TRAINYARD_AUTH=google) a request reaches the container only when the header IAM
checked holds a genuine Google ID token: `X-Serverless-Authorization` when present, else `Authorization`
(https://cloud.google.com/run/docs/authenticating/service-to-service#acquire-token). The other header is
passed through untouched and may hold anything. The tables below send every combination a request that
reached the container can carry, per mode."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import replace

import pytest

from shared.adapters.artifact_store import ArtifactStore
from shared.adapters.dead_letters import DeadLetters
from shared.http import firebase_identity
from shared.http.app import Dependencies, create_app
from shared.settings import Settings, get_settings
from tests.fakes import FakePublisher, FakePubSub, InMemoryRepository
from tests.identity_tokens import GCLOUD_CLIENT_ID, delivered_token
from tests.unit.test_firebase_identity import OTHER_KEY_PEM, PROJECT, Published, emulator_token, firebase_token

DOMAIN = "example.com"
API_URL = "https://trainyard-api-123.europe-west4.run.app"
DEV_TOKEN = "dev-token"
ADMIN, ANA, MALLORY = f"ops@{DOMAIN}", f"ana@{DOMAIN}", f"mallory@{DOMAIN}"
SERVERLESS = "X-Serverless-Authorization"


def unsigned(email: str, **claims) -> str:
    """The review's P1 forgery: alg none, a made-up signature, Google's claims for anyone."""
    now = int(time.time())
    body = {"iss": "https://accounts.google.com", "aud": GCLOUD_CLIENT_ID, "sub": "9" * 21, "email": email,
            "email_verified": True, "hd": DOMAIN, "iat": now, "exp": now + 3600, **claims}

    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(body)}.forged"


def google(email: str = ANA, **claims) -> str:
    """A genuine Google ID token as Cloud Run IAM delivers it (signature removed)."""
    return delivered_token(email, **{"sub": str(abs(hash(email)))[:21], **claims})


@pytest.fixture(autouse=True)
def published(monkeypatch):
    monkeypatch.setattr(firebase_identity, "_KEYS", firebase_identity.PublicKeys(fetch=Published()))


def client(mode: str, **changes):
    settings = replace(get_settings(), **{
        "auth_mode": mode, "allowed_domain": DOMAIN, "project": PROJECT, "dev_token": DEV_TOKEN, "dev_identity": ANA,
        "auth_audience": f"{API_URL},{GCLOUD_CLIENT_ID}", "admins": frozenset({ADMIN}),
        "firebase": {**get_settings().firebase, "projectId": PROJECT}, "firebase_auth_emulator_host": "", **changes})
    pubsub = FakePubSub()
    return create_app(Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=ArtifactStore(),
                                   settings=settings, dead_letters=DeadLetters("p", pubsub, pubsub))).test_client()


def call(app, path="/api/training-runs", **headers):
    sent = {("X-Serverless-Authorization" if name == "serverless" else "Authorization"): value
            for name, value in headers.items() if value is not None}
    return app.get(path, headers=sent)


def bearer(token):
    return None if token is None else f"Bearer {token}"


# ----------------------------------------------------------------------------- C1: the review's probe P1


def test_p1_a_forged_admin_in_authorization_beside_the_attackers_own_checked_token_is_refused():
    """Mallory holds run.invoker: IAM checks her real token in X-Serverless-Authorization and passes an
    unsigned admin token in Authorization through. Before: 200 on the admin route, as ops@."""
    response = call(client("google"), "/api/admin/dead-letters/run-submit",
                    serverless=bearer(google(MALLORY)), authorization=bearer(unsigned(ADMIN)))
    assert response.status_code == 401, response.get_json()
    message = response.get_json()["message"]
    assert SERVERLESS in message and "Authorization" in message and MALLORY in message


def test_the_checked_identity_is_the_one_acted_as():
    app = client("google")
    refused = call(app, "/api/admin/dead-letters/run-submit", serverless=bearer(google(MALLORY)))
    assert refused.status_code == 403 and MALLORY in refused.get_json()["message"]
    admitted = call(app, "/api/admin/dead-letters/run-submit", serverless=bearer(google(ADMIN)))
    assert admitted.status_code == 200, admitted.get_json()


# ----------------------------------------------------------------------------- every combination, per mode

ABSENT = None
NON_JWT = "Bearer not-a-jwt"
BASIC = "Basic YWRtaW46YWRtaW4="

# google mode: (X-Serverless-Authorization, Authorization) -> expected status. The checked header
# always holds a genuine token when present (IAM refused the request otherwise).
GOOGLE_CASES = [
    ("neither header", ABSENT, ABSENT, 401),
    ("Authorization alone, checked by IAM", ABSENT, bearer(google(ANA)), 200),
    ("X-Serverless alone", bearer(google(ANA)), ABSENT, 200),
    ("both, the same token", bearer(google(ANA)), bearer(google(ANA)), 200),
    ("both, same principal, Firebase token in Authorization", bearer(google(ANA)), bearer(firebase_token(ANA)), 200),
    ("both, Authorization forged for an admin", bearer(google(ANA)), bearer(unsigned(ADMIN)), 401),
    ("both, Authorization another genuine principal", bearer(google(ANA)), bearer(google(MALLORY)), 401),
    ("both, same email but another subject", bearer(google(ANA)), bearer(google(ANA, sub="1" * 21)), 401),
    ("both, Authorization a forged Firebase token of the same person", bearer(google(ANA)),
     bearer(firebase_token(ANA, key=OTHER_KEY_PEM)), 401),
    ("both, Authorization a Firebase token of another person", bearer(google(ANA)), bearer(firebase_token(MALLORY)), 401),
    ("both, Authorization not a JWT", bearer(google(ANA)), NON_JWT, 401),
    ("both, Authorization another scheme", bearer(google(ANA)), BASIC, 401),
    ("both, Authorization empty", bearer(google(ANA)), "", 401),
    ("X-Serverless not a bearer token", BASIC, bearer(google(ANA)), 401),
    ("X-Serverless not a JWT", NON_JWT, ABSENT, 401),
]


@pytest.mark.parametrize("case, serverless, authorization, status", GOOGLE_CASES, ids=[c[0] for c in GOOGLE_CASES])
def test_behind_iam_every_header_combination(case, serverless, authorization, status):
    response = call(client("google"), serverless=serverless, authorization=authorization)
    assert response.status_code == status, (case, response.get_json())


FIREBASE_CASES = [
    ("a verified Firebase token", ABSENT, bearer(firebase_token(ANA)), 200),
    ("neither header", ABSENT, ABSENT, 401),
    ("X-Serverless alone (a Google token no IAM checked)", bearer(google(ANA)), ABSENT, 401),
    ("X-Serverless forged for an admin beside a real Firebase token", bearer(unsigned(ADMIN)),
     bearer(firebase_token(ANA)), 401),
    ("X-Serverless the same person's Google token beside a real Firebase token", bearer(google(ANA)),
     bearer(firebase_token(ANA)), 401),
    ("X-Serverless a Firebase token", bearer(firebase_token(ANA)), ABSENT, 401),
    ("X-Serverless not a JWT", NON_JWT, bearer(firebase_token(ANA)), 401),
    ("a Google token in Authorization", ABSENT, bearer(google(ANA)), 401),
    ("a forged Google token for an admin", ABSENT, bearer(unsigned(ADMIN)), 401),
    ("a Firebase token signed by another key", ABSENT, bearer(firebase_token(ADMIN, key=OTHER_KEY_PEM)), 401),
    ("an unsigned (emulator-style) Firebase token", ABSENT, bearer(emulator_token(ADMIN)), 401),
    ("a Firebase token from a password sign-in", ABSENT,
     bearer(firebase_token(ANA, firebase={"sign_in_provider": "password"})), 401),
    ("a Firebase token from a custom token", ABSENT,
     bearer(firebase_token(ADMIN, firebase={"sign_in_provider": "custom"})), 401),
    ("Authorization not a JWT", ABSENT, NON_JWT, 401),
]


@pytest.mark.parametrize("case, serverless, authorization, status", FIREBASE_CASES,
                         ids=[c[0] for c in FIREBASE_CASES])
def test_on_the_public_entrance_every_header_combination(case, serverless, authorization, status):
    response = call(client("firebase"), serverless=serverless, authorization=authorization)
    assert response.status_code == status, (case, response.get_json())
    if serverless is not None:
        assert SERVERLESS in response.get_json()["message"]


LOCAL_CASES = [
    ("the developer token", ABSENT, bearer(DEV_TOKEN), 200),
    ("neither header", ABSENT, ABSENT, 401),
    ("X-Serverless alone", bearer(google(ADMIN)), ABSENT, 401),
    ("X-Serverless beside the developer token", bearer(google(ADMIN)), bearer(DEV_TOKEN), 401),
    ("X-Serverless holding the developer token", bearer(DEV_TOKEN), ABSENT, 401),
    ("a Google token", ABSENT, bearer(google(ANA)), 401),
    ("a forged admin token", ABSENT, bearer(unsigned(ADMIN)), 401),
    ("a wrong token", ABSENT, bearer("wrong"), 401),
    ("a non-ASCII token (was a TypeError, 500)", ABSENT, "Bearer d\u00e9v-token", 401),
]


@pytest.mark.parametrize("case, serverless, authorization, status", LOCAL_CASES, ids=[c[0] for c in LOCAL_CASES])
def test_on_the_local_stack_every_header_combination(case, serverless, authorization, status):
    app = client("local")
    sent = {k: v for k, v in (("Authorization", authorization), (SERVERLESS, serverless)) if v is not None}
    response = app.get("/api/training-runs", headers=sent)
    assert response.status_code == status, (case, response.get_json())


# ----------------------------------------------------------------------------- who counts as a person (M3)


@pytest.mark.parametrize("token, says", [
    (google("anyone@gmail.com", hd=None), "not in example.com"),
    (google(ANA, hd=None), "hd claim is absent"),               # a consumer account registered with an org address
    (google(ANA, hd="other.org"), "hd claim is other.org"),
    (google("ci@other-project.iam.gserviceaccount.com"), "not a service account of project"),
    (google("robot@gcp-sa-pubsub.iam.gserviceaccount.com"), "not a service account of project"),
])
def test_only_managed_accounts_of_the_domain_and_this_projects_service_accounts(token, says):
    response = call(client("google"), authorization=bearer(token))
    assert response.status_code == 401 and says in response.get_json()["message"], response.get_json()


def test_a_service_account_of_the_project_is_a_caller():
    robot = f"ci@{PROJECT}.iam.gserviceaccount.com"
    response = call(client("google"), serverless=bearer(google(robot, aud=API_URL)))
    assert response.status_code == 200, response.get_json()


def test_a_firebase_token_never_names_a_service_account():
    robot = f"ci@{PROJECT}.iam.gserviceaccount.com"
    assert call(client("firebase"), authorization=bearer(firebase_token(robot))).status_code == 401


@pytest.mark.parametrize("mode", ["google", "firebase"])
def test_an_empty_domain_admits_nobody(mode):
    """M3 probe: anyone@gmail.com was accepted with TRAINYARD_ALLOWED_DOMAIN empty."""
    token = firebase_token("anyone@gmail.com") if mode == "firebase" else google("anyone@gmail.com", hd=None)
    response = call(client(mode, allowed_domain=""), authorization=bearer(token))
    assert response.status_code == 401 and "TRAINYARD_ALLOWED_DOMAIN" in response.get_json()["message"]


# ----------------------------------------------------------------------------- what the cloud refuses to run with


CLOUD = {"TRAINYARD_PIPELINE_BACKEND": "vertex", "GOOGLE_CLOUD_PROJECT": "p", "TRAINYARD_ALLOWED_DOMAIN": DOMAIN}


@pytest.mark.parametrize("env, says", [
    ({"TRAINYARD_AUTH": "local"}, "TRAINYARD_AUTH=local"),
    ({"TRAINYARD_DEV_TOKEN": "guessable"}, "TRAINYARD_DEV_TOKEN"),
    ({"TRAINYARD_AUTH": "none"}, "TRAINYARD_AUTH must be one of"),
])
def test_the_cloud_refuses_the_local_developer_identity(env, says):
    with pytest.raises(ValueError, match=says):
        Settings.from_environ({**CLOUD, **env})
    if "none" not in env.values():
        Settings.from_environ(env)  # the local twin keeps it


def test_the_cloud_api_refuses_to_start_without_an_organisation_domain():
    # The cloud API also needs its page-token key (shared/http/app.py): given, so only the domain is missing.
    api = {**CLOUD, "TRAINYARD_CURSOR_KEY": "k" * 32}
    settings = Settings.from_environ({**api, "TRAINYARD_ALLOWED_DOMAIN": ""})  # other processes do not read it
    deps = Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=ArtifactStore(), settings=settings)
    with pytest.raises(ValueError, match="TRAINYARD_ALLOWED_DOMAIN is empty"):
        create_app(deps)
    create_app(replace(deps, settings=Settings.from_environ(api)))
