"""Batch recommendations: top-K items for every user of a list, written to GCS JSONL and/or a BigQuery
dataset of the run's team. Requested in the API (`POST …/batch-predictions`, `request`), carried out by
the run-commands consumer (`execute`), which starts one job per output (shared/adapters/batch_prediction.py)
and follows them, recording progress, row counts and where the rows are on the run.

Deployer on the run's team: like a deploy, it puts the team's model to work outside the training
project (its answers land where products read them) and spends serving machines, so a trainer or viewer
may not; the outputs must lie in the team's own buckets and datasets.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterable, Optional

from shared import log
from shared.contract.messages import BATCH_PREDICT, RunCommand
from shared.domain import batch_predictions, runs, teams
from shared.domain.batch_predictions import FAILED, RUNNING, SUCCEEDED, BatchPredictionBody
from shared.domain.teams import Caller
from shared.errors import FieldError, PermanentError, TransientError
from shared.services import access, ports, run_writes
from shared.services.actions import Consumer, outcome, owned, publish_command, run_for
from shared.services.actions.deploy import serving_model_uri
from shared.validation import parse


def _user_column(repo, doc: dict, users: list) -> str:
    """The dataset's user id column: the serving signature's query feature an id is given as."""
    dataset = repo.get_catalog("datasets", doc["dataset_id"]) if doc.get("dataset_id") else None
    if dataset is None:
        if all(isinstance(user, dict) for user in users):
            return ""
        raise FieldError.one("users", "the run's dataset is gone, so ids cannot be turned into instances: "
                                      "send whole instances ({feature: value})")
    return dataset["columns"]["user_id"]


def request(repo, effects: ports.Effects, store, run_id: str, who: Caller, body: Any,
            declared: Iterable[teams.Team]) -> dict:
    asked = parse(BatchPredictionBody, body if body is not None else {})
    doc = access.run(repo, who, run_id, teams.DEPLOYER, "writing a run's batch predictions")
    outputs = batch_predictions.check_outputs(access.declared_team(declared, doc.get("team")),
                                              asked.gcs_output, asked.bigquery_output)
    fingerprint = batch_predictions.fingerprint(asked.users, asked.k, outputs)
    ongoing = doc.get("batch_prediction") or {}
    repeat = ongoing.get("fingerprint") == fingerprint and ongoing.get("status") in (RUNNING, SUCCEEDED)
    batch_id = ongoing["id"] if repeat else uuid.uuid4().hex[:12]
    input_uri = batch_predictions.input_uri(doc.get("gcs_artifacts_path") or "", batch_id)  # the run's own files
    if not repeat and batch_predictions.predictable(doc):
        # The job's input, written before the intent is recorded, so the command always finds it.
        column = _user_column(repo, doc, asked.users)
        store.write_text(input_uri, "".join(json.dumps(i) + "\n" for i in batch_predictions.instances(asked.users, column)))
    wanted = {"users": len(asked.users), "k": asked.k, "outputs": outputs, "fingerprint": fingerprint,
              "input_uri": input_uri}
    run, changed = run_writes.write_or_read(
        repo, run_id, lambda d: batch_predictions.request(d, batch_id, wanted, who.email, runs.now()))
    batch = run["batch_prediction"]
    warning = None
    if batch["status"] == RUNNING:  # a repeat re-queues: it heals a lost command (execute skips a second one)
        warning = publish_command(effects.publisher, {"command": BATCH_PREDICT, "run_id": run_id, "batch_id": batch["id"]})
    message = (f"writing top-{batch['k']} for {batch['users']} users to " if changed else f"already {batch['status']}: ") + \
        ", ".join(o["destination"] for o in batch["outputs"].values())
    return {**outcome(run, changed, message), "warnings": [warning] if warning else []}


def execute(command: RunCommand, consumer: Consumer) -> str:
    from shared.adapters.batch_prediction import BatchJobRequest  # the run-commands consumer's only

    run = run_for(command, consumer)
    batch = (run or {}).get("batch_prediction") or {}
    if run is None or batch.get("id") != command.batch_id or batch.get("status") != RUNNING:
        return "skipped"  # gone, superseded, finished or failed already
    adapter = consumer.serving.batch_predictions

    def update(kind: Optional[str], changes: dict) -> Optional[dict]:
        return run_writes.write(consumer.repo, run["id"],
                                lambda doc: batch_predictions.record(doc, batch["id"], kind, changes))

    outputs = batch["outputs"]
    try:
        owned(consumer.declared, run, lambda team: batch_predictions.check_outputs(
            team, (outputs.get("gcs") or {}).get("destination"), (outputs.get("bigquery") or {}).get("destination")))
        model_uri = serving_model_uri(consumer.store, run)
    except PermanentError as exc:
        update(None, {"status": FAILED, "error": str(exc), "finished_at": runs.now()})
        return "failed"
    jobs = {}
    for kind, output in outputs.items():
        if output.get("state") in (SUCCEEDED, FAILED):
            continue
        job = output.get("job")
        if not job:
            try:
                job = adapter.start(BatchJobRequest(
                    run_id=run["id"], run_name=run["name"], batch_id=batch["id"], kind=kind,
                    destination=output["destination"], model_resource_name=batch["model_resource_name"],
                    model_version_id=batch["model_version_id"], serving_model_uri=model_uri,
                    input_uri=batch["input_uri"], k=batch["k"], machine_count=batch["machine_count"]))
            except PermanentError as exc:
                update(kind, {"state": FAILED, "error": str(exc), "finished_at": runs.now()})
                log.error("batch prediction failed to start", run_id=run["id"], output=kind, error=str(exc))
                continue
            update(kind, {"job": job, "state": RUNNING})  # recorded, so a redelivery follows this job
        jobs[kind] = job
    return _follow(adapter, run["id"], jobs, update)


def _follow(adapter, run_id: str, jobs: dict, update) -> str:
    """Record each job's progress until all have ended; past the adapter's wait, a redelivery follows them."""
    deadline = time.monotonic() + adapter.wait_s
    while True:
        for kind in list(jobs):
            status = adapter.status(jobs[kind])
            ended = status.state != RUNNING
            update(kind, {"state": status.state, "rows": status.rows, "failed_rows": status.failed_rows,
                          "location": status.location, "error": status.error,
                          **({"finished_at": runs.now()} if ended else {})})
            if ended:
                log.info("batch prediction output finished", run_id=run_id, output=kind, state=status.state,
                         rows=status.rows, location=status.location)
                del jobs[kind]
        if not jobs:
            return "done"
        if time.monotonic() >= deadline:
            raise TransientError(f"batch prediction jobs {sorted(jobs.values())} still running; a redelivery follows them")
        time.sleep(adapter.poll_s)
