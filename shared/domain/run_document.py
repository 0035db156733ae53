"""The run document: every key a training run carries in Firestore, typed, in one place.

`TrainingRun` declares the document; `new_run` builds a new one (shared/services/run_builder.py hands it
the resolved request), `check` is what both repositories call on every run they write (an undeclared key
or a wrong type raises RunDocumentError naming the key), and `TrainingRun.from_document` gives readers
fields instead of `doc["…"]`.

Versioned: a document carries `schema_version`. One written before the version existed is version 1,
the shape declared here; `upgrade` is where a later version's migration of older documents goes, and
the repositories write every run upgraded. Declared fields are all optional (None when absent) because
documents of every age must read; `new_run` is what sets a new run's full shape.

Adding a field: declare it here (a nested model when its value is a structured object), set it where
the system writes it, and read it through the model. docs/architecture.md "The run document".
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.contract.nodes import STAGES
from shared.domain.warm_start import WarmSource, WarmStartRecord
from shared.domain import run_search

SCHEMA_VERSION = 1


class RunDocumentError(Exception):
    """A run document that does not fit the declaration: a programming error, never a user's (so not a
    ValueError, which some callers read as bad input)."""


class _Part(BaseModel):
    # Unknown keys fail: a writer that drifts from the declared shape is caught on its first write.
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=True)


# --------------------------------------------------------------------------- nested parts


class CatalogRef(_Part):
    """The dataset, feature config or model config the run was made from, by id and the name it had."""
    id: str
    name: str


class BaseExperimentSummary(_Part):
    id: str
    number: Optional[int] = None
    name: str
    display_name: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    saved_model_uri: Optional[str] = None


class DataTriggerRecord(_Part):
    """What started a data-triggered run (shared/domain/data_triggers.DataEvent.record)."""
    source: str  # gcs | bigquery | folder
    location: str  # gs://bucket/object, project.dataset.table, or a file's path
    version: str  # the object's generation, the BigQuery job id, or the file's mtime (ns)
    occurred_at: datetime
    received_at: datetime


class Trigger(_Part):
    """What started the run's current attempt (shared/domain/triggers.py): a person through the API or the CLI,
    a schedule's clock, run now, new data (the event), a retry or a GPU fallback."""
    kind: str  # manual | schedule | run_now | data | retry | gpu_fallback
    at: datetime
    by: Optional[str] = None  # a person, or "trainyard (schedule)" / "trainyard (gpu fallback)"
    via: Optional[str] = None  # manual: cli | api (the client that asked)
    attempt: int = 1  # the attempt it started
    schedule_id: Optional[str] = None
    slot: Optional[datetime] = None  # a schedule's: the slot it fired for
    data: Optional[DataTriggerRecord] = None  # new data: the object, table or file that landed
    first: Optional[dict[str, Any]] = None  # a retry's or fallback's: what started the run's first attempt


class StageDetail(_Part):
    """One pipeline stage (shared/contract/nodes.py STAGES) as shared/domain/runs.py moves it."""
    name: str
    status: str
    duration_seconds: Optional[float] = None
    started_at: Optional[datetime] = None
    completed_at: Optional[datetime] = None
    duration: Optional[str] = None  # duration_seconds for people ("1m 5s")


class Attempt(_Part):
    """One attempt's claim and outcome; the finished ones stay when the run is retried."""
    attempt: int
    status: Optional[str] = None
    claimed_at: Optional[datetime] = None  # the submit claim's lease (shared/domain/claims.py, runs.claim_submit)
    job_name: Optional[str] = None
    submitted_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    error_stage: Optional[str] = None
    error_message: Optional[str] = None
    error_details: Optional[dict[str, Any]] = None
    cancelled_at_stage: Optional[str] = None
    cancelled_at_epoch: Optional[int] = None
    cancelled_by: Optional[str] = None
    retried_by: Optional[str] = None
    retried_at: Optional[datetime] = None
    retry_changes: Optional[dict[str, Any]] = None
    # GPU fallback (shared/domain/gpu_fallback.py): what the attempt ran on, and quota/capacity/preempted
    # when Vertex could not give it its machines.
    shape: Optional[dict[str, Any]] = None
    ended_because: Optional[str] = None


