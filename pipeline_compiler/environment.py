"""Where a pipeline runs: the values compiling and running it need, built from shared/settings.py
(never `if local:` scattered elsewhere). The target follows TRAINYARD_PIPELINE_BACKEND: a run is
compiled for Vertex exactly when it is submitted to Vertex.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

Target = Literal["local", "vertex"]
DataRunner = Literal["dataflow", "direct"]

DEFAULT_REGION = "europe-west4"
# TFX's own Vertex example gives Dataflow workers 50 GB disks (tensorflow/tfx v1.15.0,
# tfx/examples/penguin/penguin_pipeline_kubeflow.py, _beam_pipeline_args_by_runner["DataflowRunner"]).
DATAFLOW_DISK_GB = 50
# The local twin's Beam options, and a small run's options inside its Vertex task: in_memory needs no
# worker subprocesses (TFX's example keeps multi_processing off: b/234074054).
DIRECT_RUNNER_ARGS = ("--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1")


class PipelineEnvError(ValueError):
    """A setting the chosen target needs is missing or malformed."""


@dataclass(frozen=True)
class PipelineEnv:
    target: Target = "local"
    project: Optional[str] = None
    region: str = DEFAULT_REGION
    pipeline_image: Optional[str] = None
    dataflow_image: Optional[str] = None
    dataflow_temp: Optional[str] = None
    dataflow_subnetwork: Optional[str] = None
    dataflow_public_ips: bool = False
    dataflow_machine_type: str = "e2-standard-4"
    dataflow_max_workers: int = 10
    service_account: Optional[str] = None
    # The Vertex AI TensorBoard instance the Trainer's CustomJob uploads its event files to (None: no upload).
    vertex_tensorboard: Optional[str] = None
    # A Vertex AI stand-in (the rehearsal's gRPC fakes, TRAINYARD_VERTEX_EMULATOR_HOST): the Trainer's and the
    # Evaluator's champion lookups ask it instead of {region}-aiplatform.googleapis.com. Unset in the cloud.
    vertex_emulator_host: str = ""
    local_registry_dir: str = ".local/registry"
    local_endpoints_dir: str = ".local/endpoints"  # the Evaluator finds a local champion's endpoint here
    # The prediction container the Pusher registers each model with: Trainyard's serving image
    # (serving_image/), which loads ScaNN's TF ops; Vertex's prebuilt TF images cannot load the exported
    # ScaNN index. On Vertex, TRAINYARD_SERVING_IMAGE is the Artifact Registry reference Terraform sets;
    # the local registry ignores it.
    serving_image: str = "trainyard-serving"
    # Where the data stages' Beam pipelines run on Vertex: Dataflow jobs, or DirectRunner inside the
    # component's own container (small data; see pipeline_compiler/data_scale.py).
    data_runner: DataRunner = "dataflow"
    dataflow_min_rows: int = 1_000_000
    dataflow_min_bytes: int = 256 * 1024 * 1024
    extra_beam_args: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings) -> "PipelineEnv":
        return cls(
            target="vertex" if settings.pipeline_backend == "vertex" else "local",
            project=settings.project or None,
            region=settings.region or DEFAULT_REGION,
            pipeline_image=settings.pipeline_image or None,
            dataflow_image=settings.dataflow_image or None,
            dataflow_temp=settings.dataflow_temp or None,
            dataflow_subnetwork=settings.dataflow_subnetwork or None,
            dataflow_public_ips=settings.dataflow_public_ips,
            dataflow_machine_type=settings.dataflow_machine_type,
            dataflow_max_workers=settings.dataflow_max_workers,
            service_account=settings.pipeline_service_account or None,
            vertex_tensorboard=settings.vertex_tensorboard or None,
            vertex_emulator_host=settings.vertex_emulator_host,
            local_registry_dir=settings.local_registry_dir,
            local_endpoints_dir=settings.local_endpoints_dir,
            serving_image=settings.serving_image,
            dataflow_min_rows=settings.dataflow_min_rows,
            dataflow_min_bytes=settings.dataflow_min_bytes,
        )

    @classmethod
    def current(cls) -> "PipelineEnv":
        from shared.settings import get_settings

        return cls.from_settings(get_settings())

    @property
    def is_vertex(self) -> bool:
        return self.target == "vertex"

    def require_cloud(self) -> None:
        """Fail early, naming every missing setting, instead of deep inside a compile or a Dataflow job."""
        if not self.is_vertex:
            return
        # Both runners need the temp location: DirectRunner inside the task reads BigQuery through it too.
        needed = [("GOOGLE_CLOUD_PROJECT", self.project), ("TRAINYARD_PIPELINE_IMAGE", self.pipeline_image),
                  ("TRAINYARD_DATAFLOW_TEMP", self.dataflow_temp)]
        if self.data_runner == "dataflow":
            needed += [("TRAINYARD_DATAFLOW_IMAGE", self.dataflow_image),
                       ("TRAINYARD_DATAFLOW_SUBNETWORK", self.dataflow_subnetwork)]
        missing = [name for name, value in needed if not value]
        if missing:
            raise PipelineEnvError("the vertex target needs " + ", ".join(missing))
        if not str(self.dataflow_temp).startswith("gs://"):
            raise PipelineEnvError("TRAINYARD_DATAFLOW_TEMP must be a gs:// URI")

    def beam_pipeline_args(self) -> list[str]:
        """Beam options of the data stages: DirectRunner locally and for small data, Dataflow otherwise."""
        if not self.is_vertex:
            return list(DIRECT_RUNNER_ARGS) + list(self.extra_beam_args)
        self.require_cloud()
        if self.data_runner == "direct":
            # DirectRunner inside a Vertex task still reads BigQuery: Beam's ReadFromBigQuery exports the
            # query result under --temp_location and raises "ReadFromBigQuery requires a GCS location"
            # without one (apache_beam/io/gcp/bigquery_read_internal.py), and TFX's BigQueryExampleGen runs
            # its query in GoogleCloudOptions.project (tfx/extensions/google_cloud_big_query/utils.py,
            # parse_gcp_project). The temp is Dataflow's, which Terraform lets the pipeline account write.
            return list(DIRECT_RUNNER_ARGS) + [f"--project={self.project}", f"--temp_location={self.dataflow_temp}"] \
                + list(self.extra_beam_args)
        args = [
            "--runner=DataflowRunner",
            f"--project={self.project}",
            f"--region={self.region}",
            f"--temp_location={self.dataflow_temp}",
            # Workers run our image (TFX, TFT, TFDV, shared/ and pipeline_compiler/, the pins of the
            # launcher); the SDK comes from it, not from a staged tarball. Custom containers need
            # Runner v2 (https://cloud.google.com/dataflow/docs/guides/build-container-image).
            f"--sdk_container_image={self.dataflow_image}",
            "--sdk_location=container",
            "--experiments=use_runner_v2",
            f"--subnetwork={self.dataflow_subnetwork}",
            f"--machine_type={self.dataflow_machine_type}",
            f"--max_num_workers={self.dataflow_max_workers}",
            f"--disk_size_gb={DATAFLOW_DISK_GB}",
        ]
        if not self.dataflow_public_ips:
            # Private Google Access on the subnetwork reaches GCS, BigQuery and Artifact Registry.
            args.append("--no_use_public_ips")
        if self.service_account:
            args.append(f"--service_account_email={self.service_account}")
        return args + list(self.extra_beam_args)
