"""Opaque page tokens: where a paging adapter resumes, signed by the API so a client can neither forge
nor alter it, tied to what it pages (a run, an attempt, a stage) and expiring.

A token is base64url(JSON {bound, cursor, expires}) "." base64url(HMAC-SHA256 over that text). The
cursor is the adapter's own (Cloud Logging's nextPageToken, a local log offset); nothing a client sends
is ever used before the signature and the binding are checked (security review H2: a client-decoded
token used to carry the Cloud Logging filter itself).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Callable, Optional

from shared.errors import FieldError

# Long enough for `trainyard runs logs -f` to follow a long training on the last page's token.
TTL_S = 24 * 3600
FIELD = "page_token"
_REFUSED = "is not a page token this API issued for this request (or it has expired); start without one"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def issue(key: bytes, bound: dict, cursor: dict, ttl_s: float = TTL_S,
          clock: Optional[Callable[[], float]] = None) -> str:
    body = _b64(json.dumps({"b": bound, "c": cursor, "x": int((clock or time.time)() + ttl_s)}, sort_keys=True,
                           separators=(",", ":")).encode())
    return f"{body}.{_mac(key, body)}"


def redeem(key: bytes, token: str, bound: dict, clock: Optional[Callable[[], float]] = None) -> dict:
    """The cursor a token carries, once its signature, binding and expiry are checked; 400 otherwise."""
    body, _, signature = (token or "").partition(".")
    if not body or not signature or not hmac.compare_digest(signature.encode(), _mac(key, body).encode()):
        raise FieldError.one(FIELD, _REFUSED)
    try:
        payload = json.loads(_unb64(body))
        cursor, expires, issued_for = payload["c"], float(payload["x"]), payload["b"]
    except (ValueError, KeyError, TypeError):  # signed by us, so only a change of format gets here
        raise FieldError.one(FIELD, _REFUSED) from None
    if issued_for != bound or (clock or time.time)() > expires or not isinstance(cursor, dict):
        raise FieldError.one(FIELD, _REFUSED)
    return cursor
