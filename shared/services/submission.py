"""The submit path: claim the run → snapshot its spec and modules → compile → create the pipeline job."""
from __future__ import annotations

import importlib
import os
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from pydantic import ValidationError

from shared.contract import results
from shared.domain import data_access, gpu_fallback, pipeline_cache, runs
from shared import log
from shared.adapters.artifact_store import ArtifactStore
from shared.domain.catalog import Dataset, FeatureConfig, ModelConfig
from shared.contract import labels
from shared.contract.messages import RunSubmit
from shared.errors import NotFound, PermanentError, TransientError
from shared.adapters.pipelines import JobRequest, PipelineBackend
from shared.adapters.repository import Repository
from shared.domain.run_config import BaseExperimentRef, RunSpec
from shared.services import lifecycle, ports, run_writes


@dataclass
class Compiler:
    """The narrow interface to pipeline_compiler: compile a RunSpec to Vertex JSON; list module files."""

    compile_run: Callable[[RunSpec, str], str]
    module_files: Callable[[], dict[str, str]]

    @classmethod
    def load(cls, target: str) -> "Compiler":
        module_name, _, function = target.partition(":")
        module = importlib.import_module(module_name)
        if callable(getattr(module, "warm", None)):
            module.warm()  # TFX loads here, once, in the submitter only
        return cls(compile_run=getattr(module, function or "compile_run"),
                   module_files=getattr(module, "module_files", lambda: {}))


def submit(message: RunSubmit, repo: Repository, pipelines: PipelineBackend, store: ArtifactStore,
           compiler: Compiler, settings, effects: ports.Effects) -> str:
    """Returns what happened: 'submitted', 'skipped' (a duplicate or late message) or 'failed'."""
    at = runs.now()
    try:
        claimed = lifecycle.move_run(repo, message.run_id, lambda doc: runs.claim_submit(
            doc, message.attempt, at, timedelta(seconds=settings.submit_lease_s)), effects)
    except NotFound:
        log.warning("run-submit for a run that no longer exists", run_id=message.run_id)
        return "skipped"
    if claimed is None:
        log.info("run-submit ignored: run already past pending", run_id=message.run_id, attempt=message.attempt)
        return "skipped"

    try:
        job = _snapshot_compile_create(claimed, repo, pipelines, store, compiler, settings)
    except TransientError as exc:
        try:
            run_writes.write(repo, message.run_id, lambda doc: runs.release_submit(doc, message.attempt, at))
        except Exception as release_error:  # noqa: BLE001 - the lease frees the claim in the end anyway
            log.warning("submit claim not released", run_id=message.run_id, error=str(release_error))
        log.warning("submission failed transiently; claim released for the redelivery", run_id=message.run_id,
                    attempt=message.attempt, error=str(exc))
        raise
    except PermanentError as exc:
        # A failed run settles its schedule like any other (its queued successor is released).
        lifecycle.move_run(repo, message.run_id, lambda doc: runs.record_failure(
            doc, message.attempt, exc.stage or "Compile", str(exc), exc.details, runs.now()), effects)
        log.error("submission failed", run_id=message.run_id, stage=exc.stage, error=str(exc))
        return "failed"
    skipped = gpu_fallback.tensorboard_skipped(settings.vertex_tensorboard, settings.region,
                                               (claimed.get("gpu_config") or {}).get("region"))
    lifecycle.move_run(repo, message.run_id, lambda doc: _noting(runs.record_submitted(
        doc, message.attempt, job.name, results.join(settings.artifacts_root, message.run_id), runs.now()),
        skipped), effects)
    log.info("pipeline job submitted", run_id=message.run_id, job=job.name, attempt=message.attempt)
    return "submitted"


def _noting(doc, tensorboard_skipped):
    """The submitted attempt's TensorBoard note (None clears a former attempt's)."""
    return None if doc is None else {**doc, "tensorboard_upload_skipped": tensorboard_skipped}


