"""The audit trail on the Firestore emulator, through the running API: what a request leaves in
`audit_records`, and GET /api/admin/audit's filters, order and cursor as FirestoreRepository.list_audit
queries them (the stack's developer is its admin). Firestore's composite indexes are not enforced by
the emulator; tests/security/test_audit.py checks that terraform/firestore.tf declares each one."""
from __future__ import annotations

import uuid
from datetime import timedelta

import requests

from shared.adapters.repository import FirestoreRepository
from shared.domain import audit
from shared.domain.runs import now


def test_requests_leave_records_the_admin_route_reads_newest_first(local_stack):
    me = local_stack.stack.config.dev_identity
    missing = [f"tr-audit-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for run_id in missing:
        assert local_stack.post(f"/api/training-runs/{run_id}/cancel", {}).status_code == 404
    anonymous = requests.delete(f"{local_stack.api}/api/training-runs/{missing[0]}", timeout=30)
    assert anonymous.status_code == 401

    cancels = "POST /api/training-runs/<run_id>/cancel"
    page = local_stack.get("/api/admin/audit", actor=me, action=cancels, result="404", limit=2)
    assert page.status_code == 200, page.text
    first = page.json()
    assert [r["path_params"]["run_id"] for r in first["records"]] == list(reversed(missing))[:2]
    assert first["next_cursor"]
    rest = local_stack.get("/api/admin/audit", actor=me, action=cancels, result="404", limit=2,
                           cursor=first["next_cursor"]).json()
    assert rest["records"][0]["path_params"]["run_id"] == missing[0]
    assert all(r["actor"] == me and r["outcome"] == "refused" and r["error"] == "not_found"
               for r in first["records"] + rest["records"])

    refused = local_stack.get("/api/admin/audit", actor=audit.UNAUTHENTICATED, limit=50).json()["records"]
    assert any(r["path_params"] == {"run_id": missing[0]} and r["method"] == "DELETE" and r["reason"]
               for r in refused)
    assert local_stack.get("/api/admin/audit", since="yesterday").status_code == 400


def test_the_repository_combines_filters_a_time_window_and_the_cursor(local_stack):
    """list_audit as Firestore runs it: several equality filters, since/until on `at`, newest first by
    (at, id), start_after the cursor."""
    repo = FirestoreRepository(local_stack.stack.config.project)
    actor = f"auditor-{uuid.uuid4().hex[:8]}@example.com"
    start = now()
    for n in range(4):
        repo.add_audit(audit.record(
            at=start + timedelta(seconds=n), retention_days=1, actor=actor, method="POST",
            route="/api/training-runs/<run_id>/cancel", path=f"/api/training-runs/tr-{n}/cancel",
            path_params={"run_id": f"tr-{n}"}, status=409 if n % 2 else 202, answer={"error": "conflict"},
            authorization={"team": "search", "role": "trainer", "needed": "trainer"}))

    def ids(args):
        query = audit.parse_query(args)
        return [d["path_params"]["run_id"] for d in repo.list_audit(query, query.limit)]

    assert ids({"actor": actor}) == ["tr-3", "tr-2", "tr-1", "tr-0"]
    assert ids({"actor": actor, "team": "search", "result": "refused"}) == ["tr-3", "tr-1"]
    assert ids({"actor": actor, "result": "202"}) == ["tr-2", "tr-0"]
    window = {"actor": actor, "since": (start + timedelta(seconds=1)).isoformat(),
              "until": (start + timedelta(seconds=3)).isoformat()}
    assert ids(window) == ["tr-2", "tr-1"]
    query = audit.parse_query({"actor": actor, "limit": "3"})
    page = repo.list_audit(query, 3)
    after = audit.parse_query({"actor": actor, "cursor": audit.encode_cursor(page[-1])})
    assert [d["path_params"]["run_id"] for d in repo.list_audit(after, 10)] == ["tr-0"]
    stored = repo.list_audit(audit.parse_query({"actor": actor, "limit": "1"}), 1)[0]
    assert stored["expire_at"] - stored["at"] == timedelta(days=1)  # the TTL field, a timestamp
