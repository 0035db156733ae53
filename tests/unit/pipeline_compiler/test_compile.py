"""Compile the pipeline for Vertex in a temp dir and check the PipelineJob JSON."""
import json
import re
import subprocess
import sys

import pytest

from pipeline_compiler import PipelineEnv, PipelineEnvError, compile_run, module_files
from shared.contract.nodes import NODE_IDS
from pipeline_compiler.demo_data import demo_run_spec

VERTEX_ENV = PipelineEnv(
    target="vertex", project="demo-project", region="europe-west4",
    pipeline_image="europe-docker.pkg.dev/demo-project/trainyard/gpu:1", dataflow_temp="gs://demo-bucket/tmp",
    dataflow_image="europe-docker.pkg.dev/demo-project/trainyard/dataflow:1",
    dataflow_subnetwork="regions/europe-west4/subnetworks/trainyard-dataflow",
    service_account="pipelines@demo-project.iam.gserviceaccount.com",
    dataflow_min_bytes=1,  # the data file below is measured: any size goes to Dataflow
)


def _spec(tmp_path, **overrides):
    (tmp_path / "data.csv").write_text("customer_id,product_id,ts\n1,2,3\n")
    return demo_run_spec(str(tmp_path / "data.csv"), "gs://demo-bucket/artifacts/run-1", str(tmp_path / "root"),
                         run_id="run-1", **overrides)


def _executor_config(job, node):
    """The custom_config exec property the compiler stored for one node."""
    params = job["pipelineSpec"]["root"]["dag"]["tasks"][node]["inputs"]["parameters"]
    return json.loads(params["custom_config"]["runtimeValue"]["constantValue"]["stringValue"])


