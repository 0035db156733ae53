"""Who is calling. The email becomes `created_by`.

Identity comes only from what was verified (docs/security.md, "Identity: from what was verified";
review C1). Per TRAINYARD_AUTH:

- `google` (trainyard-api, behind Cloud Run IAM). Cloud Run checks the caller's Google ID token
  (signature, expiry, an audience of this service) and run.invoker before the request reaches us,
  then hands the token on with its signature replaced by "SIGNATURE_REMOVED_BY_GOOGLE"
  (https://cloud.google.com/run/docs/troubleshooting#signature-removed), so we read its claims.
  Which header it checked matters: when `X-Serverless-Authorization` is present Cloud Run checks THAT
  one and passes `Authorization` through untouched
  (https://cloud.google.com/run/docs/authenticating/service-to-service#acquire-token, confirmed by
  Cloud Run's PM in GoogleCloudPlatform/cloud-run-proxy#25). So with that header the identity is its
  token's, and an `Authorization` beside it must name the same principal or the request is refused:
  otherwise any invoker could put an unsigned token for an admin in `Authorization`. (Cloud Run
  replaces the signature of the X-Serverless-Authorization token too, as observed in
  na0fu3y/ochakai#740; nothing here depends on it: IAM-checked claims are read, never re-verified.)
- `firebase` (trainyard-web, public: allUsers, no IAM check). Nothing Cloud Run forwards there was
  checked, in either header, so only a Firebase ID token verified here in full (signature included)
  identifies the caller, and a request carrying `X-Serverless-Authorization` is refused.
- `local` (the local stack): the developer token from settings; `X-Serverless-Authorization` is
  refused (nothing in front of the local API checks it).

On top of the token's own checks, the person: a verified email of TRAINYARD_ALLOWED_DOMAIN, and for
a Google user token the `hd` claim equal to it (Google sets `hd` only for accounts managed by a
Google Workspace / Cloud Identity organisation; a consumer Google account registered with an org
address carries none: https://developers.google.com/identity/openid-connect/openid-connect#an-id-tokens-payload).
Service accounts carry neither domain nor `hd`: those of this deployment's project are accepted.
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
AUTHORIZATION, SERVERLESS = "Authorization", "X-Serverless-Authorization"
SERVICE_ACCOUNT_SUFFIX = ".gserviceaccount.com"


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def _bearer(headers: Mapping[str, str], name: str = AUTHORIZATION) -> Optional[str]:
    """The bearer token of header `name`; None when the header is absent or not `Bearer <token>`."""
    scheme, _, token = (_header(headers, name) or "").partition(" ")
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
                        now: Optional[float] = None, project: str = "") -> str:
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
    email = check_person(claims, allowed_domain, now)
    if is_service_account(email):
        return check_service_account(email, project)
    hosted = str(claims.get("hd") or "").lower()
    if hosted != allowed_domain.lower():
        raise Unauthenticated(
            f"{email} is not an account managed by {allowed_domain} (its token's hd claim is {hosted or 'absent'}): "
            f"sign in with your organisation's Google account")
    return email


def is_service_account(email: str) -> bool:
    return email.lower().endswith(SERVICE_ACCOUNT_SUFFIX)


def check_service_account(email: str, project: str) -> str:
    """A service account of this deployment's project (`name@<project>.iam.gserviceaccount.com`):
    the CLI in CI, the rehearsal, scripts. Only Google tokens (IAM-checked) name one."""
    if not project or not email.lower().endswith(f"@{project.lower()}.iam{SERVICE_ACCOUNT_SUFFIX}"):
        raise Unauthenticated(f"{email} is not a service account of project {project!r}: only this "
                              f"deployment's own service accounts may call the API")
    return email


def check_person(claims: dict, allowed_domain: str, now: Optional[float] = None) -> str:
    """Any token's lifetime and person: not expired, a verified email of the organisation's domain
    (a service account's address is checked by check_service_account instead)."""
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
    if not isinstance(email, str) or not email or claims.get("email_verified") not in (True, "true"):
        raise Unauthenticated("the token carries no verified email")
    if is_service_account(email):
        return email
    if not allowed_domain:
        # An empty domain used to admit any Google account (review M3); the cloud refuses to start
        # without one (Settings.check_api_identity), and here nobody is admitted without it.
        raise Unauthenticated("this API has no TRAINYARD_ALLOWED_DOMAIN configured: every person is refused")
    if not email.lower().endswith("@" + allowed_domain.lower()):
        raise Unauthenticated(f"{email} is not in {allowed_domain}")
    return email


def _firebase_person(token: str, settings, claims_of: Callable[[str], dict]) -> dict:
    claims = firebase_identity.firebase_claims(token, settings, claims_of)
    email = check_person(claims, settings.allowed_domain)
    if is_service_account(email):
        raise Unauthenticated(f"{email}: a Firebase ID token never identifies a service account")
    return claims


def _identify(token: str, settings, claims_of: Callable[[str], dict]) -> tuple[str, dict]:
    """The email and claims of a token in the IAM-checked header (google mode)."""
    claims = claims_of(token)
    if firebase_identity.is_firebase_issuer(claims):
        # The Training page's Firebase ID token: verified here, signature included (it never passed IAM).
        claims = _firebase_person(token, settings, claims_of)
        return claims["email"], claims
    return check_google_claims(claims, audiences(settings.auth_audience), settings.allowed_domain,
                               project=settings.project), claims


def _same_principal(checked: dict, other: dict) -> bool:
    """Whether the two tokens name one principal: the same email, and the same subject when both come
    from one issuer (a Google account's `sub` and its Firebase uid differ by design)."""
    if str(checked.get("email") or "").lower() != str(other.get("email") or "").lower():
        return False
    same_issuer = firebase_identity.is_firebase_issuer(checked) == firebase_identity.is_firebase_issuer(other)
    if same_issuer and checked.get("sub") and other.get("sub"):
        return checked["sub"] == other["sub"]
    return True


def _behind_iam(headers: Mapping[str, str], settings, claims_of: Callable[[str], dict]) -> str:
    checked = _header(headers, SERVERLESS)
    if checked is None:
        token = _bearer(headers)
        if not token:
            raise Unauthenticated(f"send an identity: {AUTHORIZATION}: Bearer <token>")
        return _identify(token, settings, claims_of)[0]
    token = _bearer(headers, SERVERLESS)
    if not token:
        raise Unauthenticated(f"{SERVERLESS} is not `Bearer <ID token>`")
    email, claims = _identify(token, settings, claims_of)
    passed = _header(headers, AUTHORIZATION)
    if passed is None:
        return email
    # Cloud Run did not look at Authorization: it identifies nobody. It may only repeat the checked identity.
    other = _bearer(headers)
    if not other:
        raise Unauthenticated(f"{AUTHORIZATION} holds something other than a bearer ID token while "
                              f"{SERVERLESS} is present: send one identity")
    try:
        other_claims = claims_of(other)
        if firebase_identity.is_firebase_issuer(other_claims):
            other_claims = _firebase_person(other, settings, claims_of)
    except Unauthenticated as exc:
        raise Unauthenticated(f"{AUTHORIZATION} holds a token that is refused ({exc}) while {SERVERLESS} "
                              f"is present: send one identity") from None
    if not _same_principal(claims, other_claims):
        raise Unauthenticated(f"{SERVERLESS} (checked by Cloud Run IAM) names {email} but {AUTHORIZATION} names "
                              f"{other_claims.get('email')!r}: the two headers must name one principal")
    return email


def authenticate(headers: Mapping[str, str], settings, claims_of: Callable[[str], dict] = token_claims) -> str:
    mode = settings.auth_mode
    if mode not in ("google", "firebase", "local"):
        raise Unauthenticated(f"unknown TRAINYARD_AUTH mode {mode!r}")
    if mode == "google":
        return _behind_iam(headers, settings, claims_of)
    if _header(headers, SERVERLESS) is not None:
        where = "the local stack" if mode == "local" else "this public entrance (no Cloud Run IAM check ran)"
        raise Unauthenticated(f"{SERVERLESS} identifies nobody on {where}: send {AUTHORIZATION} only")
    token = _bearer(headers)
    if not token:
        raise Unauthenticated(f"send an identity: {AUTHORIZATION}: Bearer <token>")
    if mode == "local":
        # bytes: compare_digest refuses non-ASCII str with a TypeError (a 500), and a token may hold anything
        if not settings.dev_token or not hmac.compare_digest(token.encode(), settings.dev_token.encode()):
            raise Unauthenticated("the bearer token is not this stack's developer token")
        return settings.dev_identity
    # firebase: the public web entrance; only a token verified here in full is accepted.
    if not firebase_identity.is_firebase_issuer(claims_of(token)):
        raise Unauthenticated("this entrance accepts Firebase ID tokens only (sign in on the Training page); "
                              "the CLI calls the API's IAM-protected URL")
    return _firebase_person(token, settings, claims_of)["email"]
