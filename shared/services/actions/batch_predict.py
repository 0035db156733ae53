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
from shared.domain.batch_predictions import (AUTOMATIC_REQUESTER, FAILED, RUNNING, SUCCEEDED, BatchPredictionBody,
                                             BatchPredictionConfig)
from shared.domain.teams import Caller
from shared.errors import FieldError, NotFound, PermanentError, TransientError
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
    team = access.declared_team(declared, doc.get("team"))
    batch_predictions.check_population(team, asked.users)
    outputs = batch_predictions.check_outputs(team, asked.gcs_output, asked.bigquery_output)
    run, changed, warning = request_batch(repo, effects.publisher, store, doc, asked, outputs, who.email)
    batch = run["batch_prediction"]
    message = (f"writing top-{batch['k']} for {batch['users'] or batch['users_from'] + ' '}users to " if changed
               else f"already {batch['status']}: ") + ", ".join(o["destination"] for o in batch["outputs"].values())
    return {**outcome(run, changed, message), "warnings": [warning] if warning else []}


def request_batch(repo, publisher, store, doc: dict, asked, outputs: dict, by: str,
                  automatic: bool = False) -> tuple[dict, bool, Optional[str]]:
    """The one way a batch prediction is recorded and its command queued, by hand (`request`) or after
    training (`after_training`). A list of users is written as the job's input here, before the intent is
    recorded (so the command always finds it); ALL_USERS or a file is read by the consumer (`execute`).
    Returns (run, changed, warning): the warning says the command could not be queued."""
    listed = isinstance(asked.users, list)
    fingerprint = batch_predictions.fingerprint(asked.users, asked.k, outputs)
    ongoing = doc.get("batch_prediction") or {}
    repeat = ongoing.get("fingerprint") == fingerprint and ongoing.get("status") in (RUNNING, SUCCEEDED)
    batch_id = ongoing["id"] if repeat else uuid.uuid4().hex[:12]
    input_uri = batch_predictions.input_uri(doc.get("gcs_artifacts_path") or "", batch_id)  # the run's own files
    if listed and not repeat and batch_predictions.predictable(doc):
        column = _user_column(repo, doc, asked.users)
        store.write_text(input_uri, "".join(json.dumps(i) + "\n" for i in batch_predictions.instances(asked.users, column)))
    wanted = {"users": len(asked.users) if listed else 0, "users_from": None if listed else asked.users, "k": asked.k,
              "outputs": outputs, "fingerprint": fingerprint, "input_uri": input_uri}
    run, changed = run_writes.write_or_read(
        repo, doc["id"], lambda d: batch_predictions.request(d, batch_id, wanted, by, runs.now(), automatic))
    batch = run["batch_prediction"]
    # By hand, a repeat re-queues (it heals a lost command; execute skips a second one). After training, only
    # its own batch and only until `queued_at` records that the command went out (as deploy.request_deployment).
    wanted_command = batch["status"] == RUNNING and (not automatic or (batch.get("automatic") and not batch.get("queued_at")))
    warning = None
    if wanted_command:
        warning = publish_command(publisher, {"command": BATCH_PREDICT, "run_id": doc["id"], "batch_id": batch["id"]})
        if warning is None and automatic:
            run = run_writes.write(repo, doc["id"], lambda d: batch_predictions.mark_queued(d, batch["id"], runs.now())) or run
    return run, changed, warning