class LastRetry(_Part):
    attempt: int
    by: str
    at: datetime
    changes: dict[str, Any] = Field(default_factory=dict)


class EvaluationResults(_Part):
    """The evaluator's verdict (shared/contract/results.py Evaluation), as the run keeps it: a completed run
    copies these fields of the Evaluation (runs.EVALUATION_FIELDS, held equal to these by a test)."""
    blessed: Optional[bool] = None
    passed: Optional[bool] = None
    threshold_metric: Optional[str] = None
    threshold_value: Optional[float] = None
    actual_value: Optional[float] = None
    evaluator_enabled: Optional[bool] = None
    baseline_metrics: Optional[dict[str, float]] = None
    baseline_value: Optional[float] = None
    lift_percent: Optional[float] = None
    required_lift_percent: Optional[float] = None
    ease_value: Optional[float] = None  # EASE's value of the gate metric; None when EASE was not scored
    lift_over_ease_percent: Optional[float] = None
    required_lift_over_ease_percent: Optional[float] = None
    ease_skipped_reason: Optional[str] = None
    # Champion vs challenger (pipeline_compiler/evaluation.py): the champion's figure on the same test split.
    champion_model: Optional[str] = None
    champion_version: Optional[str] = None
    champion_source: Optional[str] = None  # "endpoint E" or "registry default"
    champion_metrics: Optional[dict[str, float]] = None
    champion_value: Optional[float] = None
    champion_tolerance: Optional[float] = None
    champion_required_value: Optional[float] = None
    champion_error: Optional[str] = None  # why it was not scored: the threshold alone decided
    reason: Optional[str] = None  # the verdict in words


class Canary(_Part):
    """A staged deploy (shared/domain/canary.py): its limits, then its watch and what it decided."""
    percent: int
    watch_minutes: int
    max_error_rate: float
    max_p95_latency_ms: Optional[float] = None
    min_requests: int
    status: Optional[str] = None  # watching → promoted | breached | stopped (rolled back by hand)
    watch_started_at: Optional[datetime] = None
    watch_until: Optional[datetime] = None
    last_check: Optional[dict[str, Any]] = None  # requests, errors, error_rate, p95_latency_ms, at
    checks: Optional[int] = None
    decided_at: Optional[datetime] = None
    reason: Optional[str] = None


class Rollback(_Part):
    """Traffic sent back to the split before the deploy (shared/services/actions/rollback.py)."""
    requested_by: str
    requested_at: datetime
    reason: str
    automatic: bool = False
    from_status: Optional[str] = None
    error: Optional[str] = None
    failed_at: Optional[datetime] = None
    done_at: Optional[datetime] = None


class TrafficChange(_Part):
    """One traffic change of the run's endpoint (`endpoint_history`): who or what, when, from → to, why."""
    at: datetime
    by: str
    action: str  # deployed, canary_started, promoted, rolled_back; traffic_changed, undeployed (by hand, on the endpoint)
    endpoint: Optional[str] = None
    deployed_model_id: Optional[str] = None
    from_: dict[str, int] = Field(default_factory=dict, alias="from")
    to: dict[str, int] = Field(default_factory=dict)
    reason: Optional[str] = None
    change_id: Optional[str] = None  # a change made on the endpoint by hand: recorded once per change


