"""Settings from the environment, read once. The cloud/local choice is made here and nowhere else."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


@dataclass(frozen=True)
class Settings:
    project: str
    region: str
    # Where each run's files live: {artifacts_root}/{run_id}/ (gs://bucket/training or a local dir).
    artifacts_root: str
    pipeline_root: str
    # "vertex" (Vertex AI Pipelines) or "local" (the local pipeline service at local_pipeline_url).
    pipeline_backend: str
    local_pipeline_url: str
    pipeline_service_account: str
    # "google": verified Google identity (ID token); "local": a configured developer identity.
    auth_mode: str
    auth_audience: str
    allowed_domain: str
    dev_identity: str
    dev_token: str
    # A "module:function" compiling a RunSpec to Vertex JSON; the production one unless a test swaps it.
    compiler: str
    progress_min_interval_s: float
    extra: dict = field(default_factory=dict)
    # "cloud-scheduler" (a Cloud Scheduler job per schedule) or "local" (scripts/ticker.py publishes).
    scheduler_backend: str = "local"
    scheduler_location: str = ""

    @property
    def progress_topic_path(self) -> str:
        from shared import topics

        return f"projects/{self.project}/topics/{topics.TRAINING_PROGRESS}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    local_root = Path(_env("TRAINYARD_LOCAL_DIR", str(REPO_ROOT / ".local"))).resolve()
    artifacts_root = _env("TRAINYARD_ARTIFACTS_ROOT", str(local_root / "artifacts"))
    return Settings(
        project=_env("GOOGLE_CLOUD_PROJECT", "trainyard-local"),
        region=_env("TRAINYARD_REGION", "europe-west4"),
        artifacts_root=artifacts_root,
        pipeline_root=_env("TRAINYARD_PIPELINE_ROOT", str(local_root / "pipeline-root")),
        pipeline_backend=_env("TRAINYARD_PIPELINE_BACKEND", "local"),
        local_pipeline_url=_env("TRAINYARD_LOCAL_PIPELINE_URL", "http://127.0.0.1:8090"),
        pipeline_service_account=_env("TRAINYARD_PIPELINE_SERVICE_ACCOUNT"),
        auth_mode=_env("TRAINYARD_AUTH", "google"),
        auth_audience=_env("TRAINYARD_AUTH_AUDIENCE"),
        allowed_domain=_env("TRAINYARD_ALLOWED_DOMAIN"),
        dev_identity=_env("TRAINYARD_DEV_IDENTITY", "developer@localhost"),
        dev_token=_env("TRAINYARD_DEV_TOKEN"),
        compiler=_env("TRAINYARD_COMPILER", "pipeline_compiler:compile_run"),
        progress_min_interval_s=float(_env("TRAINYARD_PROGRESS_MIN_INTERVAL_S", "1.0")),
        scheduler_backend=_env("TRAINYARD_SCHEDULER_BACKEND",
                               "cloud-scheduler" if _env("TRAINYARD_PIPELINE_BACKEND", "local") == "vertex" else "local"),
        scheduler_location=_env("TRAINYARD_SCHEDULER_LOCATION") or _env("TRAINYARD_REGION", "europe-west4"),
    )
