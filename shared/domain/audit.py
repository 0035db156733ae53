"""The audit trail of Trainyard's own actions: one record per state-changing API request (POST, PUT,
PATCH, DELETE under /api), refused ones included — who, with which role on which team, what, when, and
the result. Google API calls the services make are Cloud Audit Logs' business; this trail is what a
person asked Trainyard to do (docs/security.md "Audit trail").

A record holds the method, the route rule and its path parameters, never the request's body or query
string (webhook URLs and tokens live there), and of an answer only its status, error code, the field
names of a 400 (whose messages may quote the input) and the server's own message otherwise.
`expire_at` is Firestore's TTL field (terraform/firestore.tf): the record is deleted after the
retention (TRAINYARD_AUDIT_RETENTION_DAYS).
"""
from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Optional

from shared.domain.doc_ids import is_valid_id
from shared.errors import FieldError
from shared.validation import moment, whole_number

RECORDED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNAUTHENTICATED = "unauthenticated"
OUTCOMES = {"ok": range(100, 400), "refused": range(400, 500), "failed": range(500, 600)}
MAX_MESSAGE_CHARS = 500
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
FILTERS = ("actor", "team", "action", "outcome", "status")  # equality filters the store serves


def is_recorded(method: str, path: str) -> bool:
    return method.upper() in RECORDED_METHODS and (path == "/api" or path.startswith("/api/"))


def outcome_of(status: int) -> str:
    return next((name for name, codes in OUTCOMES.items() if status in codes), "failed")


def record(*, at: datetime, retention_days: int, actor: Optional[str], method: str, route: Optional[str],
           path: str, path_params: Mapping[str, Any], status: int, answer: Optional[Mapping[str, Any]],
           authorization: Optional[Mapping[str, Any]] = None) -> dict:
    """The document stored for one request. `actor`: the verified e-mail, None when authentication
    failed (the record says "unauthenticated" and why). `answer`: the JSON the API answered."""
    answer = answer if isinstance(answer, Mapping) else {}
    refused_identity = actor is None
    grant = {k: authorization.get(k) for k in ("team", "role", "needed")} if isinstance(authorization, Mapping) else None
    doc = {
        "id": f"{at.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:12]}",
        "at": at,
        "expire_at": at + timedelta(days=retention_days),
        "actor": UNAUTHENTICATED if refused_identity else actor.strip().lower(),
        "authorization": grant,
        "team": grant.get("team") if grant else None,
        "method": method.upper(),
        "route": route,
        "action": f"{method.upper()} {route or path}",
        "path": path,
        "path_params": {k: str(v) for k, v in path_params.items()},
        "status": status,
        "outcome": outcome_of(status),
        "error": answer.get("error") if status >= 400 else None,
        "created": _created_id(answer) if status < 400 else None,
    }
    if status == 400:  # the messages of a 400 may quote what was sent: keep only which fields were wrong
        doc["fields"] = [str(e.get("field")) for e in answer.get("errors") or [] if isinstance(e, Mapping)]
    elif status >= 400 and isinstance(answer.get("message"), str):
        doc["message"] = answer["message"][:MAX_MESSAGE_CHARS]
    if refused_identity:
        doc["reason"] = doc.get("message")
    return doc


def _created_id(answer: Mapping[str, Any]) -> Optional[str]:
    """The id of what a request created or acted on, as its answer names it (a run, a schedule, an entry)."""
    for key in ("training_run", "schedule", "item"):
        value = answer.get(key)
        if isinstance(value, Mapping) and isinstance(value.get("id"), str):
            return value["id"]
    return None


# --------------------------------------------------------------------------- reading the trail


@dataclass(frozen=True)
class Query:
    filters: dict  # field -> value, of FILTERS
    since: Optional[datetime]
    until: Optional[datetime]
    limit: int
    after: Optional[tuple[datetime, str]]  # the last record of the previous page (its `at`, its id)


def parse_query(args: Mapping[str, str]) -> Query:
    """GET /api/admin/audit's query parameters; a bad one is a 400 naming it."""
    filters: dict = {}
    if args.get("actor"):
        filters["actor"] = args["actor"].strip().lower()
    if args.get("team"):
        filters["team"] = args["team"].strip()
    if args.get("action"):
        method, _, route = " ".join(args["action"].split()).partition(" ")
        if method.upper() not in RECORDED_METHODS or not route:
            raise FieldError.one("action", "must be a method and a route as recorded, e.g. "
                                           "'POST /api/training-runs/<run_id>/cancel'")
        filters["action"] = f"{method.upper()} {route}"
    result = (args.get("result") or "").strip().lower()
    if result in OUTCOMES:
        filters["outcome"] = result
    elif result:
        if not (result.isdigit() and len(result) == 3 and 100 <= int(result) <= 599):
            raise FieldError.one("result", f"must be one of {', '.join(OUTCOMES)} or an HTTP status such as 403")
        filters["status"] = int(result)
    since, until = moment(args, "since"), moment(args, "until")
    if since and until and since >= until:
        raise FieldError.one("until", "must be later than since")
    return Query(filters=filters, since=since, until=until,
                 limit=whole_number(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT), after=decode_cursor(args.get("cursor")))


def encode_cursor(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps([doc["at"].isoformat(), doc["id"]]).encode()).decode()


def decode_cursor(cursor: Optional[str]) -> Optional[tuple[datetime, str]]:
    if not cursor:
        return None
    try:
        at, doc_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(doc_id, str) or not is_valid_id(doc_id):
            raise ValueError("not a record id")
        return datetime.fromisoformat(at), doc_id
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise FieldError.one("cursor", "is not a cursor this API issued") from None


def matches(doc: dict, query: Query) -> bool:
    """Whether a record answers the query (the in-memory repository's filter; Firestore's does the same)."""
    return (all(doc.get(k) == v for k, v in query.filters.items())
            and (query.since is None or doc["at"] >= query.since)
            and (query.until is None or doc["at"] < query.until)
            and (query.after is None or (doc["at"], doc["id"]) < query.after))


def public_view(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "expire_at"}