class Deployment(_Part):
    """The run's deployment (shared/domain/deployments.py; shared/services/actions/deploy.py asks for it and does it)."""
    id: str
    status: str
    endpoint_id: Optional[str] = None
    endpoint_name: Optional[str] = None
    traffic_split: Optional[int] = None
    model_resource_name: Optional[str] = None
    # int, str, in this order and written flat, as schedules.day_of_week (see there: typing's union cache).
    model_version_id: Union[int, str, None] = None
    requested_by: Optional[str] = None
    requested_at: Optional[datetime] = None
    automatic: bool = False
    queued_at: Optional[datetime] = None  # the automatic deploy's command went out (its ledger)
    operation: Optional[str] = None  # Vertex's long-running operation, followed by a redelivery
    error: Optional[str] = None
    failed_at: Optional[datetime] = None
    endpoint_resource_name: Optional[str] = None
    deployed_model_id: Optional[str] = None
    traffic: Optional[dict[str, Any]] = None
    predict_url: Optional[str] = None
    console_url: Optional[str] = None
    deployed_at: Optional[datetime] = None
    canary: Optional[Canary] = None
    previous_traffic: Optional[dict[str, int]] = None  # the endpoint's split before this deploy
    rollback: Optional[Rollback] = None


class BatchOutput(_Part):
    """One destination of a batch prediction and the job writing it (shared/domain/batch_predictions.py)."""
    destination: str  # gs://prefix or project.dataset
    job: Optional[str] = None  # the Vertex BatchPredictionJob (locally: the output directory)
    state: Optional[str] = None  # running, succeeded, failed
    location: Optional[str] = None  # where the rows are: a gs:// directory or a BigQuery table
    rows: int = 0
    failed_rows: int = 0
    error: Optional[str] = None
    finished_at: Optional[datetime] = None


class BatchPrediction(_Part):
    """Top-K for a list of users (shared/services/actions/batch_predict.py asks for it and does it)."""
    id: str
    status: str  # running, succeeded, failed; skipped (after training: not blessed, `error` says why)
    requested_by: Optional[str] = None
    requested_at: Optional[datetime] = None
    model_resource_name: Optional[str] = None
    model_version_id: Optional[str] = None
    users: int = 0
    k: int = 10
    machine_count: int = 1
    fingerprint: Optional[str] = None
    input_uri: Optional[str] = None
    automatic: bool = False  # asked by batch_prediction_config after training (requested_by says so)
    queued_at: Optional[datetime] = None  # the automatic batch's command went out (its ledger)
    users_from: Optional[str] = None  # "all" or a file: the consumer reads the users and writes the input
    input_written: Optional[bool] = None  # users_from read: `users` counts them
    outputs: dict[str, BatchOutput] = Field(default_factory=dict)  # "gcs" / "bigquery" →
    error: Optional[str] = None
    finished_at: Optional[datetime] = None


class PushAnyway(_Part):
    """A not_blessed run's model registered anyway (shared/services/actions/push_anyway.py)."""
    status: str
    requested_by: Optional[str] = None
    requested_at: Optional[datetime] = None
    error: Optional[str] = None
    pushed_at: Optional[datetime] = None
    model_resource_name: Optional[str] = None
    model_version_id: Optional[int | str] = None


class SpendEstimate(_Part):
    """shared/domain/spend.py RunCost.as_dict."""
    gpu_hours: float
    usd: float
    gpus: int
    train_hours: float
    method: str


class Spend(_Part):
    """Where the run's estimate is reserved: its team's ledger for the month (shared/services/spending.py)."""
    team: str
    month: str
    key: str
    estimate: SpendEstimate


class Approval(_Part):
    """A run above its team's per-run cap: why it waits, and the team admin's answer."""
    reason: Optional[str] = None
    estimate: Optional[SpendEstimate] = None
    requested_at: Optional[datetime] = None
    approved_by: Optional[str] = None
    approved_at: Optional[datetime] = None
    rejected_by: Optional[str] = None
    rejected_at: Optional[datetime] = None
    reason_given: Optional[str] = None


class NotificationSent(_Part):
    """One (attempt, event, target) of the notification ledger (shared/services/actions/notify.py)."""
    status: str  # sending, sent or failed
    at: Optional[datetime] = None
    claimed_at: Optional[datetime] = None  # its claim (shared/domain/claims.py), released after a failure
    sent_at: Optional[datetime] = None  # the claim done: sent, never again
    error: Optional[str] = None
    tries: int = 0


