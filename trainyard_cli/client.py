"""HTTP client of the API: URL and identity from settings (environment)."""
from __future__ import annotations

import subprocess
from typing import Any, Optional

import requests

from shared.settings import read

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_LOCAL_TOKEN = "trainyard-local-dev-token"


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        self.status = status
        self.body = body
        errors = body.get("errors") or []
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or body.get("message") or str(body)
        super().__init__(f"HTTP {status}: {detail}")


def identity_token() -> str:
    """TRAINYARD_TOKEN, else the local stack's developer token, else the gcloud user's ID token."""
    if read("TRAINYARD_TOKEN"):
        return read("TRAINYARD_TOKEN")
    url = read("TRAINYARD_API_URL") or DEFAULT_URL
    if "127.0.0.1" in url or "localhost" in url:
        return read("TRAINYARD_DEV_TOKEN") or DEFAULT_LOCAL_TOKEN
    return subprocess.run(["gcloud", "auth", "print-identity-token"], check=True, capture_output=True,
                          text=True).stdout.strip()


class ApiClient:
    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout_s: float = 30):
        self.url = (url or read("TRAINYARD_API_URL") or DEFAULT_URL).rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or identity_token()}"
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: Any = None, **params) -> dict:
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

    def post(self, path: str, body: Any = None) -> dict:
        return self.call("POST", path, body)

    def delete(self, path: str) -> dict:
        return self.call("DELETE", path)
