"""Run data, read only (spec §7.2–7.3): a run (its list: shared/services/listing.py), its logs, its training history, its
artifacts, its errors, and the GPU pre-flight. Nothing here writes."""
from __future__ import annotations

from typing import Optional

from shared import page_tokens
from shared.adapters.repository import Repository
from shared.contract import results
from shared.domain import log_severity, runs, teams
from shared.domain.model_card import ModelCard, to_markdown
from shared.domain.teams import Caller
from shared.domain.run_config import MAX_MACHINES, GpuConfig, RunSpec
from shared.domain.run_document import TrainingRun
from shared.errors import FieldError, NotFound
from shared.services import access, model_cards
from shared.validation import parse, whole_number


def get_run(repo: Repository, run_id: str) -> dict:
    """The run as its readers see it: a deleted one is gone for them (404) until it is restored."""
    run = repo.get_run(run_id)
    if run is None or runs.is_deleted(run):
        raise NotFound(f"training run {run_id}")
    return run


def read_run(repo: Repository, run_id: str, who: Caller) -> dict:
    return access.run(repo, who, run_id, teams.VIEWER, "reading a run")


def _attempt_arg(run: TrainingRun, args: dict) -> int:
    return whole_number(args, "attempt", run.attempt, 1, run.attempt)


def run_logs(repo, sources, run_id: str, args: dict, who: Caller, token_key: bytes) -> dict:
    """One page of a run's logs, every stage's (its tasks, its Dataflow jobs, the Trainer's job) in time order,
    each entry labelled with its stage. Where they are read from is decided here from the run alone; a token
    is opaque, signed with token_key and good only for this run, attempt, stage and severity.
    next_page_token: more is there now. follow_token: where this page ended, to ask later what came since."""
    from shared.adapters.run_logs import MAX_PAGE_SIZE

    run = access.run(repo, who, run_id, teams.VIEWER, "reading a run's logs")
    attempt = _attempt_arg(TrainingRun.from_document(run), args)
    stage = args.get("stage") or None
    if stage and stage not in runs.STAGES:
        raise FieldError.one("stage", f"must be one of {', '.join(runs.STAGES)}")
    severity = (args.get("severity") or "").upper() or None
    if severity and severity not in log_severity.SEVERITIES:
        raise FieldError.one("severity", f"must be one of {', '.join(log_severity.SEVERITIES)}")
    page_size = whole_number(args, "page_size", 100, 1, MAX_PAGE_SIZE)
    bound = {"run": run_id, "attempt": attempt, "stage": stage, "severity": severity}
    cursor = page_tokens.redeem(token_key, args["page_token"], bound) if args.get("page_token") else None
    found = sources.logs.read(run, attempt, stage, severity, page_size, cursor)
    next_cursor = found.pop("next_cursor", None)
    more = found.pop("more", next_cursor is not None)  # a source that resumes only while there is more says so
    token = page_tokens.issue(token_key, bound, next_cursor) if next_cursor else None
    return {"run_id": run_id, "attempt": attempt, "stage": stage, "severity": severity, "page_size": page_size,
            **found, "next_page_token": token if more else None, "follow_token": token}


def training_history(repo, store, run_id: str, args: dict, who: Caller) -> dict:
    run = TrainingRun.from_document(access.run(repo, who, run_id, teams.VIEWER, "reading a run's training history"))
    attempt = _attempt_arg(run, args)
    epochs, source = repo.list_epochs(run_id, attempt), "history"
    best = None
    if not epochs and attempt == run.attempt and run.gcs_artifacts_path:
        # What the Trainer wrote at the end, when the per-epoch messages did not arrive.
        text = store.read_text(results.join(run.gcs_artifacts_path, results.TRAINING_METRICS_FILE))
        if text:
            metrics = results.TrainingMetrics.model_validate_json(text)
            epochs = [e.model_dump(mode="json") for e in metrics.epochs]
            best, source = metrics.best_epoch, "training_metrics"
    keys = ("epoch", "total_epochs", "loss", "val_loss", "learning_rate", "grad_norm", "metrics", "timestamp")
    return {"run_id": run_id, "attempt": attempt, "source": source, "best_epoch": best,
            "epochs": [{k: e.get(k) for k in keys} for e in epochs]}


ARTIFACT_LAYOUT = {
    "config": results.CONFIG_FILE, "pipeline_job": results.PIPELINE_JOB_FILE,
    "saved_model": results.SAVED_MODEL_DIR, "query_model": results.QUERY_MODEL_DIR,
    "candidate_model": results.CANDIDATE_MODEL_DIR, "transform_graph": results.TRANSFORM_DIR,
    "vocabularies": results.VOCABULARIES_DIR, "checkpoints": results.CHECKPOINTS_DIR,
    "training_metrics": results.TRAINING_METRICS_FILE, "evaluation": results.EVALUATION_FILE,
    "registry_entry": results.REGISTRY_FILE,
}


