"""The TFX pipeline factory: RunSpec + PipelineEnv -> the 7-component `tfx.dsl.Pipeline` (pure).

Node ids (the Vertex task names and the LocalDagRunner node ids, stable across targets):
ExampleGen, StatisticsGen, SchemaGen, Transform, Trainer, Evaluator, Pusher.
"""
from __future__ import annotations

import os
import re
from typing import Any, Optional

from tfx import v1 as tfx
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform import constants as vertex_constants
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_trainer_executor
from tfx.proto import example_gen_pb2

from pipeline_compiler import example_gen
from pipeline_compiler.checked_schema_gen import CheckedSchemaGen
from pipeline_compiler.components import TrainyardEvaluator, TrainyardPusher
from pipeline_compiler.environment import PipelineEnv
from pipeline_compiler.modules import features as F
from pipeline_compiler.modules import warm_weights
from shared.domain import data_access, gpu_fallback
from shared.domain.catalog import BigQuerySource, FileSource
from shared.contract import results
from shared.contract.dataflow_jobs import dataflow_job_name
from shared.contract.labels import billing_labels_for
from shared.domain.run_config import RunSpec
from shared.errors import PermanentError

MODULES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "modules")
TRANSFORM_MODULE = os.path.join(MODULES_DIR, "transform.py")
TRAINER_MODULE = os.path.join(MODULES_DIR, "trainer.py")


def dataflow_label_args(labels: dict[str, str]) -> list[str]:
    """Beam's Dataflow option for job labels: `--labels=key=value`, repeatable (apache_beam
    options/pipeline_options.py, GoogleCloudOptions: `--labels`, action='append')."""
    return [f"--labels={key}={value}" for key, value in sorted(labels.items())]


def pipeline_name(spec: RunSpec) -> str:
    """Vertex pipeline names are [a-z0-9-], at most 128 characters."""
    slug = re.sub(r"[^a-z0-9-]+", "-", spec.run_id.lower()).strip("-")
    return f"trainyard-{slug}"[:128].rstrip("-")


def split_file_uri(uri: str) -> tuple[str, str]:
    """(input_base, relative glob pattern) for a file, directory or glob, local or gs://."""
    glob_at = min((uri.find(c) for c in "*?[" if c in uri), default=-1)
    if glob_at >= 0:
        base = uri[: uri.rfind("/", 0, glob_at)]
        return base, uri[len(base) + 1:]
    if uri.endswith("/") or (not uri.startswith("gs://") and os.path.isdir(uri)):
        return uri.rstrip("/"), "*"
    if os.path.splitext(uri)[1]:
        return uri.rsplit("/", 1)[0], uri.rsplit("/", 1)[1]
    return uri.rstrip("/"), "*"


def _hash_output_config() -> example_gen_pb2.Output:
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
        for name, buckets in zip(example_gen.SPLITS, example_gen.HASH_BUCKETS)
    ]))


def bigquery_queries(spec: RunSpec) -> dict[str, str]:
    """The SQL of each split ({"all": q} for the random strategy, which hash-splits afterwards)."""
    source = spec.dataset.source
    assert isinstance(source, BigQuerySource)
    # Every name is checked again and quoted part by part here, whatever the API admitted: a table or
    # column that could close its backticks never reaches the SQL (shared/domain/data_access.py).
    try:
        columns = ", ".join(data_access.quoted_column(c) for c in F.all_raw_columns(spec))
        origin = data_access.quoted_table(source.table) if source.table else f"({source.query})"
        ts = data_access.quoted_column(spec.dataset.columns.timestamp)
    except ValueError as exc:
        raise PermanentError(f"the run's dataset names data that cannot be queried safely: {exc}",
                             stage="Compile") from None
    query = f"SELECT {columns} FROM {origin} AS t"
    percent = spec.training_params.data_sample_percent
    if percent < 100:
        query += f" WHERE MOD(ABS(FARM_FINGERPRINT(TO_JSON_STRING(t))), 100) < {percent}"
    if spec.training_params.split_strategy != "strict_time":
        return {"all": query}
    head = f"WITH data AS ({query}), cutoffs AS (SELECT APPROX_QUANTILES({ts}, 20) AS q FROM data) " \
           f"SELECT data.* FROM data, cutoffs WHERE "
    return {
        "train": head + f"{ts} < q[OFFSET(16)]",
        "eval": head + f"{ts} >= q[OFFSET(16)] AND {ts} < q[OFFSET(19)]",
        "test": head + f"{ts} >= q[OFFSET(19)]",
    }