def build_run_spec(run: dict, repo: Repository, settings) -> RunSpec:
    def load(kind: str, doc_id: str, model):
        doc = repo.get_catalog(kind, doc_id)
        if doc is None:
            raise PermanentError(f"the run's {kind[:-1].replace('_', ' ')} {doc_id} no longer exists",
                                 stage="Compile")
        return model.model_validate({k: v for k, v in doc.items() if k in model.model_fields})

    base = run.get("base_experiment")
    artifacts_uri = results.join(settings.artifacts_root, run["id"])
    try:
        return RunSpec.model_validate({
            "run_id": run["id"], "run_name": run["name"], "run_number": run["run_number"],
            "attempt": run["attempt"], "model_type": run["model_type"],
            "dataset": load("datasets", run["dataset_id"], Dataset),
            "feature_config": load("feature_configs", run["feature_config_id"], FeatureConfig),
            "model_config": load("model_configs", run["model_config_id"], ModelConfig),
            "base_experiment": BaseExperimentRef.model_validate(
                {k: base.get(k) for k in BaseExperimentRef.model_fields}) if base else None,
            "training_params": run["training_params"], "warm_source": run.get("warm_source"),
            "gpu_config": run["gpu_config"],
            "evaluator_config": run["evaluator_config"], "deployment_config": run["deployment_config"],
            "artifacts_uri": artifacts_uri,
            "pipeline_root": results.join(settings.pipeline_root, run["id"]),
            "progress_topic": settings.progress_topic_path,
            "created_by": run.get("created_by"),
            "schedule_id": run.get("schedule_id"),
        })
    except ValidationError as exc:
        raise PermanentError(f"the run's configuration is no longer valid: {exc}", stage="Compile") from None


def _snapshot_compile_create(run: dict, repo, pipelines, store, compiler: Compiler, settings):
    spec = build_run_spec(run, repo, settings)
    # Again here, before anything reads the data: the team's datasets may have shrunk since the run was
    # created, and a schedule's slot runs and retries were not checked by the API (docs/security.md).
    problem = data_access.run_data_problem(spec.dataset.source, run.get("team"), settings.teams,
                                           spec.dataset.created_by, settings.admins)
    if problem:
        raise PermanentError(f"the run's team may not read its data: {problem}", stage="Compile")
    config_uri = results.join(spec.artifacts_uri, results.CONFIG_FILE)
    store.write_text(config_uri, spec.to_json())
    for name, path in compiler.module_files().items():
        store.copy_file(path, results.join(spec.artifacts_uri, name))
    with tempfile.TemporaryDirectory(prefix="trainyard-compile-") as workdir:
        job_path = os.path.join(workdir, results.PIPELINE_JOB_FILE)
        try:
            compiler.compile_run(spec, job_path)
        except (TransientError, PermanentError):
            raise  # the compiler's own verdict: a transient read is retried; unreadable data fails the run
        except Exception as exc:  # a pipeline that does not compile will not compile on a retry either
            raise PermanentError(f"compiling the pipeline failed: {type(exc).__name__}: {exc}",
                                 stage="Compile") from exc
        job_uri = results.join(spec.artifacts_uri, results.PIPELINE_JOB_FILE)
        store.copy_file(job_path, job_uri)  # kept with the run's artifacts, as in the cloud
        caching = pipeline_cache.caching_allowed(run, settings.pipeline_root_retention_days, runs.now())
        if not caching:
            log.info("submitting without caching: the run's cached outputs may outlive the pipeline root's retention",
                     run_id=spec.run_id, attempt=spec.attempt, retention_days=settings.pipeline_root_retention_days)
        request = JobRequest(
            job_id=labels.job_id_for(spec.run_id, spec.attempt), display_name=f"{spec.run_name}-{spec.run_number}",
            labels=labels.billing_labels_for(spec),  # run, attempt, schedule, model: cost per run in Cloud Billing
            pipeline_job_path=job_path, pipeline_job_uri=job_uri, run_spec_uri=config_uri,
            pipeline_root=spec.pipeline_root, service_account=settings.pipeline_service_account,
            enable_caching=caching)
        return pipelines.create_job(request)