def _browser_url(uri: Optional[str]) -> Optional[str]:
    if uri and uri.startswith("gs://"):
        return "https://console.cloud.google.com/storage/browser/" + uri.removeprefix("gs://")
    return None


def run_artifacts(repo, run_id: str, settings, who: Caller) -> dict:
    run = TrainingRun.from_document(access.run(repo, who, run_id, teams.VIEWER, "reading a run's artifacts"))
    base = run.gcs_artifacts_path or ""
    uris = {name: results.join(base, relative) for name, relative in ARTIFACT_LAYOUT.items()} if base else {}
    uris.update({k: v for k, v in (run.artifacts or {}).items() if v})  # what the pipeline reported wins
    artifacts = {name: {"uri": uri, "console_url": _browser_url(uri)} for name, uri in uris.items()}
    model = run.vertex_model_resource_name
    registry = None
    if model:
        console = None
        if model.startswith("projects/"):
            parts = model.split("/")
            console = (f"https://console.cloud.google.com/vertex-ai/models/locations/{parts[3]}/models/{parts[5]}/"
                       f"versions/{run.vertex_model_version}?project={parts[1]}")
        registry = {"model_name": run.vertex_model_name, "model_resource_name": model,
                    "model_version": run.vertex_model_version, "pushed_anyway": bool(run.pushed_anyway),
                    "console_url": console}
    endpoint = None
    if run.deployment:
        endpoint = {k: getattr(run.deployment, k) for k in ("status", "endpoint_resource_name", "deployed_model_id",
                                                            "traffic_split", "predict_url", "console_url", "deployed_at")}
    return {"run_id": run_id, "artifacts_uri": base or None, "console_url": _browser_url(base),
            "artifacts": artifacts, "registry": registry, "endpoint": endpoint}


def model_card(repo, store, run_id: str, who: Caller) -> dict:
    """The card of the run's registered version (shared/domain/model_card.py): as written when it was
    registered, or, for a version registered before cards were written, built now from the same files."""
    run = TrainingRun.from_document(access.run(repo, who, run_id, teams.VIEWER, "reading a run's model card"))
    base = run.gcs_artifacts_path or ""
    if not run.vertex_model_resource_name or not base:
        raise NotFound(f"a model card for training run {run_id} (it has no registered model: status {run.status}; "
                       f"a not-blessed model is registered only by push-anyway)")
    text = store.read_text(results.join(base, results.MODEL_CARD_JSON))
    if text:
        card = ModelCard.model_validate_json(text)
    else:
        config, entry = (store.read_text(results.join(base, name)) for name in (results.CONFIG_FILE, results.REGISTRY_FILE))
        if not config or not entry:
            raise NotFound(f"a model card for training run {run_id} (its {results.CONFIG_FILE} or "
                           f"{results.REGISTRY_FILE} is missing under {base})")
        card = model_cards.build_from_files(store, RunSpec.model_validate_json(config),
                                            results.RegistryEntry.model_validate_json(entry), artifacts_uri=base)
    uri = results.join(base, results.MODEL_CARD_MARKDOWN)
    return {"run_id": run_id, "uri": uri, "console_url": _browser_url(uri),
            "card": card.model_dump(mode="json", by_alias=True), "markdown": to_markdown(card)}


def run_errors(repo, run_id: str, who: Caller) -> dict:
    run = TrainingRun.from_document(access.run(repo, who, run_id, teams.VIEWER, "reading a run's errors"))
    keys = ("attempt", "status", "error_stage", "error_message", "error_details", "cancelled_at_stage",
            "cancelled_at_epoch", "cancelled_by", "ended_at")
    attempts = {a.attempt: {k: getattr(a, k) for k in keys} for a in run.attempts or []}
    current = attempts.setdefault(run.attempt, {"attempt": run.attempt})
    outcome = {"status": run.status, "error_stage": run.error_stage or None,
               "error_message": run.error_message or None, "error_details": run.error_details or {}}
    current.update(outcome)
    actions = {name: {"status": action.status, "error": action.error}
               for name, action in (("deployment", run.deployment), ("push_anyway", run.push_anyway))
               if action is not None and action.error}
    return {"run_id": run_id, **outcome, "attempts": [attempts[n] for n in sorted(attempts)],
            "action_errors": actions}


def gpu_availability(sources, args: dict, settings) -> dict:
    preemptible = str(args.get("preemptible", "true")).lower() not in ("false", "0", "no")
    gpu = parse(GpuConfig, {"gpu_type": args.get("gpu_type") or "NVIDIA_L4",
                            "gpu_count": whole_number(args, "gpu_count", 1, 1, 8), "preemptible": preemptible,
                            "machine_count": whole_number(args, "machine_count", 1, 1, MAX_MACHINES)})
    region = (args.get("region") or settings.region).strip()
    return sources.gpu_quota.check(region, gpu.gpu_type, gpu.gpu_count * gpu.machine_count, gpu.preemptible)