def run_scope(spec: RunSpec) -> str:
    """What makes ExampleGen's inputs differ from run to run (and not between attempts of one run).

    Vertex reuses a task's earlier execution when its cache key matches: input parameter values, input
    artifact ids, output definitions and the container's image, command and arguments, within pipelines
    of the same name (cloud.google.com/vertex-ai/docs/pipelines/configure-caching). An ExampleGen reading
    the same SQL text or the same path would otherwise be served a previous run's snapshot of data that
    has changed since; only FileBasedExampleGen gets a pre-cache-check driver that fingerprints its files
    (tfx/orchestration/kubeflow/v2/step_builder.py). With the run id among its parameters, a new run
    always reads fresh data, and so do StatisticsGen and everything downstream (their input artifact is
    new), while a retry of the run reuses the run's own snapshot. Pipeline names are per run too
    (pipeline_name), but this rule must not rest on that.
    """
    return re.sub(r"[^A-Za-z0-9_-]", "", spec.run_id)


def _example_gen(spec: RunSpec) -> Any:
    source = spec.dataset.source
    if isinstance(source, FileSource):
        input_base, pattern = split_file_uri(source.uri)
        settings = {
            "run_scope": run_scope(spec),  # read by nobody: it keys Vertex's cache to the run
            "format": source.format,
            "split_strategy": spec.training_params.split_strategy,
            "sample_percent": spec.training_params.data_sample_percent,
            "timestamp_column": spec.dataset.columns.timestamp,
        }
        return FileBasedExampleGen(
            input_base=input_base,
            input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern=pattern)]),
            output_config=_hash_output_config(),  # names the splits; the executor decides membership
            custom_config=example_gen.pack_settings(settings),
            custom_executor_spec=executor_spec.BeamExecutorSpec(example_gen.Executor),
        )
    # BigQueryExampleGen's custom_config becomes keyword arguments of Beam's ReadFromBigQuery
    # (tfx/extensions/google_cloud_big_query/example_gen/executor.py), so the run scope rides in the SQL.
    queries = {name: f"/* trainyard run {run_scope(spec)} */ {sql}" for name, sql in bigquery_queries(spec).items()}
    if "all" in queries:
        return tfx.extensions.google_cloud_big_query.BigQueryExampleGen(
            query=queries["all"], output_config=_hash_output_config())
    return tfx.extensions.google_cloud_big_query.BigQueryExampleGen(input_config=example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=name, pattern=sql) for name, sql in queries.items()]))


