"""HTTP client of the API: URL and identity from settings (environment)."""
from __future__ import annotations

import subprocess
from typing import Any, Optional

import requests

from shared.domain.triggers import CLI_USER_AGENT
from shared.settings import LOCAL_DEV_TOKEN, read

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        self.status = status
        self.body = body
        errors = body.get("errors") or []
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or body.get("message") or str(body)
        super().__init__(f"HTTP {status}: {detail}")


def identity_token(run=subprocess.run) -> str:
    """TRAINYARD_TOKEN, else the local stack's developer token, else gcloud's ID token for the API.

    A service account's token is minted for the API's URL (`--audiences`, one of the audiences the
    API admits); gcloud refuses `--audiences` for a user account, whose token carries gcloud's own
    client id as its audience (also admitted: terraform's api_user_audiences)."""
    if read("TRAINYARD_TOKEN"):
        return read("TRAINYARD_TOKEN")
    url = read("TRAINYARD_API_URL") or DEFAULT_URL
    if "127.0.0.1" in url or "localhost" in url:
        return read("TRAINYARD_DEV_TOKEN") or LOCAL_DEV_TOKEN
    try:
        minted = run(["gcloud", "auth", "print-identity-token", f"--audiences={url.rstrip('/')}"],
                     capture_output=True, text=True)
    except FileNotFoundError:
        raise ApiError(0, {"message": "gcloud is not installed: install the Google Cloud CLI or set TRAINYARD_TOKEN"}) from None
    if minted.returncode == 0 and minted.stdout.strip():
        return minted.stdout.strip()
    if "Invalid account type" not in (minted.stderr or ""):
        raise ApiError(0, {"message": f"gcloud auth print-identity-token failed: {(minted.stderr or '').strip()}"})
    user = run(["gcloud", "auth", "print-identity-token"], capture_output=True, text=True)
    if user.returncode != 0 or not user.stdout.strip():
        raise ApiError(0, {"message": f"gcloud auth print-identity-token failed: {(user.stderr or '').strip()}"})
    return user.stdout.strip()


class ApiClient:
    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout_s: float = 30):
        self.url = (url or read("TRAINYARD_API_URL") or DEFAULT_URL).rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = CLI_USER_AGENT  # a run made here says so (its trigger's `via`)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: Any = None, **params) -> dict:
        if "Authorization" not in self.session.headers:  # minted on the first call, inside the CLI's error handling
            self.session.headers["Authorization"] = f"Bearer {identity_token()}"
        response = self.session.request(method, self.url + path, json=body, timeout=self.timeout_s,
                                        params={k: v for k, v in params.items() if v is not None})
        try:
            data = response.json()
        except ValueError:
            data = {"message": response.text[:500]}
        if response.status_code >= 400:
            raise ApiError(response.status_code, data)
        return data

    def get(self, path: str, **params) -> dict:
        return self.call("GET", path, **params)

    def post(self, path: str, body: Any = None, **params) -> dict:
        return self.call("POST", path, body, **params)

    def delete(self, path: str) -> dict:
        return self.call("DELETE", path)
