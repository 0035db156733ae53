"""Building a run from a create request: validate, look up and inherit from the base experiment, default
(spec Appendix B). Used by intake (a new run, now or later) and by schedules (each slot's run from the
schedule's frozen template)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.adapters.repository import Repository
from shared.domain import model_kinds, run_document, run_numbers, runs, warm_start
from shared.domain.batch_predictions import BatchPredictionConfig
from shared.domain.catalog import FeatureConfig, ModelConfig, ModelType, team_field, towers_problem
from shared.domain.doc_ids import DocumentId
from shared.domain.notifications import NotificationConfig
from shared.domain.run_config import (DEFAULT_MIN_VALUE, DERIVED_MAX_SLACK, METRICS_FOR_MODEL_TYPE, BlessingThreshold,
                                      DeploymentConfig, EvaluatorConfig, GpuConfig, TrainingParams)
from shared.errors import FieldError
from shared.validation import parse


class CreateRunRequest(BaseModel):
    """The body of POST /api/training-runs (spec §7.5). Omitted parts are inherited or defaulted."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = Field(..., description="3–63 characters: lowercase letters, digits and hyphens, starting with a "
                                       "letter; becomes the model's name in the registry",
                      json_schema_extra={"pattern": runs.NAME_PATTERN.pattern, "minLength": 3, "maxLength": 63})
    description: str = Field("", max_length=2000)
    team: Optional[str] = team_field()
    base_experiment_id: Optional[DocumentId] = None
    model_type: Optional[ModelType] = None
    dataset_id: Optional[DocumentId] = None
    feature_config_id: Optional[DocumentId] = None
    model_config_id: Optional[DocumentId] = None
    training_params: dict[str, Any] = Field(default_factory=dict)
    gpu_config: GpuConfig = Field(default_factory=GpuConfig)
    evaluator_config: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    deployment_config: DeploymentConfig = Field(default_factory=DeploymentConfig)
    batch_prediction_config: Optional[BatchPredictionConfig] = Field(
        None, description="after a blessed run registers its model, write top-K for its users (as POST "
                          "…/batch-predictions does; docs/lifecycle.md \"Batch recommendations\")")
    scheduled_at: Optional[datetime] = None
    notifications: Optional[NotificationConfig] = Field(None, description="webhooks / a Pub/Sub topic told when the "
                                                                          "run ends (shared/domain/notifications.py)")
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


def _towers_mismatch(model_type: str, feature_config: dict, model_config: dict) -> Optional[str]:
    """The stored configs cannot train this kind: its towers must fit and their sizes disagree (an
    embedding-only tower's size comes from its features). The rule is the run spec's (catalog.towers_problem)."""
    try:
        features = FeatureConfig.model_validate({k: v for k, v in feature_config.items() if k in FeatureConfig.model_fields})
        model = ModelConfig.model_validate({k: v for k, v in model_config.items() if k in ModelConfig.model_fields})
    except ValidationError:
        return None  # each was validated when stored; a stale document fails at Compile with its own error
    return towers_problem(model_type, features, model)


def requested_team(body: Any) -> Optional[Any]:
    """The `team` a create body names, read before the body is validated: who may create is decided first."""
    return body.get("team") if isinstance(body, dict) else None


def build_run(repo: Repository, body: Any, identity: str, at: datetime, team: Optional[str]) -> tuple[CreateRunRequest, dict]:
    """Validate, inherit and default a run body into the run document (not stored), owned by `team`
    (already resolved and checked by the caller). Schedules use it to freeze a template and to make
    each slot's run."""
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
    mismatch = _towers_mismatch(model_type, feature_config, model_config)
    if mismatch:
        raise FieldError.one("model_config_id", mismatch)

    # Training parameters: Appendix B defaults ← the experiment's batch size and learning rate ← the request.
    exp_params = inherited.get("params") or {}
    params_body = {k: exp_params[k] for k in ("batch_size", "learning_rate") if exp_params.get(k) is not None}
    params_body.update(request.training_params)
    params = parse(TrainingParams, params_body, "training_params")
    if params.warm_restart.experiment_id and repo.get_catalog("experiments", params.warm_restart.experiment_id) is None:
        raise FieldError.one("training_params.warm_restart.experiment_id",  # even when warm restart is off
                             f"no experiment with id {params.warm_restart.experiment_id!r}")
    # Resolved at every build: a schedule's firing takes the named run's or experiment's model as it is then.
    warm_source = warm_start.source_for(params.warm_restart, experiment,
                                        lambda i: repo.get_catalog("experiments", i), repo.get_run)

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

    run = run_document.new_run(
        name=request.name, description=request.description, team=team, model_type=model_type,
        base_experiment=_experiment_summary(experiment) if experiment else None,
        dataset=dataset, feature_config=feature_config, model_config=model_config,
        training_params=params.model_dump(mode="json"), gpu_config=request.gpu_config.model_dump(mode="json"),
        evaluator_config=evaluator.model_dump(mode="json"), deployment_config=deployment.model_dump(mode="json"),
        notifications=request.notifications.model_dump(mode="json") if request.notifications else None,
        scheduled_at=scheduled, created_at=at, created_by=identity,
        batch_prediction_config=(request.batch_prediction_config.model_dump(mode="json")
                                 if request.batch_prediction_config else None),
        warm_source=warm_source.model_dump() if warm_source else None)
    return request, run.to_document()


def new_run_id() -> str:
    # Short, lowercase and unique: it is also the prefix of the Vertex job id and a label value.
    return "tr-" + uuid.uuid4().hex[:16]


def _evaluator_for(config: EvaluatorConfig, model_type: str, experiment: dict) -> EvaluatorConfig:
    threshold = config.blessing_threshold
    lift_only = config.min_lift_over_baseline_percent is not None
    if threshold is None and config.enabled and not lift_only:  # a lift-only gate needs no fixed threshold
        # the kind's primary metric: an error is held near the base experiment's, a recall at a fixed floor
        metric = model_kinds.kind(model_type).primary_metric
        if model_kinds.lower_is_better(metric):
            baseline = (experiment.get("metrics") or {}).get(metric)
            if baseline is None:
                raise FieldError.one("evaluator_config.blessing_threshold",
                                     f"a {model_type} run needs a threshold (e.g. {{\"metric\": \"{metric}\", "
                                     f"\"max_value\": 0.9}}) when its base experiment has no {metric} to derive it from")
            threshold = BlessingThreshold(metric=metric, max_value=round(baseline * DERIVED_MAX_SLACK, 6))
        else:
            threshold = BlessingThreshold(metric=metric, min_value=DEFAULT_MIN_VALUE)
    if threshold is not None and threshold.metric not in METRICS_FOR_MODEL_TYPE[model_type]:
        raise FieldError.one("evaluator_config.blessing_threshold.metric",
                             f"{threshold.metric} does not fit a {model_type} model; use one of "
                             f"{', '.join(METRICS_FOR_MODEL_TYPE[model_type])}")
    return config.model_copy(update={"blessing_threshold": threshold})  # the rest of the request as given


def _experiment_summary(experiment: dict) -> dict:
    number = experiment.get("number")
    return {"id": experiment["id"], "number": number, "name": experiment["name"],
            "display_name": f"Exp #{number}" if number else experiment["name"],
            "metrics": experiment.get("metrics") or {}, "saved_model_uri": experiment.get("saved_model_uri")}


def run_counter(settings=None) -> str:
    """The counter a new run's number is drawn from: its model's (shared/domain/run_numbers.py)."""
    if settings is None:
        from shared.settings import get_settings

        settings = get_settings()
    return run_numbers.counter_key(run_numbers.model_name(settings))
