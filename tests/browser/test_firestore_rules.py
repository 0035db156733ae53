"""terraform/firestore.rules on the official Firestore emulator: an organisation user signed in with
a verified address reads what the dashboard listens to; nobody writes from a browser; everyone else
reads nothing. Requests carry the (unsigned) ID-token claims the emulator accepts, as the web SDK's
mockUserToken does."""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from scripts import firestore_rules
from scripts.stack import free_port

REPO = Path(__file__).resolve().parents[2]
PROJECT = "trainyard-rules"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not (shutil.which("gcloud") and shutil.which("java")),
                                 reason="the rules test needs the Google Cloud CLI Firestore emulator and Java 17")]


def rendered_rules(org_domain: str) -> str:
    return firestore_rules.render(org_domain)


def token(**claims) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    payload = {"iss": f"https://securetoken.google.com/{PROJECT}", "aud": PROJECT, "iat": now, "exp": now + 3600,
               "auth_time": now, "sub": claims.get("email", "anon"), "user_id": claims.get("email", "anon"),
               "firebase": {"sign_in_provider": "google.com", "identities": {}}, **claims}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    rules = tmp_path_factory.mktemp("rules") / "firestore.rules"
    rules.write_text(rendered_rules("example.com"))
    port = free_port()
    proc = subprocess.Popen(["gcloud", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}",
                             f"--rules={rules}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            requests.get(base, timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.3)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
        pytest.fail("the Firestore emulator did not start")
    yield f"{base}/v1/projects/{PROJECT}/databases/(default)/documents"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=20)


def call(method, url, bearer=None, body=None):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return requests.request(method, url, headers=headers, json=body, timeout=10)


def seed(documents: str, path: str):
    # "owner" is the emulator's admin credential (what the server client libraries use): rules do not apply.
    response = call("PATCH", f"{documents}/{path}", "owner", {"fields": {"name": {"stringValue": "x"}}})
    assert response.status_code == 200, response.text


READABLE = ["training_runs/r1", "training_runs/r1/history/a001-e00001", "training_schedules/s1", "experiments/e1",
            "datasets/d1", "feature_configs/f1", "model_configs/m1"]
MEMBER = token(email="alice@example.com", email_verified=True)


@pytest.fixture(scope="module")
def documents(emulator):
    for path in READABLE + ["counters/runs"]:
        seed(emulator, path)
    return emulator


@pytest.mark.parametrize("path", READABLE)
def test_an_organisation_user_reads_what_the_dashboard_listens_to(documents, path):
    assert call("GET", f"{documents}/{path}", MEMBER).status_code == 200


def test_an_organisation_user_lists_runs_with_a_query(documents):
    query = {"structuredQuery": {"from": [{"collectionId": "training_runs"}], "limit": 10}}
    response = call("POST", f"{documents}:runQuery", MEMBER, query)
    assert response.status_code == 200 and any("document" in row for row in response.json())


@pytest.mark.parametrize("path", READABLE + ["training_runs/new-one"])
def test_nobody_writes_from_a_browser(documents, path):
    body = {"fields": {"status": {"stringValue": "completed"}}}
    assert call("PATCH", f"{documents}/{path}", MEMBER, body).status_code == 403
    assert call("DELETE", f"{documents}/{path}", MEMBER).status_code == 403


@pytest.mark.parametrize("bearer", [None, token(email="mallory@gmail.com", email_verified=True),
                                    token(email="alice@example.com", email_verified=False),
                                    token(email="alice@example.com.evil.org", email_verified=True)],
                         ids=["signed-out", "other-domain", "unverified", "lookalike-domain"])
def test_anyone_else_reads_nothing(documents, bearer):
    for path in ("training_runs/r1", "experiments/e1", "training_schedules/s1"):
        assert call("GET", f"{documents}/{path}", bearer).status_code == 403


def test_counters_and_unlisted_collections_are_closed_even_to_members(documents):
    assert call("GET", f"{documents}/counters/runs", MEMBER).status_code == 403
