"""Where a pipeline runs, read once from the environment (never `if local:` scattered elsewhere).

TRAINYARD_TARGET                    local (default) | vertex
GOOGLE_CLOUD_PROJECT                the project of Dataflow, the Trainer custom job and the registry
TRAINYARD_REGION                    Vertex / Dataflow region (default europe-west1)
TRAINYARD_PIPELINE_IMAGE            the GPU image every component runs in on Vertex (gpu_image/)
TRAINYARD_DATAFLOW_TEMP             gs:// temp location for Dataflow and BigQuery exports
TRAINYARD_PIPELINE_SERVICE_ACCOUNT  service account of Dataflow workers and the Trainer job
TRAINYARD_LOCAL_REGISTRY_DIR        the local model registry (default .local/registry)
TRAINYARD_SERVING_IMAGE             prediction container of registered models on Vertex
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal, Mapping, Optional

Target = Literal["local", "vertex"]

DEFAULT_REGION = "europe-west1"
DEFAULT_LOCAL_REGISTRY_DIR = ".local/registry"
# Prebuilt TF 2.15 prediction image. Serving a ScaNN index needs the ScaNN ops, i.e. a custom image
# (the GPU image has them); set TRAINYARD_SERVING_IMAGE to it for scann-indexed models.
DEFAULT_SERVING_IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"


class PipelineEnvError(ValueError):
    """A setting the chosen target needs is missing or malformed."""


@dataclass(frozen=True)
class PipelineEnv:
    target: Target = "local"
    project: Optional[str] = None
    region: str = DEFAULT_REGION
    pipeline_image: Optional[str] = None
    dataflow_temp: Optional[str] = None
    service_account: Optional[str] = None
    local_registry_dir: str = DEFAULT_LOCAL_REGISTRY_DIR
    serving_image: str = DEFAULT_SERVING_IMAGE
    extra_beam_args: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "PipelineEnv":
        env = os.environ if environ is None else environ
        target = (env.get("TRAINYARD_TARGET") or "local").strip().lower()
        if target not in ("local", "vertex"):
            raise PipelineEnvError(f"TRAINYARD_TARGET must be 'local' or 'vertex', not {target!r}")
        return cls(
            target=target,  # type: ignore[arg-type]
            project=env.get("GOOGLE_CLOUD_PROJECT") or None,
            region=env.get("TRAINYARD_REGION") or DEFAULT_REGION,
            pipeline_image=env.get("TRAINYARD_PIPELINE_IMAGE") or None,
            dataflow_temp=env.get("TRAINYARD_DATAFLOW_TEMP") or None,
            service_account=env.get("TRAINYARD_PIPELINE_SERVICE_ACCOUNT") or None,
            local_registry_dir=os.path.abspath(env.get("TRAINYARD_LOCAL_REGISTRY_DIR") or DEFAULT_LOCAL_REGISTRY_DIR),
            serving_image=env.get("TRAINYARD_SERVING_IMAGE") or DEFAULT_SERVING_IMAGE,
        )

    @property
    def is_vertex(self) -> bool:
        return self.target == "vertex"

    def require_cloud(self) -> None:
        """Fail early, with every missing name, instead of deep inside a compile or a Dataflow job."""
        if not self.is_vertex:
            return
        missing = [
            name
            for name, value in (
                ("GOOGLE_CLOUD_PROJECT", self.project),
                ("TRAINYARD_PIPELINE_IMAGE", self.pipeline_image),
                ("TRAINYARD_DATAFLOW_TEMP", self.dataflow_temp),
            )
            if not value
        ]
        if missing:
            raise PipelineEnvError("the vertex target needs " + ", ".join(missing))
        if not str(self.dataflow_temp).startswith("gs://"):
            raise PipelineEnvError("TRAINYARD_DATAFLOW_TEMP must be a gs:// URI")

    def beam_pipeline_args(self) -> list[str]:
        """Beam options of the data stages: DirectRunner here, Dataflow in the cloud."""
        if self.is_vertex:
            self.require_cloud()
            args = [
                "--runner=DataflowRunner",
                f"--project={self.project}",
                f"--region={self.region}",
                f"--temp_location={self.dataflow_temp}",
            ]
            if self.service_account:
                args.append(f"--service_account_email={self.service_account}")
        else:
            # in_memory: no worker subprocesses, which is fastest for the small data of a laptop run.
            args = ["--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
        return args + list(self.extra_beam_args)
