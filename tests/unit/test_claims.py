"""The run's pure transitions behind the three idempotency ledgers (shared/domain/claims.py) and the
deployment and push-anyway transitions that were closures inside services."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import claims, deployments, runs
from shared.errors import Conflict, FieldError, TransientError

AT = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
LEASE = timedelta(minutes=10)


def test_a_claim_holds_until_released_done_or_past_its_lease():
    taken = claims.claim(None, AT, LEASE)
    assert taken == {"claimed_at": AT}
    assert claims.claim(taken, AT + LEASE, LEASE) is None  # another holder's, still live
    assert claims.claim(taken, AT + LEASE + timedelta(seconds=1), LEASE) == {"claimed_at": AT + LEASE + timedelta(seconds=1)}
    assert claims.claim(taken, AT + timedelta(days=365)) is None  # without a lease: held for good (at most once)
    assert claims.release(taken, AT + timedelta(seconds=1)) is None  # not this holder's claim
    released = claims.release(taken, AT)
    assert released == {"claimed_at": None} and claims.claim(released, AT, LEASE) == {"claimed_at": AT}
    finished = claims.done(taken, AT, done_at="queued_at")
    assert finished["queued_at"] == AT and claims.done(finished, AT, done_at="queued_at") is None
    assert claims.claim(finished, AT + LEASE * 2, LEASE, done_at="queued_at") is None


def pending_run(**extra) -> dict:
    return {"id": "tr-1", "status": runs.PENDING, "attempt": 1, "stage_details": runs.initial_stages(),
            "attempts": [], **extra}


def test_the_submit_lease_claims_refuses_a_live_claim_and_takes_a_stale_one_over():
    claimed = runs.claim_submit(pending_run(), 1, AT, LEASE)
    assert claimed["status"] == runs.SUBMITTING and claimed["attempts"][-1]["claimed_at"] == AT
    with pytest.raises(TransientError):
        runs.claim_submit(claimed, 1, AT + LEASE, LEASE)
    later = AT + LEASE + timedelta(seconds=1)
    taken = runs.claim_submit(claimed, 1, later, LEASE)
    assert taken["attempts"][-1]["claimed_at"] == later and claimed["attempts"][-1]["claimed_at"] == AT  # a copy
    assert runs.claim_submit(claimed, 2, later, LEASE) is None  # another attempt's message


def test_a_submit_release_frees_only_its_own_claim():
    claimed = runs.claim_submit(pending_run(), 1, AT, LEASE)
    assert runs.release_submit(claimed, 1, AT - timedelta(hours=1)) is None  # taken over since
    released = runs.release_submit(claimed, 1, AT)
    assert released["attempts"][-1]["claimed_at"] is None and released["status"] == runs.SUBMITTING
    assert runs.claim_submit(released, 1, AT + timedelta(seconds=1), LEASE)["attempts"][-1]["claimed_at"]


def test_the_notification_ledger_sends_at_most_once_and_retries_a_failure():
    doc = {"id": "tr-1", "status": runs.FAILED, "attempt": 1}
    sending = runs.claim_notification(doc, "1:failed:webhook-0", AT)
    entry = sending["notifications_sent"]["1:failed:webhook-0"]
    assert (entry["status"], entry["tries"]) == ("sending", 1)
    assert runs.claim_notification(sending, "1:failed:webhook-0", AT + timedelta(days=1)) is None  # no lease
    failed = runs.record_notification(sending, "1:failed:webhook-0", False, AT, "503")
    assert failed["notifications_sent"]["1:failed:webhook-0"]["status"] == "failed"
    again = runs.claim_notification(failed, "1:failed:webhook-0", AT)
    assert again["notifications_sent"]["1:failed:webhook-0"]["tries"] == 2
    sent = runs.record_notification(again, "1:failed:webhook-0", True, AT)
    assert sent["notifications_sent"]["1:failed:webhook-0"]["status"] == "sent"
    assert runs.claim_notification(sent, "1:failed:webhook-0", AT) is None


@pytest.mark.parametrize("status", ["sending", "sent"])
def test_a_notification_entry_stored_before_claims_keeps_its_meaning(status):
    doc = {"id": "tr-1", "status": runs.FAILED, "attempt": 1,
           "notifications_sent": {"1:failed:pubsub": {"status": status, "at": AT, "tries": 1}}}
    assert runs.claim_notification(doc, "1:failed:pubsub", AT + timedelta(days=1)) is None


def registered(**extra) -> dict:
    return {"id": "tr-1", "name": "recs", "status": runs.COMPLETED, "attempt": 1,
            "vertex_model_resource_name": "models/1", "vertex_model_version": "1",
            "deployment_config": {"action": "deploy_new", "endpoint_name": "recs-prod"}, **extra}


def test_a_deployment_is_requested_once_per_target_and_refused_while_another_is_under_way():
    none = {"endpoint_id": None, "endpoint_name": None, "traffic_split": None}
    doc = deployments.request(registered(), none, "d1", "dev@example.com", AT, automatic=True)
    assert doc["deployment"]["endpoint_name"] == "recs-prod" and doc["deployment_status"] == deployments.DEPLOYING
    assert deployments.request(doc, none, "d2", "dev@example.com", AT, automatic=True) is None
    assert deployments.request(doc, none, "d2", "dev@example.com", AT, automatic=False) is None  # the same target
    with pytest.raises(Conflict):
        deployments.request(doc, {**none, "endpoint_id": "555"}, "d2", "dev@example.com", AT, automatic=False)
    with pytest.raises(Conflict):
        deployments.request(registered(status=runs.FAILED), none, "d1", "dev@example.com", AT, automatic=False)
    with pytest.raises(FieldError):
        deployments.request(registered(), {**none, "traffic_split": 50}, "d1", "dev@example.com", AT, automatic=False)


def test_a_deployment_is_marked_queued_once_and_records_only_its_own_outcome():
    none = {"endpoint_id": None, "endpoint_name": None, "traffic_split": None}
    doc = deployments.request(registered(), none, "d1", "dev@example.com", AT, automatic=True)
    queued = deployments.mark_queued(doc, "d1", AT)
    assert queued["deployment"]["queued_at"] == AT
    assert deployments.mark_queued(queued, "d1", AT) is None and deployments.mark_queued(doc, "d0", AT) is None
    assert deployments.record(queued, "d0", {"status": deployments.DEPLOYED}) is None
    done = deployments.record(queued, "d1", {"status": deployments.DEPLOYED}, {"deployment_status": deployments.DEPLOYED})
    assert done["deployment"]["status"] == done["deployment_status"] == deployments.DEPLOYED
    assert deployments.record(done, "d1", {"status": deployments.DEPLOY_FAILED}) is None  # finished already


def test_push_anyway_is_requested_for_a_not_blessed_run_and_recorded_once():
    doc = registered(status=runs.NOT_BLESSED)
    pushing = runs.request_push_anyway(doc, "dev@example.com", AT)
    assert pushing["push_anyway"] == {"status": runs.PUSHING, "requested_by": "dev@example.com", "requested_at": AT,
                                      "error": None}
    assert runs.request_push_anyway(pushing, "dev@example.com", AT) is None
    with pytest.raises(Conflict, match="registered when it completed"):
        runs.request_push_anyway(registered(), "dev@example.com", AT)
    pushed = runs.record_push(pushing, {"status": runs.PUSHED}, {"pushed_anyway": True})
    assert pushed["push_anyway"]["status"] == runs.PUSHED and pushed["pushed_anyway"] is True
    assert runs.record_push(pushed, {"status": runs.PUSH_FAILED}) is None


def test_admission_transitions_apply_what_the_spend_guard_decided():
    draft = {"id": "tr-1", "status": runs.DRAFT, "attempt": 1}
    reserved = {"status": runs.PENDING, "spend": {"key": "tr-1-a1"}}
    assert runs.submit_draft(draft, reserved) == {**draft, "status": runs.PENDING, "spend": {"key": "tr-1-a1"}}
    assert runs.submit_draft({**draft, "status": runs.PENDING}, reserved) is None and runs.submit_draft(draft, None) is None
    waiting = {"id": "tr-1", "status": runs.AWAITING_APPROVAL, "attempt": 1, "approval": {"reason": "over the cap"}}
    approved = runs.approve(waiting, {"key": "tr-1-a1"}, "admin@example.com", AT)
    assert approved["status"] == runs.PENDING and approved["approval"]["approved_by"] == "admin@example.com"
    assert approved["approval"]["reason"] == "over the cap" and runs.approve(approved, None, "a", AT) is None
    rejected = runs.reject(waiting, "admin@example.com", AT, "too big")
    assert rejected["status"] == runs.CANCELLED and rejected["approval"]["reason_given"] == "too big"
    assert runs.reject(rejected, "admin@example.com", AT, "") is None
    with pytest.raises(Conflict):
        runs.reject(approved, "admin@example.com", AT, "")


def test_a_retry_is_admitted_only_for_the_attempt_the_guard_admitted():
    doc = {"id": "tr-1", "status": runs.FAILED, "attempt": 1}
    new = {**doc, "status": runs.PENDING, "attempt": 2, "approval": {"approved_by": "earlier"}}
    admitted = runs.admit_attempt(doc, new, {"status": runs.PENDING, "attempt": 2, "spend": {"key": "tr-1-a2"}})
    assert admitted["attempt"] == 2 and admitted["spend"] == {"key": "tr-1-a2"} and "approval" not in admitted
    assert runs.admit_attempt(doc, None, None) is None  # already retried
    with pytest.raises(Conflict):
        runs.admit_attempt(doc, new, {"status": runs.PENDING, "attempt": 3})