class DataCoercion(_Part):
    """shared/contract/results.py DataCoercion as the run keeps it (with its warning line)."""
    column: str
    feature: str
    transform: str
    count: int
    rows: int
    exact: bool = True
    examples: list[str] = Field(default_factory=list)
    warning: Optional[str] = None


class EstimatedCost(_Part):
    """shared/domain/cost.estimate."""
    currency: str
    total: float
    attempt_total: float
    earlier_attempts_total: float
    pipeline_run_fee: float
    region: str
    region_priced: bool
    attempt: int
    spot: bool
    data_runner: str
    stages: list[dict[str, Any]]
    unpriced: list[str]
    partial: bool
    prices_as_of: str
    upper_bound: bool


class GpuFallback(_Part):
    shapes: list[dict[str, Any]] = Field(default_factory=list)
    stopped: Optional[str] = None


# --------------------------------------------------------------------------- the document


class TrainingRun(_Part):
    """A training run as stored in `training_runs/{id}`."""

    schema_version: Optional[int] = None  # absent: written before versions (1)
    # The repository's own: the document id, the run's number under its model, the write counter.
    id: Optional[str] = None
    run_number: Optional[int] = None
    version: Optional[int] = None
    updated_at: Optional[datetime] = None

    # What was asked for (shared/services/run_builder.py)
    name: Optional[str] = None
    description: Optional[str] = None
    team: Optional[str] = None
    ml_model: Optional[str] = None
    model_type: Optional[str] = None
    base_experiment: Optional[BaseExperimentSummary] = None
    dataset_id: Optional[str] = None
    dataset: Optional[CatalogRef] = None
    feature_config_id: Optional[str] = None
    feature_config: Optional[CatalogRef] = None
    model_config_id: Optional[str] = None
    model_config_ref: Optional[CatalogRef] = Field(None, alias="model_config")  # `model_config` is pydantic's
    # The request's configs as validated when the run was made (shared/domain/run_config.py and
    # shared/domain/notifications.py declare them): kept as stored, so a config older than its model still reads.
    training_params: Optional[dict[str, Any]] = None
    gpu_config: Optional[dict[str, Any]] = None
    evaluator_config: Optional[dict[str, Any]] = None
    deployment_config: Optional[dict[str, Any]] = None
    batch_prediction_config: Optional[dict[str, Any]] = None  # batch predictions after a blessed run
    notifications: Optional[dict[str, Any]] = None
    created_at: Optional[datetime] = None
    created_by: Optional[str] = None
    # Lowercase prefixes of its id, name, description, model and creator (shared/domain/run_search.py),
    # recomputed on every write by `check`: GET /api/training-runs?search= asks Firestore for one.
    search_tokens: Optional[list[str]] = None
    schedule_id: Optional[str] = None
    scheduled_at: Optional[datetime] = None
    triggered_by: Optional[str] = None  # a schedule's run: "schedule" (a slot), "manual" (run now) or "data"
    # --- issue 27 part 3 (training when new data lands): the event that started a data-triggered run
    data_trigger: Optional[DataTriggerRecord] = None
    trigger: Optional[Trigger] = None  # what started the current attempt, for every run (the one block to read)

    # Where it is (shared/domain/runs.py)
    status: Optional[str] = None
    attempt: Optional[int] = None
    attempts: Optional[list[Attempt]] = None
    last_retry: Optional[LastRetry] = None
    stage_details: Optional[list[StageDetail]] = None
    current_stage: Optional[str] = None
    current_epoch: Optional[int] = None
    total_epochs: Optional[int] = None
    progress_percent: Optional[int] = None
    progress_written_at: Optional[datetime] = None
    vertex_pipeline_job_name: Optional[str] = None
    gcs_artifacts_path: Optional[str] = None
    started_at: Optional[datetime] = None
    completed_at: Optional[datetime] = None
    duration_seconds: Optional[float] = None
    warnings: Optional[list[str]] = None
    data_coercions: Optional[list[DataCoercion]] = None
    error_message: Optional[str] = None
    error_stage: Optional[str] = None
    error_details: Optional[dict[str, Any]] = None
    cancelled_by: Optional[str] = None
    cancel_requested_at: Optional[datetime] = None
    cancel_requested_in: Optional[str] = None
    cancelled_at_stage: Optional[str] = None
    cancelled_at_epoch: Optional[int] = None

    # What it produced
    live_metrics: Optional[dict[str, Optional[float]]] = None  # the last epoch's: loss, val_loss, learning_rate, …
    # The Vertex TensorBoard experiment of the attempt's Trainer (…/tensorboards/T/experiments/J), as its
    # first recorded epoch names it: the run view links to it (a local run has none: `trainyard runs tensorboard`).
    tensorboard_experiment: Optional[str] = None
    # Why the current attempt's Trainer uploads nothing to the deployment's TensorBoard instance (a GPU fallback
    # moved it to another region: gpu_fallback.tensorboard_skipped), set at each submit; the run view shows it.
    tensorboard_upload_skipped: Optional[str] = None
    metrics: Optional[dict[str, float]] = None  # training's final and the evaluation's
    # The headline metrics, also top-level so Firestore can order and the dashboard show them.
    loss: Optional[float] = None
    recall_at_5: Optional[float] = None
    recall_at_10: Optional[float] = None
    recall_at_50: Optional[float] = None
    recall_at_100: Optional[float] = None
    rmse: Optional[float] = None
    mae: Optional[float] = None
    test_rmse: Optional[float] = None
    test_mae: Optional[float] = None
    stopped_early: Optional[bool] = None
    is_blessed: Optional[bool] = None
    evaluation_results: Optional[EvaluationResults] = None
    artifacts: Optional[dict[str, str]] = None  # name → URI (shared/contract/results.py ArtifactLocations)
    vertex_model_name: Optional[str] = None
    vertex_model_resource_name: Optional[str] = None
    vertex_model_version: Optional[int | str] = None
    estimated_cost: Optional[EstimatedCost] = None

    # After training: deployment and push anyway (with their top-level copies, which lists filter on)
    deployment: Optional[Deployment] = None
    deployment_status: Optional[str] = None
    is_deployed: Optional[bool] = None
    endpoint_resource_name: Optional[str] = None
    deployed_at: Optional[datetime] = None
    endpoint_history: Optional[list[TrafficChange]] = None
    push_anyway: Optional[PushAnyway] = None
    pushed_anyway: Optional[bool] = None
    notifications_sent: Optional[dict[str, NotificationSent]] = None  # ledger key (notifications.ledger_key) →

    # Batch recommendations (shared/services/actions/batch_predict.py)
    batch_prediction: Optional[BatchPrediction] = None
    batch_prediction_status: Optional[str] = None  # its status, top-level for the reconciler's query

    # The team's money (shared/services/spending.py)
    spend: Optional[Spend] = None
    approval: Optional[Approval] = None

    # Deletion (shared/domain/runs.py: soft delete, restore, purge)
    deleted: Optional[bool] = None
    deleted_at: Optional[datetime] = None
    deleted_by: Optional[str] = None
    purge_after: Optional[datetime] = None
    restored_at: Optional[datetime] = None
    restored_by: Optional[str] = None
    purging: Optional[bool] = None
    purge_started_at: Optional[datetime] = None

    # GPU fallback (shared/domain/gpu_fallback.py): the shapes in the order the run started with, and why
    # the fallback stopped before or at the list's end.
    gpu_fallback: Optional[GpuFallback] = None

    # --- issue 27 part 7 (warm starts, shared/domain/warm_start.py): the source resolved when the run was
    # built (a champion's is found when it trains), and what training actually started from.
    warm_source: Optional[WarmSource] = None
    warm_start: Optional[WarmStartRecord] = None

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: Optional[str]) -> Optional[str]:
        from shared.domain import runs  # imported here: runs.py may come to build on this module

        if value is not None and value not in runs.STATUSES:
            raise ValueError(f"{value!r} is not a run status ({', '.join(runs.STATUSES)})")
        return value

    @classmethod
    def from_document(cls, doc: dict) -> "TrainingRun":
        """The stored document (of any version) as the current model; RunDocumentError when it does not fit."""
        try:
            return cls.model_validate(upgrade(doc))
        except ValidationError as exc:
            raise RunDocumentError(_explain(exc, doc.get("id"))) from None

    def to_document(self) -> dict:
        """The dict Firestore stores: only the keys that were set, under their stored names."""
        return self.model_dump(by_alias=True, exclude_unset=True)


