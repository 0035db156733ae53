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

from shared.domain import data_access, runs, teams
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


class BatchPredictionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[Union[str, dict]] = Field(..., min_length=1, max_length=MAX_USERS,
                                          description="user ids (the run's user id column), or whole instances "
                                                      "({feature: value}) when the serving signature needs more "
                                                      "query features than the id")
    k: int = Field(10, ge=1, le=MODEL_TOP_K, description="items per user (at most the model's K)")
    gcs_output: Optional[str] = Field(None, description="gs:// prefix under one of the team's buckets (JSONL)")
    bigquery_output: Optional[str] = Field(None, description="`project.dataset` of the team: Vertex writes a "
                                                             "predictions table there")

    @field_validator("users")
    @classmethod
    def _ids(cls, users):
        for user in users:
            if isinstance(user, str) and not user.strip():
                raise ValueError("a user id is not empty")
            if isinstance(user, dict) and not user:
                raise ValueError("an instance names at least one feature")
        return users

    @model_validator(mode="after")
    def _an_output(self):
        if not self.gcs_output and not self.bigquery_output:
            raise ValueError("give gcs_output and/or bigquery_output")
        return self


def machine_count(users: int) -> int:
    return max(1, min(MAX_REPLICAS, math.ceil(users / USERS_PER_REPLICA)))


def check_outputs(team: Optional[teams.Team], gcs_output: Optional[str], bigquery_output: Optional[str]) -> dict:
    """The outputs, normalised, when the run's team may write them; FieldError (400) naming the field otherwise.
    `team` None: a run of no team (a platform admin's): nothing more to limit."""
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


def request(doc: dict, batch_id: str, asked: dict, by: str, at: datetime) -> Optional[dict]:
    """The run with a batch prediction under way (`asked`: users count, k, outputs, fingerprint, input_uri);
    None when the same one is under way or done. Conflict when the run has no registered model or another
    batch prediction runs."""
    if not predictable(doc):
        raise Conflict(f"run {doc['id']} has no registered model to predict with (it is {doc['status']})")
    ongoing = doc.get("batch_prediction") or {}
    if ongoing.get("status") in (RUNNING, SUCCEEDED) and ongoing.get("fingerprint") == asked["fingerprint"]:
        return None
    if ongoing.get("status") == RUNNING:
        raise Conflict(f"run {doc['id']} is writing batch predictions {ongoing['id']}; wait for them to finish")
    batch = {"id": batch_id, "status": RUNNING, "requested_by": by, "requested_at": at,
             "model_resource_name": doc["vertex_model_resource_name"], "model_version_id": str(doc["vertex_model_version"]),
             "machine_count": machine_count(asked["users"]),
             "outputs": {kind: {"destination": where, "job": None, "state": None, "location": None,
                                "rows": 0, "failed_rows": 0} for kind, where in asked["outputs"].items()},
             **{k: asked[k] for k in ("users", "k", "fingerprint", "input_uri")}}
    return {**doc, "batch_prediction": batch}


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
        return {**doc, "batch_prediction": {**ongoing, **changes}}
    outputs = {**ongoing["outputs"], kind: {**ongoing["outputs"][kind], **changes}}
    batch = {**ongoing, "outputs": outputs}
    states = [o.get("state") for o in outputs.values()]
    if any(s == FAILED for s in states):
        batch.update(status=FAILED, error=next(o.get("error") for o in outputs.values() if o.get("state") == FAILED),
                     finished_at=changes.get("finished_at"))
    elif all(s == SUCCEEDED for s in states):
        batch.update(status=SUCCEEDED, finished_at=changes.get("finished_at"))
    return {**doc, "batch_prediction": batch}
