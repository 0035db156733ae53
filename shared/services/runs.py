"""Training-run services: create (validate, inherit, default, number, queue), list, get, delete, submit."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared import runs
from shared.catalog import FeatureConfig, ModelConfig, ModelType, towers_mismatch
from shared.doc_ids import DocumentId, is_valid_id
from shared.errors import Conflict, FieldError, NotFound
from shared.messaging import Publisher
from shared.notifications import NotificationConfig
from shared.repository import Repository
from shared.run_config import (METRICS_FOR_MODEL_TYPE, BlessingThreshold, DeploymentConfig, EvaluatorConfig, GpuConfig,
                               TrainingParams)
from shared.services.queueing import publish_submit
from shared.validation import parse

DEFAULT_RECALL_THRESHOLD = 0.40  # Appendix B
RANKING_THRESHOLD_SLACK = 1.10  # ranking default gate: within 10% of the base experiment's test RMSE


class CreateRunRequest(BaseModel):
    """The body of POST /api/training-runs (spec §7.5). Omitted parts are inherited or defaulted."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = Field(..., description="3–63 characters: lowercase letters, digits and hyphens, starting with a "
                                       "letter; becomes the model's name in the registry",
                      json_schema_extra={"pattern": runs.NAME_PATTERN.pattern, "minLength": 3, "maxLength": 63})
    description: str = Field("", max_length=2000)
    base_experiment_id: Optional[DocumentId] = None
    model_type: Optional[ModelType] = None
    dataset_id: Optional[DocumentId] = None
    feature_config_id: Optional[DocumentId] = None
    model_config_id: Optional[DocumentId] = None
    training_params: dict[str, Any] = Field(default_factory=dict)
    gpu_config: GpuConfig = Field(default_factory=GpuConfig)
    evaluator_config: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    deployment_config: DeploymentConfig = Field(default_factory=DeploymentConfig)
    scheduled_at: Optional[datetime] = None
    notifications: Optional[NotificationConfig] = Field(None, description="webhooks / a Pub/Sub topic told when the "
                                                                          "run ends (shared/notifications.py)")
    draft: bool = Field(False, description="save the run without submitting it: it waits as a draft until "
                                           "POST /api/training-runs/{id}/submit (not with scheduled_at)")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not runs.NAME_PATTERN.match(value):
            raise ValueError("must be 3-63 characters of lowercase letters, digits and hyphens, starting with a "
                             "letter and not ending with a hyphen")
        return value


def _lookup_configs(repo: Repository, ids: dict[str, Optional[str]], errors: list) -> dict[str, Optional[dict]]:
    """The run's dataset, feature config and model config in one round trip; errors name the field."""
    kinds = {"dataset_id": "datasets", "feature_config_id": "feature_configs", "model_config_id": "model_configs"}
    wanted = [(field, kinds[field], doc_id) for field, doc_id in ids.items() if doc_id]
    docs = dict(zip((w[0] for w in wanted), repo.get_catalog_many([(kind, doc_id) for _, kind, doc_id in wanted])))
    for field, doc_id in ids.items():
        if not doc_id:
            errors.append({"field": field, "message": "is required when there is no base experiment to inherit it from"})
        elif docs.get(field) is None:
            errors.append({"field": field, "message": f"no {kinds[field][:-1].replace('_', ' ')} with id {doc_id!r}"})
    return docs


def _towers_mismatch(feature_config: dict, model_config: dict) -> Optional[str]:
    """The stored configs' tower sizes disagree (an embedding-only tower's size comes from its features)."""
    try:
        features = FeatureConfig.model_validate({k: v for k, v in feature_config.items() if k in FeatureConfig.model_fields})
        model = ModelConfig.model_validate({k: v for k, v in model_config.items() if k in ModelConfig.model_fields})
    except ValidationError:
        return None  # each was validated when stored; a stale document fails at Compile with its own error
    return towers_mismatch(features, model)


