"""A GPU fallback's attempt compiles to a Trainer CustomJob on its shape: machine, accelerator, region and
scheduling strategy, as the official aiplatform_v1 protos read them."""
import json

from pipeline_compiler import compile_run
from tests.unit.pipeline_compiler.test_compile import VERTEX_ENV, _executor_config, _spec


def test_the_fallback_shapes_machine_accelerator_region_and_on_demand_reach_the_custom_job(tmp_path):
    from google.cloud import aiplatform_v1
    from tfx.extensions.google_cloud_ai_platform import training_clients

    shape = {"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 2, "region": "us-central1", "preemptible": False}
    spec = _spec(tmp_path, gpu_config={**shape, "fallbacks": [shape]})
    with open(compile_run(spec, str(tmp_path / "fallback.json"), VERTEX_ENV)) as handle:
        config = _executor_config(json.load(handle), "Trainer")
    assert config["ai_platform_vertex_region"] == "us-central1"  # the shape's region, not the deployment's
    args = config["ai_platform_training_args"]
    client = object.__new__(training_clients.VertexJobClient)  # building the job needs no API client
    job = aiplatform_v1.CustomJob(client.create_training_job({}, {}, {}, "tfx.components.trainer.executor.GenericExecutor",
                                                              json.loads(json.dumps(args)), None, None))
    (pool,) = job.job_spec.worker_pool_specs
    assert pool.machine_spec.machine_type == "n1-standard-16"
    assert pool.machine_spec.accelerator_type == aiplatform_v1.AcceleratorType.NVIDIA_TESLA_T4
    assert pool.machine_spec.accelerator_count == 2
    assert job.job_spec.scheduling.strategy != aiplatform_v1.Scheduling.Strategy.SPOT  # on-demand


def test_a_shape_without_a_region_runs_in_the_deployments_region_on_spot(tmp_path):
    from google.cloud import aiplatform_v1

    spec = _spec(tmp_path, gpu_config={"gpu_type": "NVIDIA_L4", "gpu_count": 1})
    with open(compile_run(spec, str(tmp_path / "primary.json"), VERTEX_ENV)) as handle:
        config = _executor_config(json.load(handle), "Trainer")
    assert config["ai_platform_vertex_region"] == VERTEX_ENV.region
    job_spec = aiplatform_v1.CustomJobSpec(config["ai_platform_training_args"]["job_spec"])
    assert job_spec.scheduling.strategy == aiplatform_v1.Scheduling.Strategy.SPOT
