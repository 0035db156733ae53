"""Who is calling. In the cloud: a verified Google identity (an OIDC ID token signed by Google, as
`gcloud auth print-identity-token` or a service account produces); the email becomes `created_by`.
On the local stack: a configured developer identity, presented as a bearer token from settings."""
from __future__ import annotations

import hmac
from typing import Mapping, Optional

from shared.errors import Unauthenticated

_google_request = None


def _bearer(headers: Mapping[str, str]) -> Optional[str]:
    value = headers.get("Authorization") or headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate(headers: Mapping[str, str], settings, verify=None) -> str:
    token = _bearer(headers)
    if not token:
        raise Unauthenticated("send an identity: Authorization: Bearer <token>")
    if settings.auth_mode == "local":
        if not settings.dev_token or not hmac.compare_digest(token, settings.dev_token):
            raise Unauthenticated("the bearer token is not this stack's developer token")
        return settings.dev_identity
    if settings.auth_mode != "google":
        raise Unauthenticated(f"unknown TRAINYARD_AUTH mode {settings.auth_mode!r}")
    claims = (verify or _verify_google_token)(token, settings.auth_audience or None)
    email = claims.get("email")
    if not email or not claims.get("email_verified", False):
        raise Unauthenticated("the token carries no verified email")
    if settings.allowed_domain and not email.lower().endswith("@" + settings.allowed_domain.lower()):
        raise Unauthenticated(f"{email} is not in {settings.allowed_domain}")
    return email


def _verify_google_token(token: str, audience: Optional[str]) -> dict:
    global _google_request
    from google.auth import exceptions
    from google.auth.transport import requests as google_requests
    from google.oauth2 import id_token

    if _google_request is None:
        _google_request = google_requests.Request()  # reused: Google's certs are fetched per process
    try:
        return id_token.verify_oauth2_token(token, _google_request, audience=audience)
    except (ValueError, exceptions.GoogleAuthError) as exc:
        raise Unauthenticated(f"invalid identity token: {exc}") from exc