def trainer_job_spec(spec: RunSpec, env: PipelineEnv) -> dict[str, Any]:
    """The Vertex CustomJob the Trainer runs as: the attempt's shape (its GPUs, machine; Spot when preemptible:
    the run's gpu_config, which a GPU fallback's attempt replaces with the next shape), the GPU image.

    With gpu_config.machine_count N > 1: worker pool 0 is the primary replica (replica_count 1; TF_CONFIG
    task type "chief") and worker pool 1 holds the N-1 workers ("worker"), same machine, GPUs and image
    (cloud.google.com/vertex-ai/docs/training/distributed-training: workerPoolSpecs[0] = primary/chief
    with replicaCount 1, workerPoolSpecs[1] = workers). TFX's Vertex Trainer puts the executor's
    command into every pool's container_spec (training_clients.VertexJobClient), so every replica
    runs run_fn, which trains with MultiWorkerMirroredStrategy (modules/cluster.py).
    """
    gpu = spec.gpu_config

    def pool(replicas: int) -> dict[str, Any]:
        return {
            "machine_spec": {
                "machine_type": gpu.machine_type,
                "accelerator_type": gpu.gpu_type,
                "accelerator_count": gpu.gpu_count,
            },
            "replica_count": replicas,
            "container_spec": {"image_uri": env.pipeline_image},
        }

    job_spec: dict[str, Any] = {"worker_pool_specs": [pool(1)]}
    if gpu.machine_count > 1:
        job_spec["worker_pool_specs"].append(pool(gpu.machine_count - 1))
    if gpu.preemptible:
        # A preempted Spot VM restarts the job; the trainer resumes from its last checkpoint.
        job_spec["scheduling"] = {"strategy": "SPOT", "restart_job_on_worker_restart": True}
    elif gpu.machine_count > 1:
        # All-reduce cannot go on without a worker that restarted (Scheduling.restart_job_on_worker_restart:
        # "for distributed training jobs that are not resilient to workers leaving and joining"):
        # the whole job restarts and every worker resumes from the chief's last checkpoint.
        job_spec["scheduling"] = {"restart_job_on_worker_restart": True}
    if env.service_account:
        job_spec["service_account"] = env.service_account
    job_spec.update(tensorboard_upload(spec, env))
    return job_spec


def tensorboard_upload(spec: RunSpec, env: PipelineEnv) -> dict[str, Any]:
    """CustomJobSpec.tensorboard and base_output_directory: Vertex then sets AIP_TENSORBOARD_LOG_DIR to
    {base_output_directory}/logs/ in every replica and uploads what is written there to the instance, in an
    experiment named after the job (cloud.google.com/vertex-ai/docs/experiments/tensorboard-training; the job
    needs a service account: trainer_job_spec sets the pipeline's, which terraform/tensorboard.tf grants).
    The instance is regional: an attempt moved to another region by a GPU fallback keeps its event files
    with the run's artifacts and uploads nothing (gpu_fallback.tensorboard_skipped; the run says why)."""
    instance = env.vertex_tensorboard
    if not instance or gpu_fallback.tensorboard_skipped(instance, env.region, spec.gpu_config.region):
        return {}
    return {"tensorboard": instance,
            "base_output_directory": {"output_uri_prefix": results.join(spec.artifacts_uri, results.TENSORBOARD_DIR)}}


def _trainer(spec: RunSpec, env: PipelineEnv, transform: Any, schema_gen: Any) -> Any:
    custom_config: dict[str, Any] = {F.RUN_SPEC_KEY: spec.to_json(), **warm_weights.champion_lookup(
        spec, env.target, env.project or "", env.region, env.local_registry_dir, env.local_endpoints_dir,
        env.vertex_emulator_host)}
    kwargs = dict(
        module_file=TRAINER_MODULE,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
    )
    if not env.is_vertex:
        return tfx.components.Trainer(custom_config=custom_config, **kwargs)
    custom_config.update({
        vertex_constants.ENABLE_VERTEX_KEY: True,
        # The attempt's shape may name another region (a GPU fallback: shared/domain/gpu_fallback.py); only the
        # Trainer's CustomJob moves there, reading and writing the run's artifacts where they are.
        vertex_constants.VERTEX_REGION_KEY: spec.gpu_config.region or env.region,
        vertex_trainer_executor.TRAINING_ARGS_KEY: {
            "project": env.project,
            "job_spec": trainer_job_spec(spec, env),
            "labels": billing_labels_for(spec),  # the Trainer's CustomJob: found on cancel, priced in Cloud Billing
        },
    })
    return tfx.extensions.google_cloud_ai_platform.Trainer(custom_config=custom_config, **kwargs)


