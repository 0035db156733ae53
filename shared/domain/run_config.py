"""A training run's configuration: parameters, GPU, evaluator gate, deployment, and the frozen
run spec (config.json) the submitter hands to pipeline_compiler. Defaults are the spec's Appendix B.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from shared.domain.catalog import (Dataset, ExperimentMetrics, FeatureConfig, ModelConfig, ModelType, SplitStrategy, Strict,
                                   towers_problem)
from shared.domain import gpu_machines, model_kinds
from shared.domain.canary import CanaryConfig
from shared.domain.doc_ids import DocumentId
from shared.domain.warm_start import WarmSource

# --------------------------------------------------------------------------- training params


Monitor = Literal["val_loss", "gate_metric"]
MONITOR_DOC = ("val_loss, or gate_metric: the run's gate metric as the trainer measures it live "
               "(recall@k on an eval sample, or the eval split's rmse/mae; training_params.live_metrics_every_epochs)")


class EarlyStopping(Strict):
    enabled: bool = True
    patience: int = Field(10, ge=1, le=100)
    # The gate metric, not val_loss: the epoch restored is the one the gate judges (docs/pipeline.md).
    monitor: Monitor = Field("gate_metric", description=MONITOR_DOC)


class ConstantLR(Strict):
    type: Literal["constant"] = "constant"


DEFAULT_MIN_LR = 0.001
MIN_LR_SHARE = 0.01  # the floor when the learning rate is not above DEFAULT_MIN_LR: this share of it


class ReduceOnPlateauLR(Strict):
    type: Literal["reduce_on_plateau"] = "reduce_on_plateau"
    factor: float = Field(0.5, gt=0, lt=1)
    patience: int = Field(3, ge=1, le=100)
    monitor: Monitor = Field("val_loss", description=MONITOR_DOC)
    min_lr: Optional[float] = Field(
        None, ge=0, description="floor of the reductions; default 0.001 (spec), or 1% of learning_rate when that "
        "is not above 0.001 (an experiment trained at 0.001 promotes as it is)")

    def floor(self, learning_rate: float) -> float:
        if self.min_lr is not None:
            return self.min_lr
        return DEFAULT_MIN_LR if DEFAULT_MIN_LR < learning_rate else learning_rate * MIN_LR_SHARE


class CosineLR(Strict):
    """Cosine decay to 1% of the initial learning rate over the run's epochs."""

    type: Literal["cosine"] = "cosine"


class WarmupCosineLR(Strict):
    """Linear warm-up for warmup_epochs, then cosine decay to 1% of the initial learning rate."""

    type: Literal["warmup_cosine"] = "warmup_cosine"
    warmup_epochs: int = Field(1, ge=1, le=100)


LRSchedule = Annotated[
    Union[ConstantLR, ReduceOnPlateauLR, CosineLR, WarmupCosineLR], Field(discriminator="type")
]


class WarmRestart(Strict):
    """Where a run's weights start from (shared/domain/warm_start.py resolves it): an experiment's
    SavedModel (`experiment_id`, else the base experiment), a run's trained model (`run_id`), or the
    champion when the run trains (a schedule's runs each take the champion of their moment)."""
    enabled: bool = False
    source: Optional[Literal["experiment", "run", "champion"]] = Field(
        None, description="experiment (the default; experiment_id or the base experiment), run (run_id) or champion")
    experiment_id: Optional[DocumentId] = Field(None, description="defaults to the base experiment")
    run_id: Optional[DocumentId] = Field(None, description="source run: its trained model")

    @model_validator(mode="after")
    def _one_source(self):
        # `experiment_id` alone (today's callers) means source experiment; `run_id` alone, source run.
        source = self.source or ("run" if self.run_id else "experiment")
        if source != "run" and self.run_id:
            raise ValueError(f"run_id is for source 'run', not {source!r}")
        if source != "experiment" and self.experiment_id:
            raise ValueError(f"experiment_id is for source 'experiment', not {source!r}")
        if source == "run" and not self.run_id:
            raise ValueError("source 'run' needs a run_id")
        self.source = source
        return self