def _beam_args(job, node):
    executor = job["pipelineSpec"]["deploymentSpec"]["executors"][f"{node}_executor"]["container"]["args"]
    return executor


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("compile")
    spec = _spec(tmp_path, gpu_config={"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 4, "preemptible": True})
    path = compile_run(spec, str(tmp_path / "pipeline_job.json"), VERTEX_ENV)
    with open(path) as handle:
        return json.load(handle), spec


def test_job_json_is_a_pipeline_job_with_seven_named_tasks(compiled):
    job, spec = compiled
    assert job["displayName"] == spec.run_name
    assert job["runtimeConfig"]["gcsOutputDirectory"] == spec.pipeline_root
    assert sorted(job["pipelineSpec"]["root"]["dag"]["tasks"]) == sorted(NODE_IDS)
    assert job["labels"]["trainyard-run-id"] == "run-1"
    # Billing labels (cost per run, schedule and model in a Cloud Billing export), within the label rules.
    assert job["labels"]["trainyard-model"] == spec.run_name and job["labels"]["trainyard-schedule-id"] == "none"
    assert job["labels"]["trainyard-dataflow-machine"] == "e2-standard-4" and job["labels"]["trainyard-dataflow-workers"]
    for key, value in job["labels"].items():
        assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key) and re.fullmatch(r"[a-z0-9_-]{0,63}", value), (key, value)


def test_trainer_worker_pool_has_the_gpus_spot_and_image(compiled):
    job, spec = compiled
    config = _executor_config(job, "Trainer")
    assert config["ai_platform_enable_vertex"] is True
    assert config["ai_platform_vertex_region"] == "europe-west4"
    args = config["ai_platform_training_args"]
    assert args["project"] == "demo-project"
    pool = args["job_spec"]["worker_pool_specs"][0]
    assert pool["machine_spec"] == {"machine_type": "n1-standard-32", "accelerator_type": "NVIDIA_TESLA_T4",
                                    "accelerator_count": 4}
    assert pool["container_spec"]["image_uri"] == VERTEX_ENV.pipeline_image
    assert args["job_spec"]["scheduling"]["strategy"] == "SPOT"
    assert args["job_spec"]["service_account"] == VERTEX_ENV.service_account
    assert "run_spec" in config  # the module config travels in custom_config
    assert args["labels"] == {"trainyard-run-id": "run-1", "trainyard-attempt": "1", "trainyard-model": spec.run_name,
                              "trainyard-schedule-id": "none"}  # the CustomJob's billing labels


def test_data_stages_run_on_dataflow_in_the_cloud(compiled):
    """A dataset measured large goes to Dataflow, on our worker image."""
    job, _ = compiled
    assert job["labels"]["trainyard-data-runner"] == "dataflow"
    for node in ("ExampleGen", "StatisticsGen", "Transform"):
        args = _beam_args(job, node)
        for expected in ("--runner=DataflowRunner", "--temp_location=gs://demo-bucket/tmp", "--project=demo-project",
                         "--region=europe-west4", "--sdk_location=container", "--experiments=use_runner_v2",
                         f"--sdk_container_image={VERTEX_ENV.dataflow_image}", "--no_use_public_ips",
                         f"--subnetwork={VERTEX_ENV.dataflow_subnetwork}",
                         "--service_account_email=pipelines@demo-project.iam.gserviceaccount.com",
                         "--labels=trainyard-run-id=run-1", "--labels=trainyard-schedule-id=none"):
            assert expected in " ".join(args), (node, expected)


def test_each_data_stage_names_its_dataflow_job_for_the_logs_reader(compiled):
    """The logs reader finds a stage's Dataflow worker logs by job name (shared/contract/dataflow_jobs.py)."""
    from shared.contract.dataflow_jobs import dataflow_job_name

    job, spec = compiled
    for node, stage in (("ExampleGen", "Examples"), ("StatisticsGen", "Stats"), ("Transform", "Transform"),
                        ("Evaluator", "Evaluate")):
        names = [a for a in _beam_args(job, node) if a.startswith("--job_name=")]
        assert names == [f"--job_name={dataflow_job_name('run-1', spec.attempt, stage)}"], (node, names)


def test_a_compile_logs_json_lines_with_its_run_id(tmp_path, capsys):
    """The compile's own lines (shared/log.py) are JSON with the run bound once, so Cloud Logging
    finds a run's compile by jsonPayload.run_id."""
    spec = _spec(tmp_path)
    capsys.readouterr()
    compile_run(spec, str(tmp_path / "logged.json"), VERTEX_ENV)
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [e["message"] for e in entries] == ["compiling the pipeline", "data stages runner chosen", "pipeline compiled"]
    for entry in entries:
        assert entry["severity"] == "INFO" and entry["run_id"] == "run-1" and entry["attempt"] == spec.attempt, entry
    assert entries[-1]["out_path"] == str(tmp_path / "logged.json")


def test_small_data_runs_its_beam_stages_inside_the_task(tmp_path):
    spec = _spec(tmp_path)
    spec = spec.model_copy(update={"dataset": spec.dataset.model_validate(
        {**spec.dataset.model_dump(), "stats": {"rows": 20_000}})})
    with open(compile_run(spec, str(tmp_path / "small.json"), VERTEX_ENV)) as handle:
        job = json.load(handle)
    assert job["labels"]["trainyard-data-runner"] == "direct"
    args = " ".join(_beam_args(job, "Transform"))
    assert "--runner=DirectRunner" in args and "DataflowRunner" not in args and "sdk_container_image" not in args
    # still the Vertex pipeline: the GPU Trainer and the registry push
    assert _executor_config(job, "Trainer")["ai_platform_enable_vertex"] is True


def test_beam_args_switch_between_direct_runner_and_dataflow():
    from shared.settings import Settings

    local = PipelineEnv.from_settings(Settings.from_environ({}))
    assert local.target == "local"
    assert "--runner=DirectRunner" in local.beam_pipeline_args()
    cloud = PipelineEnv.from_settings(Settings.from_environ({
        "TRAINYARD_PIPELINE_BACKEND": "vertex", "GOOGLE_CLOUD_PROJECT": "p", "TRAINYARD_REGION": "us-central1",
        "TRAINYARD_PIPELINE_IMAGE": "img", "TRAINYARD_DATAFLOW_TEMP": "gs://b/t", "TRAINYARD_DATAFLOW_IMAGE": "df",
        "TRAINYARD_DATAFLOW_SUBNETWORK": "regions/us-central1/subnetworks/s", "TRAINYARD_DATAFLOW_PUBLIC_IPS": "true",
    }))
    args = cloud.beam_pipeline_args()
    assert args[:4] == ["--runner=DataflowRunner", "--project=p", "--region=us-central1", "--temp_location=gs://b/t"]
    assert "--no_use_public_ips" not in args and "--sdk_container_image=df" in args
    with pytest.raises(PipelineEnvError, match="TRAINYARD_DATAFLOW_TEMP, TRAINYARD_DATAFLOW_SUBNETWORK"):
        PipelineEnv(target="vertex", project="p", pipeline_image="i", dataflow_image="d").beam_pipeline_args()
    # DirectRunner inside the task needs no Dataflow image or network, but a project and temp (BigQuery reads)
    direct = PipelineEnv(target="vertex", project="p", pipeline_image="i", dataflow_temp="gs://b/t",
                         data_runner="direct").beam_pipeline_args()
    assert "--runner=DirectRunner" in direct and "--project=p" in direct and "--temp_location=gs://b/t" in direct
    with pytest.raises(PipelineEnvError, match="needs TRAINYARD_DATAFLOW_TEMP$"):
        PipelineEnv(target="vertex", project="p", pipeline_image="i", data_runner="direct").beam_pipeline_args()


def test_every_task_runs_the_pipeline_image(compiled):
    job, _ = compiled
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    assert executors and {e["container"]["image"] for e in executors.values()} == {VERTEX_ENV.pipeline_image}


def test_the_pusher_registers_in_vertex(compiled):
    job, _ = compiled
    params = job["pipelineSpec"]["root"]["dag"]["tasks"]["Pusher"]["inputs"]["parameters"]
    value = {k: v["runtimeValue"]["constantValue"]["stringValue"] for k, v in params.items()}
    assert value["target"] == "vertex" and value["project"] == "demo-project" and value["region"] == "europe-west4"
    assert value["serving_image"] == VERTEX_ENV.serving_image


def test_local_pipeline_uses_plain_trainer_and_direct_runner(tmp_path):
    from pipeline_compiler.pipeline import create_pipeline

    pipeline = create_pipeline(_spec(tmp_path), PipelineEnv(local_registry_dir=str(tmp_path / "registry")))
    assert [c.id for c in pipeline.components] == list(NODE_IDS)
    trainer = pipeline.components[4]
    assert "ai_platform_training_args" not in trainer.exec_properties["custom_config"]
    assert "--runner=DirectRunner" in pipeline.beam_pipeline_args


def test_bigquery_strict_time_split_queries(tmp_path):
    from pipeline_compiler.pipeline import bigquery_queries

    spec = _spec(tmp_path, dataset={
        "name": "bq", "source": {"kind": "bigquery", "table": "my-project.d.t"},
        "columns": {"user_id": "customer_id", "item_id": "product_id", "timestamp": "timestamp", "quantity": "quantity"},
    })
    queries = bigquery_queries(spec)
    assert set(queries) == {"train", "eval", "test"}
    assert "q[OFFSET(16)]" in queries["train"] and "q[OFFSET(19)]" in queries["test"]
    assert "FROM `my-project`.`d`.`t`" in queries["train"]


def test_package_import_does_not_load_tensorflow_or_tfx():
    code = ("import sys, pipeline_compiler; "
            "heavy = [m for m in ('tensorflow', 'tfx', 'google.cloud.aiplatform') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_module_files_exist():
    files = module_files()
    assert set(files) >= {"transform.py", "trainer.py"}
    for path in files.values():
        with open(path) as handle:
            assert handle.read(10)


def _module_imports(path: str) -> set[str]:
    import ast

    package = "pipeline_compiler.modules"
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module == package:  # from pipeline_compiler.modules import x
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package + "."):
            found.add(node.module.rsplit(".", 1)[1])
    return {name + ".py" for name in found}


def test_the_snapshot_and_the_training_image_hold_every_module_the_trainer_imports():
    """The Trainer runs pipeline.TRAINER_MODULE (`run_fn` in trainer.py), which imports its parts from
    pipeline_compiler.modules: each is in the run's snapshot and in the GPU image the Trainer runs in."""
    from pipeline_compiler.pipeline import TRAINER_MODULE
    from tests.rehearsal.images import load as load_image
    from pathlib import Path

    files = module_files()
    assert files["trainer.py"] == TRAINER_MODULE
    needed, todo = set(), ["trainer.py"]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += sorted(_module_imports(files[name]))
    assert needed >= {"trainer.py", "model.py", "data.py", "callbacks.py", "export.py", "features.py", "cluster.py",
                      "live_metrics.py"}
    assert needed <= set(files)
    root = Path(__file__).resolve().parents[3]
    image = load_image(root / "gpu_image" / "Dockerfile").files()
    assert {f"pipeline_compiler/modules/{name}" for name in needed} <= set(image)


def test_a_retry_keeps_the_data_stages_cacheable(compiled, tmp_path):
    """Vertex caches a task on its inputs: a second attempt must give ExampleGen and Transform the
    same ones (the Trainer gets the attempt, for its progress messages; it resumes from checkpoints)."""
    job, spec = compiled
    retry = spec.model_copy(update={"attempt": 2})
    with open(compile_run(retry, str(tmp_path / "retry.json"), VERTEX_ENV)) as handle:
        again = json.load(handle)
    for node in ("ExampleGen", "Transform"):
        assert _executor_config(again, node) == _executor_config(job, node), node
    assert json.loads(_executor_config(again, "Trainer")["run_spec"])["attempt"] == 2


def test_several_machines_compile_to_a_chief_pool_and_a_worker_pool(tmp_path):
    """machine_count 3: Vertex's primary pool (1 replica, TF_CONFIG chief) + a pool of 2 workers, alike in
    machine, GPUs and image; Vertex restarts the whole job when one restarts (all-reduce needs everyone)."""
    from google.cloud import aiplatform_v1
    from tfx.extensions.google_cloud_ai_platform import training_clients

    spec = _spec(tmp_path, gpu_config={"gpu_type": "NVIDIA_L4", "gpu_count": 2, "preemptible": False,
                                       "machine_count": 3})
    with open(compile_run(spec, str(tmp_path / "multi.json"), VERTEX_ENV)) as handle:
        args = _executor_config(json.load(handle), "Trainer")["ai_platform_training_args"]
    chief, workers = args["job_spec"]["worker_pool_specs"]
    machine = {"machine_type": "g2-standard-24", "accelerator_type": "NVIDIA_L4", "accelerator_count": 2}
    assert chief == {"machine_spec": machine, "replica_count": 1, "container_spec": {"image_uri": VERTEX_ENV.pipeline_image}}
    assert workers == {**chief, "replica_count": 2}
    assert args["job_spec"]["scheduling"] == {"restart_job_on_worker_restart": True}  # on-demand: no SPOT

    # What TFX's Vertex Trainer makes of it: every pool runs the Trainer executor, and the CustomJob
    # is one the official client (the aiplatform_v1 protos) accepts as it is.
    client = object.__new__(training_clients.VertexJobClient)  # building the job needs no API client
    job = client.create_training_job({}, {}, {}, "tfx.components.trainer.executor.GenericExecutor",
                                     json.loads(json.dumps(args)), None, None)
    commands = [p["container_spec"]["command"] for p in job["job_spec"]["worker_pool_specs"]]
    assert len(commands) == 2 and commands[0] == commands[1] and "tfx.scripts.run_executor" in " ".join(commands[0])
    proto = aiplatform_v1.CustomJob(job)
    assert [p.replica_count for p in proto.job_spec.worker_pool_specs] == [1, 2]
    assert proto.job_spec.scheduling.restart_job_on_worker_restart


TENSORBOARD = "projects/demo-project/locations/europe-west4/tensorboards/123"


def test_the_trainer_uploads_to_the_tensorboard_instance_from_the_runs_artifacts(tmp_path):
    """CustomJobSpec.tensorboard + base_output_directory: Vertex sets AIP_TENSORBOARD_LOG_DIR under the
    directory and uploads it to the instance; the official proto keeps both as TFX's client builds the job."""
    import dataclasses

    from google.cloud import aiplatform_v1
    from tfx.extensions.google_cloud_ai_platform import training_clients

    spec = _spec(tmp_path)
    env = dataclasses.replace(VERTEX_ENV, vertex_tensorboard=TENSORBOARD)
    with open(compile_run(spec, str(tmp_path / "tb.json"), env)) as handle:
        args = _executor_config(json.load(handle), "Trainer")["ai_platform_training_args"]
    assert args["job_spec"]["tensorboard"] == TENSORBOARD
    assert args["job_spec"]["base_output_directory"] == {"output_uri_prefix": "gs://demo-bucket/artifacts/run-1/tensorboard"}
    client = object.__new__(training_clients.VertexJobClient)
    proto = aiplatform_v1.CustomJob(client.create_training_job(
        {}, {}, {}, "tfx.components.trainer.executor.GenericExecutor", json.loads(json.dumps(args)), None, None))
    assert proto.job_spec.tensorboard == TENSORBOARD
    assert proto.job_spec.base_output_directory.output_uri_prefix == "gs://demo-bucket/artifacts/run-1/tensorboard"
    assert proto.job_spec.service_account == VERTEX_ENV.service_account  # Vertex requires one for the upload


def test_no_instance_or_another_region_uploads_nothing(compiled, tmp_path):
    job, _ = compiled  # VERTEX_ENV names no instance
    assert {"tensorboard", "base_output_directory"}.isdisjoint(
        _executor_config(job, "Trainer")["ai_platform_training_args"]["job_spec"])
    import dataclasses

    from pipeline_compiler.pipeline import trainer_job_spec

    moved = _spec(tmp_path, gpu_config={"gpu_type": "NVIDIA_L4", "gpu_count": 1, "region": "us-central1"})
    assert "tensorboard" not in trainer_job_spec(moved, dataclasses.replace(VERTEX_ENV, vertex_tensorboard=TENSORBOARD))


def test_an_attempt_moved_to_another_region_names_no_tensorboard_of_the_home_region(tmp_path):
    """A GPU fallback's attempt in us-central1 with the instance in europe-west4: the compiled CustomJob, as TFX's
    client builds it and the official proto reads it, names no TensorBoard (a job may only use resources of its own
    location) and runs in us-central1; its event files stay with the run's artifacts."""
    import dataclasses

    from google.cloud import aiplatform_v1
    from tfx.extensions.google_cloud_ai_platform import training_clients

    moved = _spec(tmp_path, gpu_config={"gpu_type": "NVIDIA_L4", "gpu_count": 1, "region": "us-central1"})
    with open(compile_run(moved, str(tmp_path / "moved.json"), dataclasses.replace(
            VERTEX_ENV, vertex_tensorboard=TENSORBOARD))) as handle:
        config = _executor_config(json.load(handle), "Trainer")
    args = config["ai_platform_training_args"]
    client = object.__new__(training_clients.VertexJobClient)
    proto = aiplatform_v1.CustomJob(client.create_training_job(
        {}, {}, {}, "tfx.components.trainer.executor.GenericExecutor", json.loads(json.dumps(args)), None, None))
    assert proto.job_spec.tensorboard == "" and not proto.job_spec.base_output_directory.output_uri_prefix
    assert proto.job_spec.service_account == VERTEX_ENV.service_account
    from tfx.extensions.google_cloud_ai_platform import constants as vertex_constants
    assert config[vertex_constants.VERTEX_REGION_KEY] == "us-central1"


def test_one_machine_is_one_pool(compiled):
    job, _ = compiled
    pools = _executor_config(job, "Trainer")["ai_platform_training_args"]["job_spec"]["worker_pool_specs"]
    assert len(pools) == 1 and pools[0]["replica_count"] == 1


def _bigquery_spec(tmp_path, run_id="run-1", rows=20_000, **overrides):
    return demo_run_spec(str(tmp_path / "unused.csv"), f"gs://demo-bucket/artifacts/{run_id}", str(tmp_path / run_id),
                         run_id=run_id, dataset={
                             "name": "bq", "source": {"kind": "bigquery", "table": "my-project.d.t"}, "stats": {"rows": rows},
                             "columns": {"user_id": "customer_id", "item_id": "product_id", "timestamp": "timestamp",
                                         "quantity": "quantity"}}, **overrides)


def _compile(spec, path):
    with open(compile_run(spec, str(path), VERTEX_ENV)) as handle:
        return json.load(handle)


def test_a_small_bigquery_run_reads_with_a_project_and_a_temp_location(tmp_path):
    """Review N6: DirectRunner inside the Vertex task gets --project (TFX's BigQueryExampleGen runs its query
    there) and --temp_location (Beam's ReadFromBigQuery exports through it, and raised without it)."""
    from apache_beam.io.gcp.bigquery_read_internal import bigquery_export_destination_uri
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions
    from tfx.extensions.google_cloud_big_query.utils import parse_gcp_project

    job = _compile(_bigquery_spec(tmp_path), tmp_path / "bq.json")
    assert job["labels"]["trainyard-data-runner"] == "direct"
    for node in ("ExampleGen", "StatisticsGen", "Transform"):
        args = _beam_args(job, node)
        assert "--runner=DirectRunner" in args, node
        options = PipelineOptions(args).view_as(GoogleCloudOptions)  # Beam's own parsing of the task's arguments
        assert (options.project, options.temp_location) == ("demo-project", "gs://demo-bucket/tmp"), node
        assert parse_gcp_project(args) == "demo-project"
        assert bigquery_export_destination_uri(None, options.temp_location, "u").startswith("gs://demo-bucket/tmp/u/")


def test_the_local_twin_keeps_its_direct_runner_options(tmp_path):
    from pipeline_compiler.environment import DIRECT_RUNNER_ARGS
    from pipeline_compiler.pipeline import create_pipeline

    pipeline = create_pipeline(_bigquery_spec(tmp_path), PipelineEnv(local_registry_dir=str(tmp_path / "registry")))
    assert pipeline.beam_pipeline_args == list(DIRECT_RUNNER_ARGS)


def _file_spec(tmp_path, run_id="run-1", **overrides):
    spec = demo_run_spec(
        str(tmp_path / "data.csv"), f"gs://demo-bucket/artifacts/{run_id}", str(tmp_path / run_id), run_id=run_id,
        **overrides)
    return spec.model_copy(update={"dataset": spec.dataset.model_validate(
        {**spec.dataset.model_dump(), "stats": {"rows": 20_000}})})


@pytest.mark.parametrize("make_spec", [_bigquery_spec, _file_spec], ids=["bigquery", "files"])
def test_each_run_reads_fresh_data_and_a_retry_its_own_snapshot(tmp_path, make_spec):
    """Review N12: Vertex serves a task from a previous execution with the same inputs, outputs and container
    arguments. ExampleGen's parameters carry the run, so another run with the same SQL or path reads the data
    again; a retry of the run (attempt 2) keeps the same parameters and may reuse its run's snapshot."""
    (tmp_path / "data.csv").write_text("customer_id,product_id,ts\n1,2,3\n")
    first = _compile(make_spec(tmp_path), tmp_path / "first.json")
    retry = _compile(make_spec(tmp_path).model_copy(update={"attempt": 2}), tmp_path / "retry.json")
    other = _compile(make_spec(tmp_path, run_id="run-2"), tmp_path / "other.json")

    def task(job, node):
        return job["pipelineSpec"]["root"]["dag"]["tasks"][node]

    def key(job, node):  # what Vertex's cache key holds of the task's spec (the artifact ids come at run time)
        executor = job["pipelineSpec"]["deploymentSpec"]["executors"][f"{node}_executor"]["container"]
        return task(job, node)["inputs"].get("parameters"), executor["args"], executor["image"]

    assert key(first, "ExampleGen") == key(retry, "ExampleGen")
    assert key(first, "ExampleGen") != key(other, "ExampleGen")
    # StatisticsGen reads the ExampleGen execution's own artifact: a fresh ExampleGen is a fresh StatisticsGen.
    examples = task(first, "StatisticsGen")["inputs"]["artifacts"]["examples"]["taskOutputArtifact"]
    assert examples["producerTask"] == "ExampleGen"
