"""Who is calling. The email becomes `created_by`.

In the cloud (TRAINYARD_AUTH=google) the API runs behind Cloud Run IAM: no request reaches it unless
Google checked the caller's ID token (signature, expiry, and that its audience is this service) and
the caller holds run.invoker (Terraform never grants allUsers). Cloud Run then hands the token on
with its signature removed ("SIGNATURE_REMOVED_BY_GOOGLE",
https://cloud.google.com/run/docs/troubleshooting#signature-removed), so the API cannot, and need
not, verify it again. It reads the token's claims and applies what IAM does not know: a Google
issuer, an audience of this deployment (TRAINYARD_AUTH_AUDIENCE, a comma list Terraform sets: the
API's URLs, for service accounts that mint tokens for it, and the Google Cloud CLI's client id,
which is the audience of every user token `gcloud auth print-identity-token` prints), not expired,
a verified email, and the organisation's domain. Review finding A3.

On the local stack (TRAINYARD_AUTH=local): a configured developer identity, presented as a bearer
token from settings.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from typing import Callable, Mapping, Optional

from shared.http import firebase_identity
from shared.errors import Unauthenticated

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
CLOCK_SKEW_S = 60  # as google.auth's own verification allows for clocks that disagree a little


def _bearer(headers: Mapping[str, str]) -> Optional[str]:
    value = headers.get("Authorization") or headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def audiences(setting: str) -> frozenset[str]:
    """TRAINYARD_AUTH_AUDIENCE: comma-separated; blanks ignored."""
    return frozenset(a.strip() for a in (setting or "").split(",") if a.strip())


def token_claims(token: str) -> dict:
    """The claims of a JWT (header.payload.signature) as Cloud Run delivers it: the payload is read,
    the signature (removed by Google) is not."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated("the bearer token is not a JWT (header.payload.signature)")
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise Unauthenticated(f"the bearer token's claims cannot be read: {exc}") from exc
    if not isinstance(claims, dict):
        raise Unauthenticated("the bearer token's claims are not a JSON object")
    return claims


def check_google_claims(claims: dict, allowed_audiences: frozenset[str], allowed_domain: str,
                        now: Optional[float] = None) -> str:
    """The caller's email, or Unauthenticated saying which check refused it."""
    if not allowed_audiences:
        raise Unauthenticated("this API has no TRAINYARD_AUTH_AUDIENCE configured: every token is refused")
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise Unauthenticated(f"the token was not issued by Google (iss={claims.get('iss')!r})")
    aud = claims.get("aud")
    token_audiences = set(aud) if isinstance(aud, list) else {aud}
    if not token_audiences & allowed_audiences:
        raise Unauthenticated(f"the token is for another audience ({aud!r}); mint one for this API "
                              f"(gcloud auth print-identity-token --audiences=<API URL> for a service account)")
    return check_person(claims, allowed_domain, now)


def check_person(claims: dict, allowed_domain: str, now: Optional[float] = None) -> str:
    """Any token's lifetime and person: not expired, a verified email of the organisation's domain."""
    now = time.time() if now is None else now
    try:
        expires = float(claims["exp"])
    except (KeyError, TypeError, ValueError):
        raise Unauthenticated("the token has no expiry") from None
    if now > expires + CLOCK_SKEW_S:
        raise Unauthenticated("the token has expired: get a new one (gcloud auth print-identity-token)")
    if float(claims.get("iat", 0) or 0) > now + CLOCK_SKEW_S:
        raise Unauthenticated("the token was issued in the future")
    email = claims.get("email")
    if not email or claims.get("email_verified") not in (True, "true"):
        raise Unauthenticated("the token carries no verified email")
    if allowed_domain and not email.lower().endswith("@" + allowed_domain.lower()):
        raise Unauthenticated(f"{email} is not in {allowed_domain}")
    return email


def authenticate(headers: Mapping[str, str], settings, claims_of: Callable[[str], dict] = token_claims) -> str:
    token = _bearer(headers)
    if not token:
        raise Unauthenticated("send an identity: Authorization: Bearer <token>")
    if settings.auth_mode == "local":
        if not settings.dev_token or not hmac.compare_digest(token, settings.dev_token):
            raise Unauthenticated("the bearer token is not this stack's developer token")
        return settings.dev_identity
    if settings.auth_mode not in ("google", "firebase"):
        raise Unauthenticated(f"unknown TRAINYARD_AUTH mode {settings.auth_mode!r}")
    claims = claims_of(token)
    if firebase_identity.is_firebase_issuer(claims):
        # The Training page's Firebase ID token: verified here, signature included (it never passed IAM).
        return check_person(firebase_identity.firebase_claims(token, settings, claims_of), settings.allowed_domain)
    if settings.auth_mode == "firebase":
        # The public web entrance: no IAM checked anything, so only a token verified here is accepted.
        raise Unauthenticated("this entrance accepts Firebase ID tokens only (sign in on the Training page); "
                              "the CLI calls the API's IAM-protected URL")
    return check_google_claims(claims, audiences(settings.auth_audience), settings.allowed_domain)
