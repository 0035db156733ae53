"""Google REST APIs over google-auth's AuthorizedSession, with Application Default Credentials: what the light
API function uses where a GAPIC client would bring a heavy library (Vertex AI, Cloud Quotas, Monitoring)."""
from __future__ import annotations

from shared.adapters.lazy_client import LazyClient
from shared.errors import NotFound, TransientError


class RestClient:
    """One AuthorizedSession per process (Application Default Credentials), created lazily."""

    def __init__(self, session=None):
        self._session = LazyClient(self._make_session, session)

    @staticmethod
    def _make_session():
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        return AuthorizedSession(credentials)

    @property
    def session(self):
        return self._session.get()

    def call(self, method: str, url: str, what: str, **kwargs) -> dict:
        import requests

        try:
            response = self.session.request(method, url, timeout=30, **kwargs)
        except requests.RequestException as exc:
            raise TransientError(f"{what}: {exc}") from exc
        if response.status_code == 404:
            raise NotFound(what)
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"{what}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermissionError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()