def upgrade(doc: dict) -> dict:
    """A stored document in the current schema version. Version 1 is the first: a document without
    `schema_version` has the same shape, so it only gains the number. A later version migrates here."""
    if doc.get("schema_version") == SCHEMA_VERSION:
        return doc
    if doc.get("schema_version") not in (None, SCHEMA_VERSION):
        raise RunDocumentError(f"run {doc.get('id')}: schema_version {doc['schema_version']!r} is newer than "
                               f"this code's {SCHEMA_VERSION}")
    return {**doc, "schema_version": SCHEMA_VERSION}


def check(doc: dict) -> dict:
    """What a repository stores for a run it writes: the document upgraded to the current version, with
    its search tokens as its fields are now, after checking every key against the declaration
    (RunDocumentError names each misfit). Every create and every change (run_writes) passes here."""
    doc = run_search.indexed(upgrade(doc))
    try:
        TrainingRun.model_validate(doc)
    except ValidationError as exc:
        raise RunDocumentError(_explain(exc, doc.get("id"))) from None
    return doc


def _explain(exc: ValidationError, run_id: Optional[str]) -> str:
    problems = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors())
    return f"run document {run_id or '(new)'} does not fit shared/domain/run_document.py: {problems}"


def declared_keys() -> frozenset[str]:
    """Every top-level key a run document may carry, under its stored name."""
    return frozenset(field.alias or name for name, field in TrainingRun.model_fields.items())


