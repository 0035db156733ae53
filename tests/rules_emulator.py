"""A Firestore emulator enforcing terraform/firestore.rules as Terraform renders them, and the
(unsigned) ID tokens it accepts — what the web SDK's mockUserToken sends. Used by the rules tests
(tests/security/test_firestore_rules.py) to replay what a browser would ask."""
from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from scripts import firestore_rules
from scripts.stack import emulator_environment, free_port

PROJECT = "trainyard-rules"


def token(**claims) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    payload = {"iss": f"https://securetoken.google.com/{PROJECT}", "aud": PROJECT, "iat": now, "exp": now + 3600,
               "auth_time": now, "sub": claims.get("email", "anon"), "user_id": claims.get("email", "anon"),
               "firebase": {"sign_in_provider": "google.com", "identities": {}}, **claims}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@contextlib.contextmanager
def emulator(workdir: Path, org_domain: str):
    """Yields the emulator's host:port; the rules are rendered for `org_domain`."""
    rules = firestore_rules.write(org_domain, workdir / "firestore.rules")
    port = free_port()
    proc = subprocess.Popen(["gcloud", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}",
                             f"--rules={rules}"], env=emulator_environment(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 90
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}", timeout=1)
                break
            except requests.RequestException:
                if time.time() > deadline:
                    raise RuntimeError("the Firestore emulator did not start") from None
                time.sleep(0.3)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def documents_url(host: str) -> str:
    return f"http://{host}/v1/projects/{PROJECT}/databases/(default)/documents"


def call(method: str, url: str, bearer: str | None = None, body: dict | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return requests.request(method, url, headers=headers, json=body, timeout=10)
