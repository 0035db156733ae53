"""A run's batch recommendations: top-K items for every user of a list, written to GCS JSONL and/or a
BigQuery dataset, as pure transitions — requested, each output's job recorded as it is followed,
finished or failed. The service that asks for them and carries them out: shared/services/actions/batch_predict.py.

The outputs lie under the run's team's buckets and datasets, checked as a dataset's source is
(shared/domain/data_access.py): a deployer of one team never writes into another team's data.
"""
from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.domain import claims, data_access, runs, teams
from shared.errors import Conflict, FieldError

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
GCS, BIGQUERY = "gcs", "bigquery"

# The serving signature returns this many candidates (pipeline_compiler/modules/export.py TOP_K, which
# shared/ may not import; tests/unit/test_batch_predictions.py pins the two together).
MODEL_TOP_K = 100
# Users per request body: a list travels in the API request and is written as the job's input file.
MAX_USERS = 100_000
# Machine count from the user count. Basis: one n1-standard-4 replica answers Trainyard's retrieval
# signature for 1,000-instance requests at well over 50 users/s, so 100k users is ~30 min on one
# replica; past that, one more replica per 100k users, up to MAX_REPLICAS (a cap on the job's cost).
# Vertex splits the input across replicas (BatchDedicatedResources.starting_replica_count, cloud.google.com/
# vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs#BatchDedicatedResources).
USERS_PER_REPLICA = 100_000
MAX_REPLICAS = 10


# The default population: every user of the run's data (its user id vocabulary, `population_uri`).
ALL_USERS = "all"
SKIPPED = "skipped"  # after training: the run's model is not one to write batch predictions with (the reason kept)
AUTOMATIC_REQUESTER = "trainyard (after training)"


def _population(users):
    """`users`: a list of ids / instances, ALL_USERS, or a file of them (gs:// or a local path, one a line)."""
    if isinstance(users, str):
        if users != ALL_USERS and not users.startswith(data_access.GS) and not users.startswith("/"):
            raise ValueError(f"give {ALL_USERS!r}, a list of user ids, or a gs:// file of them (one a line)")
        return users
    for user in users:
        if isinstance(user, str) and not user.strip():
            raise ValueError("a user id is not empty")
        if isinstance(user, dict) and not user:
            raise ValueError("an instance names at least one feature")
    return users


class _BatchOutputs(BaseModel):
    """What a batch prediction writes: the one validation of a request by hand (POST …/batch-predictions)
    and of a run's or schedule's batch_prediction_config."""
    model_config = ConfigDict(extra="forbid")
    k: int = Field(10, ge=1, le=MODEL_TOP_K, description="items per user (at most the model's K)")
    gcs_output: Optional[str] = Field(None, description="gs:// prefix under one of the team's buckets (JSONL)")
    bigquery_output: Optional[str] = Field(None, description="`project.dataset` of the team: Vertex writes a "
                                                             "predictions table there")

    @model_validator(mode="after")
    def _an_output(self):
        if not self.gcs_output and not self.bigquery_output:
            raise ValueError("give gcs_output and/or bigquery_output")
        return self


USERS_DOC = (f"{ALL_USERS!r}: every user of the run's data (the user ids its Transform saw); a gs:// file of user ids "
             "(or JSON instances), one a line, under one of the team's buckets; or, by hand, the list itself")


class BatchPredictionBody(_BatchOutputs):
    users: Union[str, list[Union[str, dict]]] = Field(
        ..., description=USERS_DOC + " (ids in the run's user id column, or whole instances ({feature: value}) "
                                     "when the serving signature needs more query features than the id)")

    @field_validator("users")
    @classmethod
    def _ids(cls, users):
        if isinstance(users, list) and not 1 <= len(users) <= MAX_USERS:
            raise ValueError(f"list between 1 and {MAX_USERS} users (more: a file of them)")
        return _population(users)


class BatchPredictionConfig(_BatchOutputs):
    """A run's (or a schedule's run_template's) batch predictions after a blessed run registered its model."""
    users: str = Field(ALL_USERS, description=USERS_DOC)

    @field_validator("users")
    @classmethod
    def _from(cls, users):
        return _population(users)


