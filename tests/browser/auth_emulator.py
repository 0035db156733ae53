"""The Firebase Auth emulator (firebase-tools, installed into tools/firebase_emulators/ by
scripts/setup_browser_tests.sh) for the cloud sign-in path's browser tests. Node only: it downloads
nothing (the Firestore emulator stays gcloud's, which loads the rules)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import requests

from scripts.stack import free_port

REPO = Path(__file__).resolve().parents[2]
FIREBASE = REPO / "tools" / "firebase_emulators" / "node_modules" / ".bin" / "firebase"
MISSING = None if FIREBASE.exists() else (
    "the Firebase Auth emulator is missing: firebase-tools is not installed in tools/firebase_emulators/ "
    "(`make tools` runs scripts/setup_browser_tests.sh, which installs it with npm ci)")


class AuthEmulator:
    def __init__(self, project: str, workdir: Path):
        self.project, self.workdir = project, workdir
        self.port = free_port()
        self.proc = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> "AuthEmulator":
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Every port of its own (the hub and the logging socket too): other stacks run beside it.
        (self.workdir / "firebase.json").write_text(json.dumps({"emulators": {
            "auth": {"host": "127.0.0.1", "port": self.port}, "hub": {"host": "127.0.0.1", "port": free_port()},
            "logging": {"host": "127.0.0.1", "port": free_port()}, "ui": {"enabled": False}}}))
        log = (self.workdir / "auth-emulator.log").open("w")
        # HOME: firebase-tools keeps its config store there; a private one leaves the user's alone.
        self.proc = subprocess.Popen([str(FIREBASE), "emulators:start", "--only", "auth", "--project", self.project],
                                     cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "HOME": str(self.workdir)})
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Auth emulator exited: {(self.workdir / 'auth-emulator.log').read_text()}")
            try:
                requests.get(f"http://{self.host}/", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("the Auth emulator did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def google_user_token(self, email: str) -> str:
        """A Firebase ID token of a Google sign-in, as the page's popup gets it (the emulator accepts an
        unsigned Google id_token carrying the claims, as its own sign-in widget sends)."""
        claims = json.dumps({"sub": "google-" + email, "email": email, "email_verified": True})
        response = requests.post(
            f"http://{self.host}/identitytoolkit.googleapis.com/v1/accounts:signInWithIdp?key=fake-api-key",
            json={"requestUri": "http://localhost", "returnSecureToken": True,
                  "postBody": urlencode({"id_token": claims, "providerId": "google.com"})}, timeout=10)
        response.raise_for_status()
        return response.json()["idToken"]