def build_run(repo: Repository, body: Any, identity: str, at: datetime) -> tuple[CreateRunRequest, dict]:
    """Validate, inherit and default a run body into the run document (not stored). Schedules use it
    to freeze a template and to make each slot's run."""
    request = parse(CreateRunRequest, body)
    errors: list[dict] = []

    experiment = None
    if request.base_experiment_id:
        experiment = repo.get_catalog("experiments", request.base_experiment_id)
        if experiment is None:
            errors.append({"field": "base_experiment_id",
                           "message": f"no experiment with id {request.base_experiment_id!r}"})
    inherited = experiment or {}
    configs = _lookup_configs(repo, {field: getattr(request, field) or inherited.get(field)
                                     for field in ("dataset_id", "feature_config_id", "model_config_id")}, errors)
    dataset, feature_config, model_config = (configs.get(f) for f in ("dataset_id", "feature_config_id",
                                                                       "model_config_id"))
    if experiment is None and request.base_experiment_id:
        errors = [e for e in errors if "is required" not in e["message"]]  # the real problem is the experiment
    if errors:
        raise FieldError(errors)

    model_type = request.model_type or inherited.get("model_type") or model_config["model_type"]
    if model_config["model_type"] != model_type:
        raise FieldError.one("model_type", f"the model config {model_config['name']!r} is a "
                                           f"{model_config['model_type']} model, not {model_type}")
    if model_type != "ranking":
        mismatch = _towers_mismatch(feature_config, model_config)
        if mismatch:
            raise FieldError.one("model_config_id", mismatch)

    # Training parameters: Appendix B defaults ← the experiment's batch size and learning rate ← the request.
    exp_params = inherited.get("params") or {}
    params_body = {k: exp_params[k] for k in ("batch_size", "learning_rate") if exp_params.get(k) is not None}
    params_body.update(request.training_params)
    params = parse(TrainingParams, params_body, "training_params")
    if params.warm_restart.enabled and not (params.warm_restart.experiment_id or experiment):
        raise FieldError.one("training_params.warm_restart.experiment_id",
                             "warm restart needs a base experiment or an experiment_id to load weights from")
    if params.warm_restart.experiment_id and repo.get_catalog("experiments", params.warm_restart.experiment_id) is None:
        raise FieldError.one("training_params.warm_restart.experiment_id",
                             f"no experiment with id {params.warm_restart.experiment_id!r}")

    evaluator = _evaluator_for(request.evaluator_config, model_type, inherited)
    deployment = request.deployment_config
    if deployment.action == "deploy_new" and not deployment.endpoint_name:
        deployment = deployment.model_copy(update={"endpoint_name": request.name})
    scheduled = None
    if request.scheduled_at is not None:
        scheduled = request.scheduled_at if request.scheduled_at.tzinfo else request.scheduled_at.replace(
            tzinfo=timezone.utc)
        scheduled = scheduled.astimezone(timezone.utc)
        if scheduled <= at:
            raise FieldError.one("scheduled_at", "is in the past; give a future time or null to run now")

    doc = {
        "name": request.name,
        "description": request.description,
        "ml_model": request.name,
        "model_type": model_type,
        "status": runs.PENDING,
        "attempt": 1,
        "attempts": [],
        "base_experiment": _experiment_summary(experiment) if experiment else None,
        "dataset_id": dataset["id"],
        "dataset": {"id": dataset["id"], "name": dataset["name"]},
        "feature_config_id": feature_config["id"],
        "feature_config": {"id": feature_config["id"], "name": feature_config["name"]},
        "model_config_id": model_config["id"],
        "model_config": {"id": model_config["id"], "name": model_config["name"]},
        "training_params": params.model_dump(mode="json"),
        "gpu_config": request.gpu_config.model_dump(mode="json"),
        "evaluator_config": evaluator.model_dump(mode="json"),
        "deployment_config": deployment.model_dump(mode="json"),
        "notifications": request.notifications.model_dump(mode="json") if request.notifications else None,
        "scheduled_at": scheduled,
        "schedule_id": None,
        "stage_details": runs.initial_stages(),
        "current_stage": "Compile",
        "current_epoch": None,
        "total_epochs": params.epochs,
        "progress_percent": 0,
        "vertex_pipeline_job_name": "",
        "gcs_artifacts_path": "",
        "metrics": {},
        "live_metrics": {},
        "is_blessed": None,
        "evaluation_results": {},
        "artifacts": {},
        "warnings": [],
        "error_message": "",
        "error_stage": "",
        "error_details": {},
        "created_at": at,
        "created_by": identity,
        "started_at": None,
        "completed_at": None,
        "duration_seconds": None,
    }
    return request, doc


def new_run_id() -> str:
    # Short, lowercase and unique: it is also the prefix of the Vertex job id and a label value.
    return "tr-" + uuid.uuid4().hex[:16]


def _evaluator_for(config: EvaluatorConfig, model_type: str, experiment: dict) -> EvaluatorConfig:
    threshold = config.blessing_threshold
    lift_only = config.min_lift_over_baseline_percent is not None
    if threshold is None and config.enabled and not lift_only:  # a lift-only gate needs no fixed threshold
        if model_type == "ranking":
            baseline = (experiment.get("metrics") or {}).get("test_rmse")
            if baseline is None:
                raise FieldError.one("evaluator_config.blessing_threshold",
                                     "a ranking run needs a threshold (e.g. {\"metric\": \"test_rmse\", "
                                     "\"max_value\": 0.9}) when its base experiment has no test_rmse to derive it from")
            threshold = BlessingThreshold(metric="test_rmse", max_value=round(baseline * RANKING_THRESHOLD_SLACK, 6))
        else:
            threshold = BlessingThreshold(metric="recall_at_100", min_value=DEFAULT_RECALL_THRESHOLD)
    if threshold is not None and threshold.metric not in METRICS_FOR_MODEL_TYPE[model_type]:
        raise FieldError.one("evaluator_config.blessing_threshold.metric",
                             f"{threshold.metric} does not fit a {model_type} model; use one of "
                             f"{', '.join(METRICS_FOR_MODEL_TYPE[model_type])}")
    return EvaluatorConfig(enabled=config.enabled, blessing_threshold=threshold,
                           min_lift_over_baseline_percent=config.min_lift_over_baseline_percent)


