"""Keeping and reading the audit trail (shared/domain/audit.py) through the repository.

A record is written after the request, when its result is known: one write per action, and a refusal
is recorded as such. A write that fails does not change the answer the caller gets (the action has
happened, or been refused, either way); it is logged at ERROR with the whole record, so Cloud Logging
keeps what Firestore did not. A process killed mid-request leaves no record: Cloud Run's request log
(method, path, status, no identity) is the trace of that.
"""
from __future__ import annotations

from shared import log
from shared.domain import audit


def keep(repo, doc: dict) -> bool:
    """Store one record; False (and an ERROR log line carrying the record) when the store refused it."""
    try:
        repo.add_audit(doc)
        return True
    except Exception as exc:  # noqa: BLE001 — whatever the store raised, the caller's answer stands
        log.error("AUDIT RECORD NOT STORED: the action's record is only in this log entry",
                  audit_record=doc,
                  error=repr(exc))
        return False


def list_records(repo, args) -> dict:
    """GET /api/admin/audit: newest first, filtered, one page and the cursor of the next."""
    query = audit.parse_query(args)
    found = repo.list_audit(query, query.limit + 1)
    page = found[:query.limit]
    return {"records": [audit.public_view(doc) for doc in page], "limit": query.limit,
            "next_cursor": audit.encode_cursor(page[-1]) if len(found) > query.limit else None}