def check_population(team: Optional[teams.Team], users, field: str = "users") -> None:
    """A file of users is read by the run-commands consumer with Trainyard's identity: it must lie under
    the team's buckets (as an output does), so nobody reads another team's files through a batch job."""
    if not isinstance(users, str) or users == ALL_USERS or team is None:
        return
    if not users.startswith(data_access.GS):
        if teams.ANYTHING not in team.buckets:
            raise FieldError.one(field, "a local file is read only by the local stack")
    elif not data_access.under_buckets(team.buckets, users):
        raise FieldError.one(field, f"{users} is not under a bucket team {team.name!r} may use "
                                    f"(its buckets: {', '.join(team.buckets) or 'none declared'})")


def machine_count(users: int) -> int:
    return max(1, min(MAX_REPLICAS, math.ceil(users / USERS_PER_REPLICA)))


def check_outputs(team: Optional[teams.Team], gcs_output: Optional[str], bigquery_output: Optional[str],
                  prefix: str = "") -> dict:
    """The outputs, normalised, when the run's team may write them; FieldError (400) naming the field (under
    `prefix`: batch_prediction_config.) otherwise. `team` None: a run of no team (a platform admin's)."""
    try:
        return _outputs(team, gcs_output, bigquery_output)
    except FieldError as exc:
        raise FieldError([{**e, "field": prefix + e["field"]} for e in exc.errors]) from None


def _outputs(team: Optional[teams.Team], gcs_output: Optional[str], bigquery_output: Optional[str]) -> dict:
    outputs = {}
    if gcs_output:
        try:
            uri = data_access.file_uri(gcs_output)
        except ValueError as exc:
            raise FieldError.one("gcs_output", str(exc)) from None
        if not uri.startswith(data_access.GS):
            if team is not None and teams.ANYTHING not in team.buckets:
                raise FieldError.one("gcs_output", "a local path is written only by the local stack "
                                                   f"(the team's buckets: {', '.join(team.buckets) or 'none declared'})")
        elif team is not None and not data_access.under_buckets(team.buckets, uri):
            raise FieldError.one("gcs_output", f"{uri} is not under a bucket team {team.name!r} may use "
                                               f"(its buckets: {', '.join(team.buckets) or 'none declared'})")
        outputs[GCS] = uri.rstrip("/")
    if bigquery_output:
        parts = bigquery_output.split(".")
        if len(parts) != 2:
            raise FieldError.one("bigquery_output", "name a dataset as project.dataset (Vertex writes a predictions "
                                                    "table in it)")
        try:
            ref = data_access.table_ref(f"{bigquery_output}.predictions")
        except ValueError as exc:
            raise FieldError.one("bigquery_output", str(exc)) from None
        if team is not None and not teams.allows(team.datasets, ref.dataset_path):
            raise FieldError.one("bigquery_output", f"the dataset {ref.dataset_path} is not one team {team.name!r} "
                                                    f"may use (its datasets: {', '.join(team.datasets) or 'none declared'})")
        outputs[BIGQUERY] = ref.dataset_path
    return outputs


def instances(users: list, user_column: str) -> list[dict]:
    """The serving signature's instances: an id becomes {user_column: id}; an instance is kept."""
    return [user if isinstance(user, dict) else {user_column: user} for user in users]