def new_run(*, name: str, description: str, team: Optional[str], model_type: str,
            base_experiment: Optional[dict], dataset: dict, feature_config: dict, model_config: dict,
            training_params: dict, gpu_config: dict, evaluator_config: dict, deployment_config: dict,
            notifications: Optional[dict], scheduled_at: Optional[datetime], created_at: datetime,
            created_by: str, batch_prediction_config: Optional[dict] = None,
            warm_source: Optional[dict] = None) -> TrainingRun:
    """A new run, pending its first attempt, from the resolved parts of a create request (the catalog
    documents it was made from by id and name; the validated configs as JSON)."""
    from shared.domain import runs, triggers  # imported here: runs.py may come to build on this module

    def ref(catalog_doc: dict) -> CatalogRef:
        return CatalogRef(id=catalog_doc["id"], name=catalog_doc["name"])

    return TrainingRun(
        schema_version=SCHEMA_VERSION,
        name=name, description=description, team=team, ml_model=name, model_type=model_type,
        status=runs.PENDING, attempt=1, attempts=[],
        base_experiment=base_experiment,
        dataset_id=dataset["id"], dataset=ref(dataset),
        feature_config_id=feature_config["id"], feature_config=ref(feature_config),
        model_config_id=model_config["id"], model_config=ref(model_config),
        training_params=training_params, gpu_config=gpu_config, evaluator_config=evaluator_config,
        deployment_config=deployment_config, batch_prediction_config=batch_prediction_config,
        notifications=notifications, warm_source=warm_source, scheduled_at=scheduled_at, schedule_id=None,
        stage_details=runs.initial_stages(), current_stage=STAGES[0], current_epoch=None,
        total_epochs=training_params.get("epochs"), progress_percent=0,
        vertex_pipeline_job_name="", gcs_artifacts_path="",
        metrics={}, live_metrics={}, is_blessed=None, evaluation_results={}, artifacts={}, warnings=[],
        error_message="", error_stage="", error_details={},
        created_at=created_at, created_by=created_by, started_at=None, completed_at=None, duration_seconds=None,
        trigger=triggers.manual(created_by, created_at),  # a schedule's run says otherwise (shared/services/scheduling.py)
    )
