"""ID tokens as Cloud Run IAM delivers them to the container: Google's claims, the signature replaced
by SIGNATURE_REMOVED_BY_GOOGLE (https://cloud.google.com/run/docs/troubleshooting#signature-removed)."""
from __future__ import annotations

import base64
import json
import time

GCLOUD_CLIENT_ID = "32555940559.apps.googleusercontent.com"  # the audience of a user's gcloud token


def _segment(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def delivered_token(email="ana@example.com", aud=GCLOUD_CLIENT_ID, iss="https://accounts.google.com",
                    expires_in=3600, email_verified=True, **claims) -> str:
    """`hd` is the address's domain for a person (Google sets it for an account its organisation
    manages); a service account's token has none. Pass hd=None to leave it out."""
    now = int(time.time())
    hosted = None if email.endswith(".gserviceaccount.com") else email.rpartition("@")[2]
    body = {"iss": iss, "aud": aud, "azp": aud, "sub": "1" * 21, "email": email, "hd": hosted,
            "email_verified": email_verified, "iat": now - 10, "exp": now + expires_in, **claims}
    body = {key: value for key, value in body.items() if value is not None}
    return f"{_segment({'alg': 'RS256', 'kid': 'k1', 'typ': 'JWT'})}.{_segment(body)}.SIGNATURE_REMOVED_BY_GOOGLE"
