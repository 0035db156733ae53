"""The result contract: the files a pipeline attempt leaves under the run's `artifacts_uri` for the
progress consumer (functions/pipeline_events) to read when the job succeeds.

pipeline_compiler writes exactly these (as `Model.model_dump_json()`), shared/ reads them. Paths are
relative to RunSpec.artifacts_uri, i.e. `{artifacts_root}/{run_id}/`; the layout is the spec's §2.2.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, computed_field

from shared.domain.warm_start import WarmStartRecord

CONFIG_FILE = "config.json"  # the frozen RunSpec, written by the submitter
PIPELINE_JOB_FILE = "pipeline_job.json"  # the compiled Vertex PipelineJob JSON, written by the submitter
TRAINING_METRICS_FILE = "training_metrics.json"  # TrainingMetrics, written by the Trainer
EVALUATION_FILE = "evaluation/evaluation_results.json"  # Evaluation, written by the Evaluator
REGISTRY_FILE = "registry/registry_entry.json"  # RegistryEntry, written by the Pusher (only when registered)
ARTIFACTS_FILE = "artifacts.json"  # ArtifactLocations, written by the Trainer
MODEL_CARD_JSON = "model_card/model_card.json"  # ModelCard (shared/domain/model_card.py), written when registered
MODEL_CARD_MARKDOWN = "model_card/model_card.md"  # the same card as a reviewer reads it
DATA_CHECK_FILE = "data_check.json"  # DataCheck, written by SchemaGen's data check (pipeline_compiler/data_check.py)

# Artifact layout (spec §2.2), relative to artifacts_uri.
SAVED_MODEL_DIR = "model/saved_model"
QUERY_MODEL_DIR = "model/query_model"
CANDIDATE_MODEL_DIR = "model/candidate_model"
TRANSFORM_DIR = "transform"
VOCABULARIES_DIR = "vocabularies"
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"  # the Trainer's TensorBoard event files (on Vertex, its logs/ folder)


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class EpochMetrics(_Result):
    """One epoch of training, as the Trainer publishes it to `training-progress` and keeps in history."""

    run_id: str
    attempt: int = 1
    epoch: int = Field(..., ge=1, description="1-based")
    total_epochs: int
    loss: Optional[float] = None
    val_loss: Optional[float] = None
    learning_rate: Optional[float] = None
    grad_norm: Optional[float] = Field(None, description="the epoch's mean global L2 norm of the gradients, before clipping")
    tensorboard_experiment: Optional[str] = Field(
        None, description="the Vertex TensorBoard experiment the Trainer's event files upload to (a CustomJob's only)")
    metrics: dict[str, float] = Field(default_factory=dict, description="e.g. recall_at_100, rmse")
    timestamp: Optional[datetime] = None


class TrainingMetrics(_Result):
    epochs: list[EpochMetrics] = Field(default_factory=list)
    final: dict[str, float] = Field(default_factory=dict, description="last/best-epoch metrics")
    best_epoch: Optional[int] = None
    stopped_early: bool = False
    resumed_from_epoch: Optional[int] = None
    warm_start: Literal["none", "loaded", "partial", "fallback"] = "none"
    warm_start_warning: Optional[str] = None  # why a partial or fallback warm start is not a full one
    warm_start_record: Optional[WarmStartRecord] = None  # what it started from (shared/domain/warm_start.py)
    examples_per_second: Optional[float] = None


class Evaluation(_Result):
    """The gate: blessed when the threshold metric passes on the test split (or evaluator disabled)."""

    evaluator_enabled: bool = True
    metrics: dict[str, float] = Field(default_factory=dict, description="recall_at_k and/or test_rmse/test_mae")
    baseline_metrics: dict[str, float] = Field(default_factory=dict, description="most-popular / predict-the-mean")
    threshold_metric: Optional[str] = None
    threshold_value: Optional[float] = None
    actual_value: Optional[float] = None
    baseline_value: Optional[float] = Field(None, description="the baseline's value of the threshold metric")
    lift_percent: Optional[float] = Field(None, description="how much the model beats the baseline (most-popular "
                                          "/ predict-the-mean), % of it")
    required_lift_percent: Optional[float] = None
    ease_metrics: dict[str, float] = Field(default_factory=dict, description="EASE (Steck 2019) on the same test "
                                           "rows; empty when the catalog exceeds evaluator_config.ease_max_items")
    ease_lambda: Optional[float] = Field(None, description="EASE's ridge λ, chosen on a validation cut of train")
    ease_skipped_reason: Optional[str] = None
    ease_value: Optional[float] = Field(None, description="EASE's value of the threshold metric")
    lift_over_ease_percent: Optional[float] = Field(None, description="how much the model beats EASE, % of it")
    required_lift_over_ease_percent: Optional[float] = None
    # Champion vs challenger: the serving (or registry default) version scored on the same test split.
    champion_model: Optional[str] = Field(None, description="the champion's model resource (local: registry dir)")
    champion_version: Optional[str] = None
    champion_source: Optional[str] = Field(None, description='"endpoint E" or "registry default"')
    champion_metrics: dict[str, float] = Field(default_factory=dict, description="the champion's on the same rows")
    champion_value: Optional[float] = Field(None, description="the champion's value of the threshold metric")
    champion_tolerance: Optional[float] = None
    champion_required_value: Optional[float] = Field(None, description="champion x (1 - tolerance); error "
                                                     "metrics: x (1 + tolerance)")
    champion_error: Optional[str] = Field(None, description="why the champion was not scored (the threshold "
                                          "alone decided); None when scored or when there is none")
    reason: Optional[str] = Field(None, description="the verdict in words, e.g. 'not blessed: recall_at_100 "
                                  "0.41 < champion 0.52 x 0.99'")
    passed: bool
    blessed: bool


class DataCoercion(_Result):
    """Non-numeric values of a numeric transform's column treated as missing (`on_non_numeric: "missing"`)."""

    column: str
    feature: str
    transform: str
    count: int = Field(..., ge=0, description="values that were not numbers, over train, eval and test")
    rows: int = Field(..., ge=0)
    exact: bool = Field(True, description="False: the column has more distinct values than the statistics "
                                          "keep, so count is a lower bound")
    examples: list[str] = Field(default_factory=list, description="a few of the values, most frequent first")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warning(self) -> str:
        """The run's warning line (the run view and `trainyard runs show` print warnings)."""
        amount = f"{self.count:,}" if self.exact else f"at least {self.count:,}"
        shown = ", ".join(repr(v) for v in self.examples)
        return (f"column {self.column!r} (feature {self.feature!r}, {self.transform}): {amount} of {self.rows:,} "
                f"values were not numbers and were treated as missing (e.g. {shown})")


class DataCheck(_Result):
    """What the data check after SchemaGen found: problems fail the run; coercions are reported on it."""

    problems: list[str] = Field(default_factory=list)
    coercions: list[DataCoercion] = Field(default_factory=list)
    rows_per_split: dict[str, int] = Field(default_factory=dict, description="rows StatisticsGen counted per split")


class RegistryEntry(_Result):
    model_display_name: str
    model_resource_name: str = Field(..., description="projects/P/locations/L/models/M (local: a registry path)")
    model_version_id: str
    serving_model_uri: str
    registered_at: datetime
    pushed_anyway: bool = False


class ArtifactLocations(_Result):
    saved_model: Optional[str] = None
    query_model: Optional[str] = None
    candidate_model: Optional[str] = None
    transform_graph: Optional[str] = None
    vocabularies: Optional[str] = None
    checkpoints: Optional[str] = None
    training_metrics: Optional[str] = None
    evaluation: Optional[str] = None


def join(base: str, relative: str) -> str:
    """Join a gs:// or local base URI and a relative path without doubling slashes."""
    return base.rstrip("/") + "/" + relative.lstrip("/")
