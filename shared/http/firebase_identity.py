"""Firebase ID tokens: how the Training page proves who is calling (docs/dashboard.md).

The page signs in with Google through Firebase Auth and sends `currentUser.getIdToken()` on every
API call: a token the Firebase SDK refreshes by itself (an hour each, for as long as the session
lasts), where the Google ID token of the sign-in credential expired after an hour (review B2).

Unlike the CLI's Google ID tokens, a Firebase token never passes Cloud Run IAM (its signer is not
one IAM trusts), so it reaches the API with its signature intact and the API verifies it fully, as
google.oauth2.id_token.verify_firebase_token does
(https://firebase.google.com/docs/auth/admin/verify-id-tokens#verify_id_tokens_using_a_third-party_jwt_library):
RS256 signature by one of the keys published at CERTS_URL, audience = the Firebase project, issuer
`https://securetoken.google.com/<project>`, a non-empty subject, not expired, not issued in the
future; then what the organisation asks of every person (a verified address of its domain).
The published keys are cached for as long as their Cache-Control says (google-auth re-fetches them
on every call).

The Firebase Auth emulator signs nothing (alg "none"); its tokens are accepted only while
FIREBASE_AUTH_EMULATOR_HOST is configured, which shared/settings.py refuses for a cloud deployment.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.request
from typing import Callable, Optional

from shared.errors import TransientError, Unauthenticated

CERTS_URL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
ISSUER_PREFIX = "https://securetoken.google.com/"
GOOGLE_PROVIDER = "google.com"


def is_firebase_issuer(claims: dict) -> bool:
    return str(claims.get("iss") or "").startswith(ISSUER_PREFIX)


class PublicKeys:
    """Firebase's signing certificates ({kid: PEM}), fetched once per their max-age."""

    def __init__(self, url: str = CERTS_URL, fetch: Optional[Callable[[str], tuple[dict, float]]] = None,
                 clock: Callable[[], float] = time.time):
        self._url, self._fetch, self._clock = url, fetch or _fetch_certs, clock
        self._certs: dict = {}
        self._until = 0.0
        self._lock = threading.Lock()

    def get(self) -> dict:
        with self._lock:
            if self._clock() >= self._until:
                try:
                    certs, max_age = self._fetch(self._url)
                except (OSError, ValueError) as exc:
                    if not self._certs:  # nobody can be verified now: 503, not a refusal of the caller
                        raise TransientError(f"cannot fetch Firebase's public keys ({exc})") from exc
                    return self._certs  # keep the keys we have rather than refuse everyone
                self._certs, self._until = certs, self._clock() + max_age
            return self._certs


def _fetch_certs(url: str) -> tuple[dict, float]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a fixed https URL
        match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
        return json.loads(response.read().decode("utf-8")), float(match.group(1)) if match else 3600.0


_KEYS = PublicKeys()


def verify_signature(token: str, project: str, keys: PublicKeys) -> dict:
    """The claims of a Firebase ID token whose RS256 signature and audience check out."""
    from google.auth import jwt

    try:
        # CLOCK_SKEW_S covers exp/iat here too; the claims are checked once more by check_claims.
        return jwt.decode(token, certs=keys.get(), audience=project, clock_skew_in_seconds=60)
    except ValueError as exc:  # google.auth.exceptions.InvalidValue/MalformedError are ValueErrors
        raise Unauthenticated(f"the Firebase ID token does not verify: {exc}") from exc


def emulator_claims(token: str, claims_of: Callable[[str], dict]) -> dict:
    """An Auth emulator token: unsigned by design, so only its claims are read."""
    header = token.split(".")[0]
    try:
        alg = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("alg")
    except (ValueError, UnicodeError):
        alg = None
    if alg != "none":
        raise Unauthenticated("the Firebase Auth emulator is configured: only its (unsigned) tokens are accepted")
    return claims_of(token)


def check_claims(claims: dict, project: str) -> None:
    """What verify_firebase_token checks beyond the signature."""
    if claims.get("aud") != project:
        raise Unauthenticated(f"the Firebase ID token is for another project ({claims.get('aud')!r}, not {project!r})")
    if claims.get("iss") != ISSUER_PREFIX + project:
        raise Unauthenticated(f"the Firebase ID token has the wrong issuer ({claims.get('iss')!r})")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Unauthenticated("the Firebase ID token has no subject")
    # The page signs in with Google only. Another provider (password, email link, anonymous, a custom
    # token minted with the Admin SDK) would let whoever controls it name any address. Firebase Auth sets
    # `firebase.sign_in_provider` (https://firebase.google.com/docs/rules/rules-and-auth).
    firebase = claims.get("firebase")
    provider = firebase.get("sign_in_provider") if isinstance(firebase, dict) else None
    if provider != GOOGLE_PROVIDER:
        raise Unauthenticated(f"the Firebase ID token was not obtained by signing in with Google "
                              f"(sign_in_provider={provider!r})")


def firebase_claims(token: str, settings, claims_of: Callable[[str], dict],
                    keys: Optional[PublicKeys] = None) -> dict:
    """The verified claims of a Firebase ID token for this deployment's Firebase project."""
    project = settings.firebase.get("projectId") or settings.project
    if settings.firebase_auth_emulator_host:
        claims = emulator_claims(token, claims_of)
    else:
        claims = verify_signature(token, project, keys or _KEYS)
    check_claims(claims, project)
    return claims
