"""Faults injected into the local stack (both emulators, the real functions, the scripted pipeline
service): what a dead consumer or a lost message leaves behind is repaired, and each test asserts
the final documents, not timings.

A fault that happens in the cloud between two writes is rendered here by leaving exactly the state
it leaves in Firestore and in the pipeline backend (e.g. a claim 11 minutes old whose holder is gone),
then letting the system (the reconciler, through `reconcile` like Cloud Scheduler's job) find it.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.contract.labels import job_id_for
from shared.domain import runs
from shared.contract import topics
from shared.adapters.artifact_store import ArtifactStore
from tests.integration.test_control_plane_flow import catalog, comparable, create, deliver, submitted  # noqa: F401
from tests.polling import wait_until
from tests.unit.scenario import job_timeline, write_results

pytestmark = pytest.mark.integration


def firestore_run(run_id: str):
    from google.cloud import firestore

    return firestore.Client(project="trainyard-local").collection("training_runs").document(run_id)


def age(run_id: str, by: timedelta) -> None:
    """Make the run look untouched for `by`: the stored updated_at (what the reconciler compares) and a
    submit claim are moved back, as if the time had passed with nothing arriving."""
    ref = firestore_run(run_id)
    doc = ref.get().to_dict()
    doc["updated_at"] = doc["updated_at"] - by
    for attempt in doc.get("attempts", []):
        if attempt.get("claimed_at"):
            attempt["claimed_at"] = attempt["claimed_at"] - by
    ref.set(doc)


def reconcile_now(local_stack) -> None:
    message_id = local_stack.publish(topics.RECONCILE, {})
    local_stack.wait_handled("reconciler", message_id, timeout_s=60)


def all_but_the_final_event(local_stack, catalog, name: str):
    """Two submitted runs with results: the clean one gets every event of its job, the other all but the
    final one. Returns (the other, the clean one, the other's job timeline)."""
    victim, clean = (submitted(local_stack, catalog, f"{name}-{i}") for i in range(2))
    for run in (victim, clean):
        write_results(ArtifactStore(), run["gcs_artifacts_path"], blessed=True)
    clean_job, victim_job = f"{clean['id']}-a1", f"{victim['id']}-a1"
    deliver(local_stack, job_timeline(clean_job), clean_job)
    timeline = job_timeline(victim_job)
    deliver(local_stack, timeline[:-1], victim_job)
    return victim, clean, timeline


def test_a_submitter_that_dies_after_its_claim_before_the_job_is_created_loses_no_run(local_stack, catalog):
    # A run that is not submitted by itself (scheduled tomorrow), put in the state a submitter leaves
    # when it dies between its claim and create_job: submitting, claim held, no job.
    run = create(local_stack, catalog, "fault-dead-submitter",
                 scheduled_at=(runs.now() + timedelta(days=1)).isoformat())
    ref = firestore_run(run["id"])
    doc = ref.get().to_dict()
    claimed = runs.claim_for_submit({**doc, "status": runs.PENDING}, doc["attempt"], runs.now())
    ref.set({**claimed, "version": doc["version"] + 1})
    job_id = job_id_for(run["id"], 1)
    assert job_id not in local_stack.pipeline.jobs

    reconcile_now(local_stack)  # inside the lease: the claim may still be someone's — left alone
    assert local_stack.run(run["id"])["status"] == runs.SUBMITTING

    age(run["id"], timedelta(minutes=11))  # past TRAINYARD_SUBMIT_LEASE_SECONDS (630 s)
    reconcile_now(local_stack)
    running = local_stack.wait_for(run["id"], lambda r: r["status"] == runs.RUNNING, what="re-driven submission")
    assert local_stack.pipeline.create_calls[job_id] == 1

    write_results(ArtifactStore(), running["gcs_artifacts_path"], blessed=True)
    deliver(local_stack, job_timeline(job_id), job_id)
    final = local_stack.wait_for(run["id"], lambda r: r["status"] == runs.COMPLETED, what="completion")
    assert final["recall_at_100"] == pytest.approx(0.47) and final["progress_percent"] == 100
    assert local_stack.pipeline.create_calls[job_id] == 1  # one job, whatever was delivered twice


def test_a_dropped_final_event_is_recovered_by_the_reconciler_equal_to_a_clean_run(local_stack, catalog):
    dropped, clean, timeline = all_but_the_final_event(local_stack, catalog, "fault-dropped-final")
    local_stack.pipeline.set_job(timeline[-1])  # the job SUCCEEDED; its event is lost (dead-lettered)
    reconcile_now(local_stack)
    assert local_stack.run(dropped["id"])["status"] == runs.RUNNING  # young: its events may still come

    age(dropped["id"], timedelta(minutes=11))  # past TRAINYARD_RECONCILE_RUNNING_AFTER_S (600 s)
    reconcile_now(local_stack)
    a = local_stack.wait_for(clean["id"], lambda r: r["status"] == runs.COMPLETED, what="clean completion")
    b = local_stack.wait_for(dropped["id"], lambda r: r["status"] == runs.COMPLETED, what="reconciled completion")
    assert comparable(b) == comparable(a)

    status = local_stack.get("/api/reconciler").json()["reconciler"]
    assert status["totals"].get("job_state_applied", 0) >= 1
    assert any(r["run_id"] == dropped["id"] and r["action"] == "job_state_applied"
               and r["job_state"] == "PIPELINE_STATE_SUCCEEDED" for r in status["recent_repairs"])


def test_pipeline_events_killed_mid_update_ends_equal_to_a_clean_replay(local_stack, catalog):
    import threading

    victim, clean, timeline = all_but_the_final_event(local_stack, catalog, "fault-killed-events")
    victim_job = timeline[-1].job_id
    entered, release = threading.Event(), threading.Event()
    local_stack.pipeline.holds[victim_job] = (entered, release)
    local_stack.pipeline.set_job(timeline[-1])
    from tests.integration.test_control_plane_flow import sink_entry

    local_stack.publish("pipeline-events", sink_entry(victim_job))
    assert entered.wait(30), "pipeline_events did not read the job"
    try:
        local_stack.stack.kill("pipeline_events")  # mid-handling of the final event: nothing acknowledged
    finally:
        del local_stack.pipeline.holds[victim_job]
        release.set()
        local_stack.stack.respawn("pipeline_events")
    # Pub/Sub redelivers the unacknowledged event to the restarted consumer.
    b = local_stack.wait_for(victim["id"], lambda r: r["status"] == runs.COMPLETED, timeout_s=120,
                             what="completion after the crash")
    a = local_stack.wait_for(clean["id"], lambda r: r["status"] == runs.COMPLETED, what="clean completion")
    assert comparable(b) == comparable(a)


def dead_lettered_submit(local_stack, run_id: str):
    """The run's run-submit in run-submit-dead-letter-hold, through the admin route (nothing consumed)."""
    held = local_stack.get(f"/api/admin/dead-letters/{topics.RUN_SUBMIT}", limit=100).json()["dead_letters"]
    return next((m for m in held if json.loads(m["data"]).get("run_id") == run_id), None)


def test_a_backend_outage_inside_the_retry_window_is_ridden_out_by_redelivery(local_stack, catalog):
    """Each delivery that meets the 5xx gives its claim back, so Pub/Sub's next redelivery submits: no
    dead letter, no reconciler, one job."""
    local_stack.pipeline.outage.set()
    try:
        run = create(local_stack, catalog, "fault-short-outage")
        job_id = job_id_for(run["id"], 1)
        wait_until(lambda: local_stack.pipeline.refused[f"create {job_id}"] >= 2, 60,
                   "two deliveries to meet the outage")
    finally:
        local_stack.pipeline.outage.clear()
    running = local_stack.wait_for(run["id"], lambda r: r["status"] == runs.RUNNING, timeout_s=90,
                                   what="submission by a redelivery")
    assert local_stack.pipeline.create_calls[job_id] == 1 and running["attempt"] == 1
    assert dead_lettered_submit(local_stack, run["id"]) is None
    repairs = local_stack.get("/api/reconciler").json()["reconciler"]["recent_repairs"]
    assert not [r for r in repairs if r["run_id"] == run["id"]]


def test_a_backend_failing_5xx_longer_than_the_retry_window_is_re_driven_not_stuck(local_stack, catalog):
    """The pipeline backend answers 503 to every delivery of a run's run-submit until Pub/Sub gives up
    (the stack's subscription: 10 deliveries) and dead-letters it; once the backend is back the
    reconciler re-drives the run past the submit lease, it completes equal to a clean run with one job,
    and an admin's replay of the dead letter afterwards changes nothing."""
    clean = submitted(local_stack, catalog, "fault-long-outage-clean")
    local_stack.pipeline.outage.set()
    try:
        victim = create(local_stack, catalog, "fault-long-outage")
        job_id = job_id_for(victim["id"], 1)
        letter = wait_until(lambda: dead_lettered_submit(local_stack, victim["id"]), 300, "run-submit dead-lettered")
        assert local_stack.pipeline.refused[f"create {job_id}"] >= 10  # every delivery reached the backend
        stuck = local_stack.run(victim["id"])
        assert stuck["status"] == runs.SUBMITTING and job_id not in local_stack.pipeline.jobs
    finally:
        local_stack.pipeline.outage.clear()

    age(victim["id"], timedelta(minutes=11))  # past TRAINYARD_SUBMIT_LEASE_SECONDS with nothing arriving
    reconcile_now(local_stack)
    running = local_stack.wait_for(victim["id"], lambda r: r["status"] == runs.RUNNING, what="re-driven submission")
    for run in (running, clean):
        write_results(ArtifactStore(), run["gcs_artifacts_path"], blessed=True)
        job = job_id_for(run["id"], 1)
        deliver(local_stack, job_timeline(job), job)
    a = local_stack.wait_for(clean["id"], lambda r: r["status"] == runs.COMPLETED, what="clean completion")
    b = local_stack.wait_for(victim["id"], lambda r: r["status"] == runs.COMPLETED, what="re-driven completion")
    assert comparable(b) == comparable(a) and local_stack.pipeline.create_calls[job_id] == 1
    repairs = local_stack.get("/api/reconciler").json()["reconciler"]["recent_repairs"]
    assert any(r["run_id"] == victim["id"] and r["action"] == "submit_requeued" for r in repairs)

    replay = local_stack.session.post(f"{local_stack.api}/api/admin/dead-letters/{topics.RUN_SUBMIT}/replay",
                                      params={"limit": 100}, timeout=60)
    assert replay.status_code == 200, replay.text
    replayed = {m["message_id"]: m["replayed_as"] for m in replay.json()["dead_letters"]}
    local_stack.wait_handled("submitter", replayed[letter["message_id"]])
    assert comparable(local_stack.run(victim["id"])) == comparable(b)  # a late duplicate changes nothing
    assert local_stack.pipeline.create_calls[job_id] == 1 and dead_lettered_submit(local_stack, victim["id"]) is None