def _experiment_summary(experiment: dict) -> dict:
    number = experiment.get("number")
    return {"id": experiment["id"], "number": number, "name": experiment["name"],
            "display_name": f"Exp #{number}" if number else experiment["name"],
            "metrics": experiment.get("metrics") or {}, "saved_model_uri": experiment.get("saved_model_uri")}


# --------------------------------------------------------------------------- reads


def get_run(repo: Repository, run_id: str) -> dict:
    run = repo.get_run(run_id)
    if run is None:
        raise NotFound(f"training run {run_id}")
    return run


LIST_FILTERS = ("status", "model_type", "dataset_id")


def list_runs(repo: Repository, args: dict) -> dict:
    """Newest first; equality filters in the query, free text over name/description on top."""
    filters = {k: args[k] for k in LIST_FILTERS if args.get(k)}
    if "dataset" in args and args["dataset"]:
        filters["dataset_id"] = args["dataset"]
    if filters.get("status") and filters["status"] not in runs.STATUSES:
        raise FieldError.one("status", f"must be one of {', '.join(runs.STATUSES)}")
    if filters.get("model_type") and filters["model_type"] not in ("retrieval", "ranking", "multitask"):
        raise FieldError.one("model_type", "must be one of retrieval, ranking, multitask")
    try:
        page_size = int(args.get("page_size") or 20)
    except ValueError:
        raise FieldError.one("page_size", "must be a whole number") from None
    if not 1 <= page_size <= 100:
        raise FieldError.one("page_size", "must be between 1 and 100")
    after = _decode_token(args.get("page_token"))
    text = (args.get("search") or args.get("q") or "").strip().lower()

    found: list[dict] = []
    scanned, batch = 0, max(page_size * 2, 50)
    while len(found) < page_size + 1:
        chunk = repo.list_runs(filters, batch, after)
        for run in chunk:
            after = (run["created_at"], run["id"])
            if not text or text in f"{run.get('name', '')} {run.get('description', '')}".lower():
                found.append(run)
                if len(found) == page_size + 1:
                    break
        scanned += len(chunk)
        if len(chunk) < batch or scanned >= 5000:
            break
    page = found[:page_size]
    next_token = _encode_token(page[-1]) if len(found) > page_size else None
    return {
        "training_runs": [runs.public_view(r) for r in page],
        "page_size": page_size,
        "next_page_token": next_token,
        "total": None if text else repo.count_runs(filters),
    }


def _encode_token(run: dict) -> str:
    raw = json.dumps([run["created_at"].isoformat(), run["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: Optional[str]):
    if not token:
        return None
    try:
        created, run_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not is_valid_id(run_id):
            raise ValueError("not a run id")
        return datetime.fromisoformat(created), run_id
    except (ValueError, TypeError):
        raise FieldError.one("page_token", "is not a token this API issued") from None


# --------------------------------------------------------------------------- actions


def delete_run(repo: Repository, store, run_id: str) -> dict:
    def terminal_only(run: dict) -> None:
        if run["status"] not in runs.DELETABLE:
            raise Conflict(f"run {run_id} is {run['status']}; only drafts and completed, failed, cancelled or "
                           f"not_blessed runs can be deleted (cancel it first)")

    run = repo.delete_run(run_id, terminal_only)
    removed = store.delete_tree(run["gcs_artifacts_path"]) if run.get("gcs_artifacts_path") else 0
    return {"deleted": run_id, "artifacts_removed": removed}


def _submitted(doc: dict) -> Optional[dict]:
    return {**doc, "status": runs.PENDING} if doc["status"] == runs.DRAFT else None


def submit_run(repo: Repository, publisher: Publisher, run_id: str) -> dict:
    """Submit a draft (draft → pending), or queue a pending run again (e.g. after a failed publish).
    Idempotent: the submitter's claim makes a repeated message harmless."""
    get_run(repo, run_id)  # 404 for an unknown run
    run = repo.mutate_run(run_id, _submitted) or get_run(repo, run_id)
    if run["status"] != runs.PENDING:
        raise Conflict(f"run {run_id} is {run['status']}; only drafts and pending runs can be submitted")
    publish_submit(publisher, run)
    return run