class RetrievalIndex(Strict):
    type: Literal["scann", "brute_force"] = "scann"
    num_leaves: Union[Literal["auto"], int] = "auto"
    num_leaves_to_search: Union[Literal["auto"], int] = "auto"

    @model_validator(mode="after")
    def _positive(self):
        for field in ("num_leaves", "num_leaves_to_search"):
            value = getattr(self, field)
            if value != "auto" and not 1 <= value <= 1_000_000:
                raise ValueError(f"{field} must be 'auto' or between 1 and 1000000")
        if isinstance(self.num_leaves, int) and isinstance(self.num_leaves_to_search, int):
            if self.num_leaves_to_search > self.num_leaves:
                raise ValueError("num_leaves_to_search cannot exceed num_leaves")
        return self


class TensorBoardLogs(Strict):
    """What the Trainer writes for TensorBoard (docs/pipeline.md): scalars every epoch always; weight and
    gradient histograms every N epochs (and the last), 0 = none. Histograms cost a probe batch's
    backward pass and the event file's size (every variable's values), hence not every epoch."""
    histogram_every_epochs: int = Field(
        10, ge=0, le=1000, description="weight and gradient histograms every N epochs (and the last); 0 = off")


DENSE_TOWER_CLIPNORM = 1.0  # gradient_clipnorm "auto" when the model has dense layers (the default before issue 25)


class TrainingParams(Strict):
    data_sample_percent: int = Field(100, ge=1, le=100)
    epochs: int = Field(150, ge=1, le=1000)
    batch_size: int = Field(8192, ge=1, le=131072)
    learning_rate: float = Field(0.1, gt=0, le=10)
    split_strategy: SplitStrategy = "strict_time"
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    lr_schedule: LRSchedule = Field(default_factory=ReduceOnPlateauLR)
    mixed_precision: bool = False
    warm_restart: WarmRestart = Field(default_factory=WarmRestart)
    retrieval_index: RetrievalIndex = Field(default_factory=RetrievalIndex)
    checkpoint_every_epochs: int = Field(10, ge=1, le=1000)
    live_metrics_every_epochs: int = Field(
        1, ge=1, le=1000, description="measure the gate metric on an eval sample every N epochs (and the last)")
    gradient_clipnorm: Union[Literal["auto"], Annotated[float, Field(gt=0, le=1e6)], None] = Field(
        "auto", description="clip each variable's gradient to this L2 norm; null = no clipping; auto = "
        f"{DENSE_TOWER_CLIPNORM} when the model has dense layers, none for an embedding-only retrieval model (clipping "
        "steadies small batches through dense towers and starves large-batch embedding-only models, docs/pipeline.md)")
    tensorboard: TensorBoardLogs = Field(default_factory=TensorBoardLogs)

    def clipnorm(self, model: ModelConfig) -> Optional[float]:
        """The clip norm the optimizer gets for this model: "auto" resolved by its towers."""
        if self.gradient_clipnorm != "auto":
            return self.gradient_clipnorm
        embedding_only = not (model.query_tower or model.candidate_tower or model_kinds.kind(model.model_type).ranks)
        return None if embedding_only else DENSE_TOWER_CLIPNORM

    @model_validator(mode="after")
    def _schedule_fits(self):
        schedule = self.lr_schedule
        if isinstance(schedule, ReduceOnPlateauLR):
            if schedule.min_lr is None:  # resolved here so the stored run shows the floor it trains with
                schedule.min_lr = schedule.floor(self.learning_rate)
            elif schedule.min_lr >= self.learning_rate:
                raise ValueError("lr_schedule.min_lr must be below learning_rate")
        if isinstance(schedule, WarmupCosineLR) and schedule.warmup_epochs >= self.epochs:
            raise ValueError("lr_schedule.warmup_epochs must be fewer than epochs")
        return self


# --------------------------------------------------------------------------- GPU

