"""A registered model version's card: what a reviewer reads before it serves — its data, features and
config, training curve, metrics against the baselines (and the champion, where one was scored), the gate's
decision, and its lineage (run, experiment, schedule, images).

Built from the run's own files (the frozen RunSpec, data_check.json, training_metrics.json,
evaluation_results.json, the registry entry) when the model is registered — by the pipeline's Pusher and by
push-anyway alike (pipeline_compiler/registry.py) — and stored beside them as JSON and Markdown
(shared/contract/results.py MODEL_CARD_JSON / MODEL_CARD_MARKDOWN). Pure: no I/O here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from shared.contract import results
from shared.domain import runs
from shared.domain.run_config import RunSpec

SCHEMA_VERSION = 1


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class CardData(_Part):
    dataset: str
    source: dict[str, Any]
    columns: dict[str, Any]
    split_strategy: str
    sample_percent: int
    rows_per_split: dict[str, int] = Field(default_factory=dict, description="from StatisticsGen; empty if unknown")
    findings: list[str] = Field(default_factory=list, description="the data check's coercions and problems")


class CardModel(_Part):
    model_type: str
    features: dict[str, Any]
    model_config_: dict[str, Any] = Field(..., alias="model_config")
    training_params: dict[str, Any]
    gpu_config: dict[str, Any]


class CardEpoch(_Part):
    epoch: int
    loss: Optional[float] = None
    val_loss: Optional[float] = None
    metrics: dict[str, float] = Field(default_factory=dict)


class CardTraining(_Part):
    epochs: list[CardEpoch] = Field(default_factory=list)
    best_epoch: Optional[int] = None
    stopped_early: bool = False
    warm_start: str = "none"  # the status, then what it started from and the rows carried (WarmStartRecord.summary)
    examples_per_second: Optional[float] = None


class CardGate(_Part):
    evaluator_enabled: bool = True
    metric: Optional[str] = None
    threshold: Optional[float] = None
    actual: Optional[float] = None
    blessed: bool = False
    pushed_anyway: bool = False
    decision: str


class CardLineage(_Part):
    run_id: str
    run_name: str
    run_number: int
    attempt: int
    experiment: Optional[dict[str, Any]] = None
    schedule_id: Optional[str] = None
    created_by: Optional[str] = None
    artifacts_uri: str
    model_resource_name: str
    model_version_id: str
    serving_model_uri: str
    registered_at: datetime
    pipeline_image: Optional[str] = None
    serving_image: Optional[str] = None


class ModelCard(_Part):
    schema_version: int = SCHEMA_VERSION
    model_name: str
    model_version: str
    data: CardData
    model: CardModel
    training: CardTraining
    metrics: dict[str, float] = Field(default_factory=dict, description="the model's, on the test split")
    baselines: dict[str, dict[str, float]] = Field(default_factory=dict,
                                                   description="{baseline: metrics} on the same test rows")
    gate: CardGate
    lineage: CardLineage


def _decision(evaluation: Optional[results.Evaluation], pushed_anyway: bool) -> str:
    if evaluation is None:
        return "no evaluation was recorded"
    if not evaluation.evaluator_enabled:
        return "the evaluator was disabled: registered without a gate"
    anyway = "; registered anyway by hand" if pushed_anyway and not evaluation.blessed else ""
    lifts = runs.gate_lifts(evaluation.model_dump())
    if evaluation.reason:  # the Evaluator's own verdict in words (threshold, lifts required, the champion)
        return evaluation.reason + anyway + "".join(f"; {w}" for w in lifts if w not in evaluation.reason)
    metric, actual, threshold = evaluation.threshold_metric, evaluation.actual_value, evaluation.threshold_value
    words = [f"{metric} {actual:.4f}" if actual is not None else f"{metric} not computed"]
    if threshold is not None:
        words.append(f"threshold {threshold:g}")
    verdict = "blessed" if evaluation.blessed else ("not blessed; registered anyway by hand" if pushed_anyway
                                                    else "not blessed")
    return f"{verdict}: " + "; ".join(words + lifts)


def build(spec: RunSpec, entry: results.RegistryEntry, evaluation: Optional[results.Evaluation] = None,
          training: Optional[results.TrainingMetrics] = None, data_check: Optional[results.DataCheck] = None,
          pipeline_image: Optional[str] = None, serving_image: Optional[str] = None) -> ModelCard:
    dataset = spec.dataset
    check = data_check or results.DataCheck()
    findings = [c.warning for c in check.coercions] + list(check.problems)
    baselines = {}
    if evaluation is not None:
        if evaluation.baseline_metrics:
            baselines["predict_the_mean" if "test_rmse" in evaluation.baseline_metrics
                      and not any(k.startswith("recall_at_") for k in evaluation.baseline_metrics)
                      else "most_popular"] = evaluation.baseline_metrics
        if evaluation.ease_metrics:
            baselines["ease"] = evaluation.ease_metrics
        if evaluation.champion_metrics:  # the version that served (or the registry default), same test rows
            baselines[f"champion v{evaluation.champion_version or '?'}"] = evaluation.champion_metrics
    trained = training or results.TrainingMetrics()
    return ModelCard(
        model_name=entry.model_display_name, model_version=entry.model_version_id,
        data=CardData(dataset=dataset.name, source=dataset.source.model_dump(mode="json"),
                      columns=dataset.columns.model_dump(mode="json"), split_strategy=dataset.split_strategy,
                      sample_percent=dataset.sample_percent, rows_per_split=check.rows_per_split, findings=findings),
        model=CardModel(model_type=spec.model_type, features=spec.feature_config.model_dump(mode="json"),
                        model_config=spec.model_config_.model_dump(mode="json", by_alias=True),
                        training_params=spec.training_params.model_dump(mode="json"),
                        gpu_config=spec.gpu_config.model_dump(mode="json")),
        training=CardTraining(epochs=[CardEpoch(epoch=e.epoch, loss=e.loss, val_loss=e.val_loss, metrics=e.metrics)
                                      for e in trained.epochs],
                              best_epoch=trained.best_epoch, stopped_early=trained.stopped_early,
                              warm_start=(trained.warm_start_record.summary() if trained.warm_start_record
                                          else trained.warm_start), examples_per_second=trained.examples_per_second),
        metrics=(evaluation.metrics if evaluation else {}), baselines=baselines,
        gate=CardGate(evaluator_enabled=evaluation.evaluator_enabled if evaluation else False,
                      metric=evaluation.threshold_metric if evaluation else None,
                      threshold=evaluation.threshold_value if evaluation else None,
                      actual=evaluation.actual_value if evaluation else None,
                      blessed=bool(evaluation and evaluation.blessed), pushed_anyway=entry.pushed_anyway,
                      decision=_decision(evaluation, entry.pushed_anyway)),
        lineage=CardLineage(run_id=spec.run_id, run_name=spec.run_name, run_number=spec.run_number, attempt=spec.attempt,
                            experiment=spec.base_experiment.model_dump(mode="json", include={"id", "number", "name"})
                            if spec.base_experiment else None,
                            schedule_id=spec.schedule_id, created_by=spec.created_by, artifacts_uri=spec.artifacts_uri,
                            model_resource_name=entry.model_resource_name, model_version_id=entry.model_version_id,
                            serving_model_uri=entry.serving_model_uri, registered_at=entry.registered_at,
                            pipeline_image=pipeline_image or None, serving_image=serving_image or None))


def _number(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def to_markdown(card: ModelCard) -> str:
    """The card as a reviewer reads it (the registry view and `trainyard models card` show this)."""
    lineage, data, gate = card.lineage, card.data, card.gate
    lines = [f"# Model card: {card.model_name}, version {card.model_version}", "",
             f"**Gate:** {gate.decision}", "", "## Data",
             f"- Dataset: {data.dataset} ({data.source.get('kind', 'source')}: "
             f"{data.source.get('uri') or data.source.get('table') or 'a query'})",
             f"- Split: {data.split_strategy}, sample {data.sample_percent}%",
             "- Rows per split: " + (", ".join(f"{k} {v:,}" for k, v in data.rows_per_split.items()) or "not recorded")]
    lines += ["- Data check: " + ("no findings" if not data.findings else "")] + [f"  - {f}" for f in data.findings]
    lines += ["", "## Features and model",
              f"- Model type: {card.model.model_type}",
              "- Columns: " + ", ".join(f"{k}={v}" for k, v in data.columns.items() if v),
              f"- Model config: `{card.model.model_config_}`",
              f"- Training: `{card.model.training_params}`",
              f"- GPU: `{card.model.gpu_config}`", "", "## Training curve"]
    if card.training.epochs:
        names = sorted({m for e in card.training.epochs for m in e.metrics})
        lines += _table(["epoch", "loss", "val_loss", *names],
                        [[str(e.epoch), _number(e.loss), _number(e.val_loss), *(_number(e.metrics.get(n)) for n in names)]
                         for e in card.training.epochs])
        lines.append(f"\nBest epoch: {card.training.best_epoch or '—'}; stopped early: "
                     f"{'yes' if card.training.stopped_early else 'no'}; warm start: {card.training.warm_start}")
    else:
        lines.append("No epochs recorded.")
    lines += ["", "## Metrics (test split)"]
    names = sorted(card.metrics)
    if names:
        baselines = sorted(card.baselines)
        lines += _table(["metric", "model", *baselines],
                        [[n, _number(card.metrics[n]), *(_number(card.baselines[b].get(n)) for b in baselines)]
                         for n in names])
    else:
        lines.append("No test metrics recorded.")
    lines += ["", "## Lineage",
              f"- Run: {lineage.run_name} #{lineage.run_number} (`{lineage.run_id}`), attempt {lineage.attempt}",
              "- Experiment: " + (f"{lineage.experiment.get('name')} (`{lineage.experiment.get('id')}`)"
                                  if lineage.experiment else "none"),
              f"- Schedule: {lineage.schedule_id or 'none'}", f"- Created by: {lineage.created_by or '—'}",
              f"- Registered: {lineage.model_resource_name} version {lineage.model_version_id} at "
              f"{lineage.registered_at.isoformat()}",
              f"- Model files: {lineage.serving_model_uri}", f"- Artifacts: {lineage.artifacts_uri}",
              f"- Pipeline image: {lineage.pipeline_image or '—'}", f"- Serving image: {lineage.serving_image or '—'}"]
    return "\n".join(lines) + "\n"