def after_training(repo, publisher, run: dict) -> str:
    """Called by lifecycle.after_change with a run that ended: a run whose batch_prediction_config asks for
    them gets its batch predictions when it is blessed and registered its model, by AUTOMATIC_REQUESTER (its
    creator's deployer role and the outputs were checked when it was made, access.check_new_run, and the
    outputs are checked again when they are written); a run that is not gets none, and says why on the run.

    Idempotent: a batch already on the run is left alone, except that an automatic one whose command was not
    queued yet is queued. A failed publish raises TransientError: the final event is redelivered."""
    config = run.get("batch_prediction_config")
    ongoing = run.get("batch_prediction") or {}
    pending = ongoing.get("automatic") and ongoing.get("status") == RUNNING and not ongoing.get("queued_at")
    if not config or run.get("status") not in (runs.COMPLETED, runs.NOT_BLESSED) or (ongoing and not pending):
        return "none"  # decided on the document in hand: most events cost no extra read
    reason = batch_predictions.not_after_training(run)
    try:
        if reason:
            run_writes.write(repo, run["id"], lambda d: batch_predictions.skipped(d, uuid.uuid4().hex[:12], reason,
                                                                                  runs.now()))
            log.info("batch predictions after training skipped", run_id=run["id"], reason=reason)
            return "skipped"
        asked = BatchPredictionConfig.model_validate(config)
        outputs = batch_predictions.check_outputs(None, asked.gcs_output, asked.bigquery_output)  # normalised
        run, _, warning = request_batch(repo, publisher, None, run, asked, outputs, AUTOMATIC_REQUESTER, automatic=True)
    except NotFound:  # deleted since it ended (a redelivered event): a deleted run takes no action
        return "none"
    if warning:
        raise TransientError(warning)
    log.info("batch predictions after training requested", run_id=run["id"], batch_id=run["batch_prediction"]["id"])
    return "batch_requested"


def _population(consumer: Consumer, run: dict, users_from: str) -> list:
    """The users of ALL_USERS (the run's user id vocabulary: every user id its Transform saw) or of a file
    (one id, or one JSON instance, a line). PermanentError when there are none to read."""
    if users_from == batch_predictions.ALL_USERS:
        uri = _user_vocabulary(consumer.repo, run)
        text = consumer.store.read_text(uri) if uri else None
        if text is None:
            raise PermanentError("the run's data has no user id vocabulary to list every user from (a query "
                                 "feature with a vocabulary transform of the user id column); give users a file of "
                                 "ids instead", stage="BatchPredict")
    else:
        text = consumer.store.read_text(users_from)
        if text is None:
            raise PermanentError(f"no file of users at {users_from}", stage="BatchPredict")
    users = [json.loads(line) if line.startswith("{") else line for line in (raw.strip() for raw in text.splitlines())
             if line]
    if not users:
        raise PermanentError(f"no users in {users_from}", stage="BatchPredict")
    return users


def _user_vocabulary(repo, run: dict) -> Optional[str]:
    """The Transform's vocabulary of the user id column (pipeline_compiler/modules/export.py copies every
    vocabulary, one file per feature name, to the run's `vocabularies`), uncut (no max_tokens)."""
    where = (run.get("artifacts") or {}).get("vocabularies")
    dataset = repo.get_catalog("datasets", run["dataset_id"]) if run.get("dataset_id") else None
    features = repo.get_catalog("feature_configs", run["feature_config_id"]) if run.get("feature_config_id") else None
    if not where or not dataset or not features:
        return None
    column = dataset["columns"]["user_id"]
    for feature in features.get("features") or []:
        transform = feature.get("transform") or {}
        if (feature.get("column") == column and feature.get("side") == "query" and transform.get("type") == "vocabulary"
                and not transform.get("max_tokens")):
            return f"{where.rstrip('/')}/{feature['name']}"
    return None


def _write_population(consumer: Consumer, run: dict, batch: dict) -> dict:
    """ALL_USERS or a file, read once and written as the job's input; the batch with their count."""
    users = _population(consumer, run, batch["users_from"])
    column = _user_column(consumer.repo, run, users)
    consumer.store.write_text(batch["input_uri"], "".join(json.dumps(i) + "\n"
                                                          for i in batch_predictions.instances(users, column)))
    done = run_writes.write(consumer.repo, run["id"], lambda doc: batch_predictions.resolved(doc, batch["id"], len(users)))
    return (done or {}).get("batch_prediction") or batch


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
        if batch.get("users_from") and not batch.get("input_written"):
            owned(consumer.declared, run, lambda team: batch_predictions.check_population(team, batch["users_from"]))
            batch = _write_population(consumer, run, batch)
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
