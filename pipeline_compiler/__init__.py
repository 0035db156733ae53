"""Trainyard's TFX pipeline: the narrow interface the submitter and the local pipeline service call.

Nothing heavy is imported here (TensorFlow, TFX, aiplatform load inside the functions), so importing
`pipeline_compiler` stays cheap for light functions.

    compile_run(spec, out_path, env=None) -> out_path   Vertex PipelineJob JSON (KubeflowV2DagRunner)
    module_files() -> {name: local path}                the module files to snapshot with the run
    run_local(spec, env=None, metadata_path=None)        the same pipeline with LocalDagRunner
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Optional

from pipeline_compiler.environment import PipelineEnv, PipelineEnvError
from shared import log
from shared.contract.labels import (DATA_RUNNER_LABEL, DATAFLOW_MACHINE_LABEL, DATAFLOW_WORKERS_LABEL, billing_labels_for,
                                    label_value)

if TYPE_CHECKING:  # pragma: no cover
    from shared.domain.run_config import RunSpec

__all__ = ["PipelineEnv", "PipelineEnvError", "compile_run", "module_files", "run_local",
           "DEFAULT_IMAGE", "local_metadata_path"]

# Used only when compiling without TRAINYARD_PIPELINE_IMAGE (e.g. a local target): TFX's public image.
DEFAULT_IMAGE = "gcr.io/tfx-oss-public/tfx:1.15.0"
_MODULES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "modules")


def warm() -> None:
    """Import TFX and the pipeline factory now (the submitter does it before its first message)."""
    import pipeline_compiler.pipeline  # noqa: F401


def module_files() -> dict[str, str]:
    """Name -> local path of the module files the pipeline runs (copied next to config.json)."""
    return {name: os.path.join(_MODULES_DIR, name) for name in sorted(os.listdir(_MODULES_DIR)) if name.endswith(".py")}


def compile_run(spec: "RunSpec", out_path: str, env: Optional[PipelineEnv] = None) -> str:
    """Build the run's pipeline and write the Vertex PipelineJob JSON (displayName, pipelineSpec,
    runtimeConfig.gcsOutputDirectory = pipeline root) to out_path; returns out_path.

    TFX packages the module files as a wheel under the pipeline root while compiling, so the pipeline
    root must be writable from here.
    """
    from tfx import v1 as tfx

    from pipeline_compiler.pipeline import create_pipeline

    from pipeline_compiler import data_scale

    env = env or PipelineEnv.current()
    with log.bound(run_id=spec.run_id, attempt=spec.attempt):  # every line of this compile names its run
        log.info("compiling the pipeline", target=env.target, out_path=out_path)
        labels = billing_labels_for(spec)
        if env.is_vertex:
            # Raises DataUnreadable (the run fails at Compile) or TransientError (the submit is redelivered).
            decision = data_scale.decide(spec, env.dataflow_min_rows, env.dataflow_min_bytes,
                                         account=env.service_account or "")
            env = dataclasses.replace(env, data_runner=decision.runner)
            labels[DATA_RUNNER_LABEL] = decision.runner
            if decision.runner == "dataflow":  # what the cost estimate prices the Dataflow workers at
                labels[DATAFLOW_MACHINE_LABEL] = label_value(env.dataflow_machine_type)
                labels[DATAFLOW_WORKERS_LABEL] = str(env.dataflow_max_workers)
            log.info("data stages runner chosen", runner=decision.runner, reason=decision.reason)
        pipeline = create_pipeline(spec, env)
        out_dir = os.path.dirname(os.path.abspath(out_path)) if "://" not in out_path else out_path.rsplit("/", 1)[0]
        runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
            config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
                default_image=env.pipeline_image or DEFAULT_IMAGE),
            output_dir=out_dir,
            output_filename=os.path.basename(out_path),
        )
        runner.run(pipeline, write_out=True)
        # The display name is the run's name, not the pipeline id, so the console shows what users typed.
        with open(out_path) as handle:
            job = json.load(handle)
        job["displayName"] = spec.run_name
        job.setdefault("labels", {}).update(labels)
        with open(out_path, "w") as handle:
            json.dump(job, handle, indent=2, sort_keys=True)
        log.info("pipeline compiled", out_path=out_path, image=env.pipeline_image or DEFAULT_IMAGE)
    return out_path


def local_metadata_path(spec: "RunSpec") -> str:
    """Default ML Metadata sqlite of a local run: {pipeline_root}/metadata.sqlite."""
    return os.path.join(spec.pipeline_root, "metadata.sqlite")


def run_local(spec: "RunSpec", env: Optional[PipelineEnv] = None, metadata_path: Optional[str] = None) -> None:
    """Run the same pipeline with LocalDagRunner and Beam's DirectRunner (blocks until done).

    Task states are in the ML Metadata sqlite at metadata_path (default `local_metadata_path(spec)`):
    pipeline context name = `pipeline_compiler.pipeline.pipeline_name(spec)` ("trainyard-<run id>"),
    node ids = shared.contract.nodes.NODE_IDS. Raises when a component fails.
    """
    from tfx import v1 as tfx

    from pipeline_compiler.pipeline import create_pipeline

    env = env or PipelineEnv.current()
    if env.is_vertex:
        raise PipelineEnvError("run_local needs a local target (TRAINYARD_PIPELINE_BACKEND=local)")
    metadata_path = metadata_path or local_metadata_path(spec)
    os.makedirs(os.path.dirname(os.path.abspath(metadata_path)), exist_ok=True)
    with log.bound(run_id=spec.run_id, attempt=spec.attempt):
        log.info("local pipeline run started", metadata_path=metadata_path)
        pipeline = create_pipeline(
            spec, env, metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))
        tfx.orchestration.LocalDagRunner().run(pipeline)
        log.info("local pipeline run finished")