def fingerprint(users: list, k: int, outputs: dict) -> str:
    """What was asked, as one value: an identical repeat is a no-op, a different one while running a 409."""
    text = json.dumps({"users": users, "k": k, "outputs": outputs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def input_uri(artifacts_path: str, batch_id: str) -> str:
    return f"{artifacts_path.rstrip('/')}/batch_predictions/{batch_id}/instances.jsonl"


def predictable(doc: dict) -> bool:
    """A run with a registered model (completed, or not_blessed and pushed anyway) and its files."""
    return doc["status"] in runs.DEPLOYABLE and bool(doc.get("vertex_model_resource_name")) and bool(doc.get("gcs_artifacts_path"))


def _with(doc: dict, batch: dict) -> dict:
    """The run with `batch`, and its status copied to the top level (`batch_prediction_status`: the reconciler's
    query for batches left running, shared/services/reconcile.py)."""
    return {**doc, "batch_prediction": batch, "batch_prediction_status": batch["status"]}


def request(doc: dict, batch_id: str, asked: dict, by: str, at: datetime, automatic: bool = False) -> Optional[dict]:
    """The run with a batch prediction under way (`asked`: users count, k, outputs, fingerprint, input_uri, and
    users_from when the users are read from a file or the run's data by the consumer); None when the same one
    is under way or done (after training: when any batch prediction is on the run already). Conflict when the
    run has no registered model or another batch prediction runs."""
    ongoing = doc.get("batch_prediction") or {}
    if automatic and ongoing:
        return None
    if not predictable(doc):
        raise Conflict(f"run {doc['id']} has no registered model to predict with (it is {doc['status']})")
    if ongoing.get("status") in (RUNNING, SUCCEEDED) and ongoing.get("fingerprint") == asked["fingerprint"]:
        return None
    if ongoing.get("status") == RUNNING:
        raise Conflict(f"run {doc['id']} is writing batch predictions {ongoing['id']}; wait for them to finish")
    batch = {"id": batch_id, "status": RUNNING, "requested_by": by, "requested_at": at, "automatic": automatic,
             "model_resource_name": doc["vertex_model_resource_name"], "model_version_id": str(doc["vertex_model_version"]),
             "machine_count": machine_count(asked["users"]), "users_from": asked.get("users_from"),
             "outputs": {kind: {"destination": where, "job": None, "state": None, "location": None,
                                "rows": 0, "failed_rows": 0} for kind, where in asked["outputs"].items()},
             **{k: asked[k] for k in ("users", "k", "fingerprint", "input_uri")}}
    return _with(doc, batch)


def not_after_training(doc: dict) -> Optional[str]:
    """Why a run that ended asking for batch predictions after training gets none (None: it gets them)."""
    if doc.get("status") == runs.NOT_BLESSED or doc.get("is_blessed") is False:
        reason = ((doc.get("evaluation_results") or {}).get("reason") or "its model did not pass the gate")
        return f"not written: the run is not blessed ({reason}); a model pushed anyway is predicted with by hand"
    if not predictable(doc):
        return "not written: the run registered no model to predict with"
    return None


def skipped(doc: dict, batch_id: str, reason: str, at: datetime) -> Optional[dict]:
    """After training, no batch predictions, and why (kept on the run); None when one is on the run already."""
    if doc.get("batch_prediction"):
        return None
    return _with(doc, {"id": batch_id, "status": SKIPPED, "automatic": True, "requested_at": at,
                       "requested_by": AUTOMATIC_REQUESTER, "error": reason, "finished_at": at})


def mark_queued(doc: dict, batch_id: str, at: datetime) -> Optional[dict]:
    """The automatic batch's command went out (`queued_at`, once): a redelivered final event sends nothing more."""
    ongoing = doc.get("batch_prediction") or {}
    queued = claims.done(ongoing, at, done_at="queued_at") if ongoing.get("id") == batch_id else None
    return None if queued is None else _with(doc, queued)


def resolved(doc: dict, batch_id: str, users: int) -> Optional[dict]:
    """The users read from a file or the run's data and written as the job's input: their count and machines."""
    ongoing = doc.get("batch_prediction") or {}
    if ongoing.get("id") != batch_id or ongoing.get("status") != RUNNING:
        return None
    return _with(doc, {**ongoing, "users": users, "machine_count": machine_count(users), "input_written": True})


def record(doc: dict, batch_id: str, kind: Optional[str], changes: dict) -> Optional[dict]:
    """What the consumer found about one output (`kind`) or the whole batch (`kind` None); the batch's
    status follows its outputs: succeeded when all did, failed when one failed. None when that batch is
    no longer under way — except for an output still running when another failed: its job goes on writing,
    so its end (rows, where) is still recorded, the batch staying failed."""
    ongoing = doc.get("batch_prediction") or {}
    if ongoing.get("id") != batch_id:
        return None
    if ongoing.get("status") != RUNNING:
        output = (ongoing.get("outputs") or {}).get(kind) if kind else None
        if ongoing.get("status") != FAILED or output is None or output.get("state") in (SUCCEEDED, FAILED):
            return None
        return {**doc, "batch_prediction": {**ongoing, "outputs": {**ongoing["outputs"], kind: {**output, **changes}}}}
    if kind is None:
        return _with(doc, {**ongoing, **changes})
    outputs = {**ongoing["outputs"], kind: {**ongoing["outputs"][kind], **changes}}
    batch = {**ongoing, "outputs": outputs}
    states = [o.get("state") for o in outputs.values()]
    if any(s == FAILED for s in states):
        batch.update(status=FAILED, error=next(o.get("error") for o in outputs.values() if o.get("state") == FAILED),
                     finished_at=changes.get("finished_at"))
    elif all(s == SUCCEEDED for s in states):
        batch.update(status=SUCCEEDED, finished_at=changes.get("finished_at"))
    return _with(doc, batch)