# Which machines hold which GPUs: shared/domain/gpu_machines.py (Compute Engine's and Vertex AI's tables).
GPU_MACHINES = gpu_machines.DEFAULT_MACHINES  # the machine each GPU count gets when the run names none
MAX_MACHINES = 16  # machines one Trainer job may span (chief + workers)
GpuType = Literal["NVIDIA_TESLA_T4", "NVIDIA_L4", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_A100"]


# A Google Cloud region (europe-west4, us-central1): where a shape's Trainer CustomJob runs.
_REGION = r"^[a-z]+-[a-z]+[0-9]{1,2}$"
MAX_FALLBACKS = 8


class GpuShape(Strict):
    """What one attempt's Trainer runs on: GPUs, machine, region, Spot or on-demand (a GPU fallback's unit)."""
    gpu_type: GpuType = "NVIDIA_L4"
    gpu_count: Literal[1, 2, 4, 8] = 2
    preemptible: bool = Field(True, description="Spot (true) or on-demand (false)")
    machine_type: Optional[str] = Field(
        None, validate_default=True,
        description="defaults to the machine Appendix A pairs with the GPUs (where Compute Engine admits it)")
    region: Optional[str] = Field(None, pattern=_REGION,
                                  description="where the Trainer's CustomJob runs; none: the deployment's region")

    # Field validators (not one model validator) so that a 400 names the field at fault:
    # gpu_config.gpu_count or gpu_config.fallbacks.1.machine_type. Fields validate in declaration order, so
    # gpu_type and gpu_count are in info.data here (absent when they failed themselves).
    @field_validator("gpu_count")
    @classmethod
    def _count_fits_one_machine(cls, count, info: ValidationInfo):
        gpu_type = info.data.get("gpu_type")
        if gpu_type is not None and count not in gpu_machines.counts(gpu_type):
            raise ValueError(f"{gpu_type} comes in counts {gpu_machines.counts(gpu_type)} per machine, not {count}")
        return count

    @field_validator("machine_type")
    @classmethod
    def _vertex_would_accept(cls, machine_type, info: ValidationInfo):
        gpu_type, count = info.data.get("gpu_type"), info.data.get("gpu_count")
        if gpu_type is None or count is None:
            return machine_type  # the GPU fields' own errors say what is wrong
        if machine_type is None:
            return GPU_MACHINES[gpu_type][count]
        problem = gpu_machines.machine_problem(gpu_type, count, machine_type)
        if problem:
            raise ValueError(problem)
        return machine_type


class GpuConfig(GpuShape):
    machine_count: int = Field(
        1, ge=1, le=MAX_MACHINES, description="machines of this shape training together: 1 = one VM (the default); "
        "N = a chief and N-1 workers on Vertex (MultiWorkerMirroredStrategy; GPUs in all = gpu_count x machine_count)")
    fallbacks: list[GpuShape] = Field(
        default_factory=list, max_length=MAX_FALLBACKS,
        description="shapes to move on to, in order, when the Trainer cannot get this one (quota or capacity; "
        "docs/lifecycle.md \"GPU fallback\")")


# --------------------------------------------------------------------------- evaluator gate

# The gate metrics and their directions are declared with the model kinds (shared/domain/model_kinds.py).
RETRIEVAL_METRICS = model_kinds.RETRIEVAL_METRICS
RANKING_METRICS = model_kinds.RANKING_METRICS
LOWER_IS_BETTER = model_kinds.LOWER_IS_BETTER
METRICS_FOR_MODEL_TYPE: dict[str, tuple[str, ...]] = {k.name: k.gate_metrics for k in model_kinds.KINDS}
GateMetric = Literal[RETRIEVAL_METRICS + RANKING_METRICS]

# The metric that ranks a model type's experiments and gates its runs when no threshold names one.
PRIMARY_METRIC: dict[str, str] = {k.name: k.primary_metric for k in model_kinds.KINDS}
# What the Trainer reports per epoch besides the gate metrics (shared/contract/results.py): errors, lower is better.
TRAINING_METRICS = ("loss", "val_loss", "rmse", "mae")


# The gate a run gets when it names no threshold, on its kind's primary metric (shared/services/run_builder.py):
DEFAULT_MIN_VALUE = 0.40  # a recall at least this (Appendix B)
DERIVED_MAX_SLACK = 1.10  # an error within 10% of the base experiment's


def gate_metric(model_type: str, threshold: Optional["BlessingThreshold"]) -> str:
    """The metric a run is gated on: the evaluator's threshold metric, else the model type's primary one."""
    if threshold is not None:
        return threshold.metric
    return PRIMARY_METRIC.get(model_type, "recall_at_100")  # a stored run of an unknown kind still shows a gate


class BlessingThreshold(Strict):
    metric: GateMetric = "recall_at_100"
    min_value: Optional[float] = Field(None, description="for recall metrics: blessed when actual >= min_value")
    max_value: Optional[float] = Field(None, description="for error metrics: blessed when actual <= max_value")

    @model_validator(mode="after")
    def _direction(self):
        if self.metric in LOWER_IS_BETTER:
            if self.min_value is not None or self.max_value is None:
                raise ValueError(f"{self.metric} is lower-is-better: give max_value, not min_value")
            if self.max_value <= 0:
                raise ValueError("max_value must be positive")
        else:
            if self.max_value is not None or self.min_value is None:
                raise ValueError(f"{self.metric} is higher-is-better: give min_value, not max_value")
            if not 0 <= self.min_value <= 1:
                raise ValueError("min_value of a recall must be between 0 and 1")
        return self

    @property
    def value(self) -> float:
        return self.max_value if self.metric in LOWER_IS_BETTER else self.min_value  # type: ignore[return-value]

    def passes(self, actual: float) -> bool:
        return actual <= self.value if self.metric in LOWER_IS_BETTER else actual >= self.value


class EvaluatorConfig(Strict):
    enabled: bool = True
    blessing_threshold: Optional[BlessingThreshold] = None
    min_lift_over_baseline_percent: Optional[float] = Field(
        None, ge=0, le=1000, description="also require the gate metric to beat the baseline (most-popular for "
        "recall, predict-the-train-mean for rmse/mae) by at least this many percent")
    # EASE holds items x items float32 matrices (Gram, inverse): ~1 GB measured at 5k items, growing with items².
    ease_max_items: int = Field(10_000, ge=0, le=30_000, description="retrieval: also score EASE (closed-form "
                                "item-item baseline) on the test split when the catalog has at most this many items; "
                                "0 turns it off")
    min_lift_over_ease_percent: Optional[float] = Field(
        None, ge=-100, le=1000, description="retrieval: also require the gate metric to reach EASE's plus this many "
        "percent (-10: at least 0.9x EASE); not held when EASE was not scored")
    # Champion vs challenger (pipeline_compiler/champion.py finds it, evaluation.py scores it). 1 %: a retrain of
    # the same config on the same data lands within noise of the model it replaces, and an equal model should
    # not be held back by it; kept small because it compounds (each retrain may give up to this much).
    compare_to_champion: bool = Field(True, description="also require the gate metric to reach the champion's "
                                      "(the version serving on the target endpoint, else the registry's default "
                                      "version of the model) on the same test split")
    champion_tolerance: float = Field(0.01, ge=0, le=0.5, description="blessed when challenger >= champion x "
                                      "(1 - tolerance) (error metrics: <= champion x (1 + tolerance))")
    # One process scores ~1M test rows in minutes (docs/scale.md); above that the test split is scored by a Beam
    # job on the run's data runner (Dataflow in the cloud): pipeline_compiler/evaluation_beam.py.
    beam_min_test_rows: Optional[int] = Field(
        1_000_000, ge=0, description="score the test split as a Beam job (Dataflow in the cloud) when it holds at "
        "least this many rows (estimated from its files' size); null: always in the Evaluator's process")


def lift_percent(metric: str, actual: float, baseline: float) -> Optional[float]:
    """How much better than the baseline, in percent of it (positive = better; error metrics: lower)."""
    if not baseline:
        return None
    better = baseline - actual if metric in LOWER_IS_BETTER else actual - baseline
    return 100.0 * better / abs(baseline)


# --------------------------------------------------------------------------- deployment


EXISTING_ENDPOINT_TRAFFIC = 10  # spec: "Traffic split: [10%] (gradual rollout)"


class DeploymentConfig(Strict):
    action: Literal["register_only", "deploy_new", "deploy_existing"] = "register_only"
    endpoint_name: Optional[str] = Field(None, max_length=128, description="deploy_new; defaults to the run name")
    existing_endpoint_id: Optional[str] = Field(None, description="required for deploy_existing")
    traffic_split: Optional[int] = Field(
        None, ge=1, le=100, description="percent of traffic the new model takes; defaults to 10 on an existing "
        "endpoint (spec: gradual rollout), 100 on a new one (it serves only this model)")
    canary: Optional[CanaryConfig] = Field(None, description="deploy_existing: stage the deploy (canary.percent, "
                                                             "watched, then 100 % or rolled back)")

    @model_validator(mode="after")
    def _endpoint_given(self):
        if self.action == "deploy_existing" and not self.existing_endpoint_id:
            raise ValueError("deploy_existing needs existing_endpoint_id")
        if self.action != "deploy_existing" and self.existing_endpoint_id:
            raise ValueError(f"existing_endpoint_id only goes with deploy_existing, not {self.action}")
        if self.action != "deploy_new" and self.endpoint_name:
            raise ValueError(f"endpoint_name only goes with deploy_new, not {self.action}")
        if self.canary is not None and self.action != "deploy_existing":
            raise ValueError(f"canary only goes with deploy_existing (a new endpoint serves only its model), "
                             f"not {self.action}")
        if self.canary is not None:
            if self.traffic_split not in (None, self.canary.percent):
                raise ValueError(f"a canary deploy takes canary.percent ({self.canary.percent}) of the traffic; "
                                 f"leave traffic_split out")
            self.traffic_split = self.canary.percent
        if self.traffic_split is None:
            self.traffic_split = EXISTING_ENDPOINT_TRAFFIC if self.action == "deploy_existing" else 100
        return self


# --------------------------------------------------------------------------- the frozen run spec


class BaseExperimentRef(Strict):
    id: str
    number: Optional[int] = None
    name: str
    metrics: ExperimentMetrics = Field(default_factory=ExperimentMetrics)
    saved_model_uri: Optional[str] = None


class RunSpec(Strict):
    """Everything a pipeline needs to train one attempt of one run, resolved and frozen.

    Written as `{artifacts_uri}/config.json` by the submitter; pipeline_compiler builds the TFX
    pipeline from it alone (plus its own environment settings).
    """

    run_id: str
    run_name: str
    run_number: int
    attempt: int = Field(1, ge=1)
    model_type: ModelType
    dataset: Dataset
    feature_config: FeatureConfig
    model_config_: ModelConfig = Field(..., alias="model_config")
    base_experiment: Optional[BaseExperimentRef] = None
    training_params: TrainingParams
    warm_source: Optional[WarmSource] = Field(None, description="what a warm restart loads (shared/domain/warm_start.py)")
    gpu_config: GpuConfig
    evaluator_config: EvaluatorConfig
    deployment_config: DeploymentConfig
    artifacts_uri: str = Field(..., description="{artifacts_root}/{run_id}: where the run's files live")
    pipeline_root: str
    progress_topic: Optional[str] = Field(None, description="projects/P/topics/training-progress")
    created_by: Optional[str] = None
    schedule_id: Optional[str] = Field(None, description="the schedule that made the run (a billing label)")

    model_config = {"extra": "forbid", "populate_by_name": True, "protected_namespaces": ()}

    @model_validator(mode="after")
    def _towers_fit(self):
        mismatch = towers_problem(self.model_type, self.feature_config, self.model_config_)
        if mismatch:
            raise ValueError(mismatch)
        return self

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)