def create_pipeline(spec: RunSpec, env: Optional[PipelineEnv] = None,
                    metadata_connection_config: Any = None, enable_cache: bool = False) -> tfx.dsl.Pipeline:
    """The 7 components, wired; pure (reads nothing but its arguments)."""
    env = env or PipelineEnv()
    env.require_cloud()
    run_spec_json = spec.to_json()
    # The attempt does not change what the data stages compute: leaving it out keeps their cache
    # valid when a run is retried (Vertex caching keys on the inputs, parameters included).
    data_spec_json = spec.model_copy(update={"attempt": 1}).to_json()

    examples = _example_gen(spec).with_id("ExampleGen")
    statistics = tfx.components.StatisticsGen(examples=examples.outputs["examples"]).with_id("StatisticsGen")
    # SchemaGen, then the data check (pipeline_compiler/data_check.py) in the same task.
    schema = CheckedSchemaGen(statistics=statistics.outputs["statistics"], run_spec=data_spec_json,
                              infer_feature_shape=True).with_id("SchemaGen")
    transform = tfx.components.Transform(
        examples=examples.outputs["examples"],
        schema=schema.outputs["schema"],
        module_file=TRANSFORM_MODULE,
        custom_config={F.RUN_SPEC_KEY: data_spec_json},
        # Vocabularies and statistics from train + eval only; test stays unseen.
        splits_config=tfx.proto.SplitsConfig(analyze=["train", "eval"], transform=["train", "eval", "test"]),
        # TFDV's pre- and post-transform statistics (TFX 1.0+ computes them unless told not to, over every
        # split it transforms): nothing reads them — StatisticsGen has the raw data's, the data check the rest.
        disable_statistics=True,
        # Nothing feeds an analyzer cache back (each run analyzes its own data), so writing one is waste.
        disable_analyzer_cache=True,
    ).with_id("Transform")
    trainer = _trainer(spec, env, transform, schema).with_id("Trainer")
    evaluator = TrainyardEvaluator(
        examples=examples.outputs["examples"],
        model=trainer.outputs["model"],
        transform_graph=transform.outputs["transform_graph"],
        run_spec=run_spec_json,
        # The champion is looked up where the Pusher registers: the Pusher's parameters.
        target=env.target,
        project=env.project or "",
        region=env.region,
        local_registry_dir=env.local_registry_dir,
        local_endpoints_dir=env.local_endpoints_dir,
        vertex_emulator_host=env.vertex_emulator_host,  # as the Trainer's lookup: a stand-in, never in the cloud
    ).with_id("Evaluator")
    pusher = TrainyardPusher(
        model=trainer.outputs["model"],
        blessing=evaluator.outputs["blessing"],
        run_spec=run_spec_json,
        target=env.target,
        project=env.project or "",
        region=env.region,
        serving_image=env.serving_image,
        local_registry_dir=env.local_registry_dir,
        pipeline_image=env.pipeline_image or "",  # the model card's lineage
    ).with_id("Pusher")

    if env.is_vertex and env.data_runner == "dataflow":
        # Each data stage's Dataflow job gets a name the logs reader derives from the run alone
        # (shared/contract/dataflow_jobs.py); a component's own Beam args override the pipeline's
        # (tfx/orchestration/pipeline.py, add_beam_pipeline_args_to_component).
        for component, stage in ((examples, "Examples"), (statistics, "Stats"), (transform, "Transform"),
                                 (evaluator, "Evaluate")):
            component.with_beam_pipeline_args([f"--job_name={dataflow_job_name(spec.run_id, spec.attempt, stage)}"])

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name(spec),
        pipeline_root=spec.pipeline_root,
        components=[examples, statistics, schema, transform, trainer, evaluator, pusher],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=env.beam_pipeline_args() + (
            dataflow_label_args(billing_labels_for(spec))
            if env.is_vertex and env.data_runner == "dataflow" else []),
    )

