"""The composition root: every adapter an entry point uses is built here, from settings, once per
process. The cloud/local choice of each adapter is made here and nowhere else.

Entry points (functions/*/main.py) ask `root` for what they need. Nothing is built at import (cold
starts stay light); the first use builds under one lock, so concurrent first requests never import the
same packages side by side (which can hand a thread a half-initialised module). Tests hand in fakes
with `root.provide(...)` or build a `Root(settings)` of their own.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from shared.settings import Settings, get_settings

# --------------------------------------------------------------------------- builders (one per adapter)


def repository(settings: Settings):
    from shared.adapters.repository import FirestoreRepository

    return FirestoreRepository(settings.project)


def publisher(settings: Settings):
    from shared.adapters.messaging import PubSubPublisher

    return PubSubPublisher(settings.project)


def artifact_store(settings: Settings):
    from shared.adapters.artifact_store import ArtifactStore

    return ArtifactStore()


def pipelines(settings: Settings):
    """Vertex AI Pipelines (GAPIC), or the local pipeline service with the same contract."""
    if settings.pipeline_backend == "vertex":
        from shared.adapters.pipelines import VertexPipelineBackend

        return VertexPipelineBackend(settings.project, settings.region, emulator_host=settings.vertex_emulator_host)
    from shared.adapters.pipelines import LocalPipelineServiceBackend

    return LocalPipelineServiceBackend(settings.local_pipeline_url)


def serving(settings: Settings, registrar):
    """Endpoints and the Trainer's own jobs: Vertex AI, or the local prediction server; with the
    registrar the entry point handed in (registering is the Pusher's code, pipeline_compiler/registry.py,
    which shared/ never imports)."""
    from shared.adapters.serving import Serving

    if settings.pipeline_backend == "vertex":
        from shared.adapters.serving.monitoring import CloudMonitoringMetrics
        from shared.adapters.batch_prediction import VertexBatchPredictions
        from shared.adapters.serving.vertex import VertexEndpoints, VertexTrainerJobs

        host = settings.vertex_emulator_host
        return Serving(registrar, VertexEndpoints(settings.project, settings.region, settings.deploy_wait_s, emulator_host=host),
                       VertexTrainerJobs(settings.project, settings.region, emulator_host=host),
                       machine_type=settings.deploy_machine_type,
                       metrics=CloudMonitoringMetrics(settings.project, emulator_host=host),
                       batch_predictions=VertexBatchPredictions(settings.project, settings.region, settings.deploy_machine_type,
                                                                settings.deploy_wait_s, emulator_host=host,
                                                                service_account=settings.pipeline_service_account))
    from shared.adapters.batch_prediction import LocalBatchPredictions
    from shared.adapters.serving.local import LocalEndpoints, LocalServingMetrics, NoTrainerJobs

    return Serving(registrar, LocalEndpoints(settings.local_endpoints_dir, settings.prediction_url),
                   NoTrainerJobs(), machine_type=settings.deploy_machine_type,
                   metrics=LocalServingMetrics(settings.prediction_url), batch_predictions=LocalBatchPredictions())


def endpoint_reader(settings: Settings):
    """The endpoints the API reads and checks a change against (list, get, traffic): Vertex AI's EndpointService
    (its GAPIC client is imported on the first endpoint request, not at the API's cold start) or the local files."""
    if settings.pipeline_backend == "vertex":
        from shared.adapters.serving.vertex import VertexEndpoints

        return VertexEndpoints(settings.project, settings.region, emulator_host=settings.vertex_emulator_host)
    from shared.adapters.serving.local import LocalEndpoints

    return LocalEndpoints(settings.local_endpoints_dir, settings.prediction_url)


def experiment_runs(source: str, *, tracking_uri: Optional[str] = None, token: Optional[str] = None,
                    project: Optional[str] = None, location: Optional[str] = None, api_endpoint: Optional[str] = None,
                    allowed: Optional[Callable[[str], bool]] = None):
    """A tracked experiment's runs, read where they live (shared/domain/import_mapping.RunSource): an MLflow
    tracking server's REST API (`allowed` asked of every URL it is sent to) or Vertex AI Experiments (the SDK,
    imported when the runs are read). The CLI opens one on the user's machine, the API on the caller's behalf."""
    if source == "mlflow":
        from shared.adapters.mlflow_runs import MlflowRuns

        return MlflowRuns(tracking_uri, token, allowed=allowed)
    from shared.adapters.vertex_experiment_runs import VertexExperimentRuns

    return VertexExperimentRuns(project, location, api_endpoint)


def scheduler_jobs(settings: Settings):
    """One Cloud Scheduler job per schedule, or nothing (the local ticker reads Firestore)."""
    from shared.adapters.scheduler_jobs import CloudSchedulerJobs, LocalTickerJobs

    if settings.scheduler_backend == "cloud-scheduler":
        return CloudSchedulerJobs(settings.project, settings.scheduler_location or settings.region,
                                  emulator_host=settings.scheduler_emulator_host)
    if settings.scheduler_backend == "local":
        return LocalTickerJobs()
    raise ValueError(f"TRAINYARD_SCHEDULER_BACKEND must be cloud-scheduler or local, not {settings.scheduler_backend!r}")


def effects(publisher, scheduler_jobs):
    """What follows a run change reaches (shared/services/lifecycle.Effects)."""
    from shared.services.lifecycle import Effects

    return Effects(publisher=publisher, scheduler_jobs=scheduler_jobs)


def scheduler_jobs_not_granted(settings: Settings):
    """The scheduler jobs of a deployable that Terraform grants no Cloud Scheduler role (submitter, run-commands):
    what follows a run change there leaves the job to the schedule's next trigger, as it always has."""
    from shared.adapters.scheduler_jobs import JobsMirroredOnTrigger

    return JobsMirroredOnTrigger()


def run_data(settings: Settings):
    """Where a run's logs and the GPU quota are read: Cloud Logging + Cloud Quotas, or the local service."""
    from shared.adapters.rest_client import RestClient
    from shared.adapters.run_data_sources import CloudGpuQuota, LocalGpuQuota, RunDataSources
    from shared.adapters.run_logs import CloudLoggingLogs, LocalPipelineLogs

    if settings.pipeline_backend == "vertex":
        rest = RestClient()
        return RunDataSources(CloudLoggingLogs(settings.project, settings.region, rest,
                                               emulator_host=settings.vertex_emulator_host),
                              CloudGpuQuota(settings.project, rest, usage_cache_s=settings.gpu_usage_cache_s))
    return RunDataSources(LocalPipelineLogs(settings.local_pipeline_url), LocalGpuQuota())


def secret_store(settings: Settings):
    """Webhook URLs (and, in the cloud, signing secrets): Secret Manager, or a 0600 file under the local dir."""
    from shared.adapters.secret_store import LocalSecretFile, SecretManagerStore

    if settings.pipeline_backend == "vertex":
        return SecretManagerStore(settings.project)
    return LocalSecretFile(os.path.join(settings.local_dir, "secrets", "webhook-urls.json"))


def notification_targets(settings: Settings):
    """Checks a run's or schedule's targets against the deployment's policy and seals webhook URLs away."""
    from shared.services.notification_targets import NotificationTargets, TargetPolicy

    return NotificationTargets(TargetPolicy.of(settings), secret_store(settings))


def notifier(settings: Settings):
    """Webhooks over HTTPS to public addresses, the run's Pub/Sub topic; webhook URLs and signing secrets
    from Secret Manager (cloud), or a file and a setting (local)."""
    from shared.adapters.notify_targets import LocalSecrets, TopicSender, WebhookSender
    from shared.services.actions.notify import Notifier

    urls = secret_store(settings)
    signing = urls if settings.pipeline_backend == "vertex" else LocalSecrets(settings.notify_secrets)
    return Notifier(webhooks=WebhookSender(allow_loopback=settings.notify_local_receivers),
                    topics=TopicSender(publisher(settings)), secrets=signing, urls=urls,
                    signing_bindings=dict(settings.notify_signing_secrets), project=settings.project,
                    link_base=settings.dashboard_url)


def groups_of(settings: Settings):
    """Who is in which group, for the teams' `group:` members: TRAINYARD_GROUPS when set (the local
    stack, tests); in the cloud the Cloud Identity Groups API, asked only if a team names a group."""
    from shared.adapters.group_directory import CloudIdentityGroups, StaticGroups, names_groups

    if settings.groups is not None:
        return StaticGroups(settings.groups)
    if settings.pipeline_backend == "vertex" and names_groups(settings.teams):
        from shared.adapters.rest_client import RestClient

        return CloudIdentityGroups(RestClient())
    return StaticGroups({})


def dead_letters(settings: Settings):
    """What each topic dead-lettered, read and replayed through Pub/Sub (the admin routes)."""
    from shared.adapters.dead_letters import DeadLetters

    return DeadLetters(settings.project)


def compiler(settings: Settings):
    from shared.services.submission import Compiler

    return Compiler.load(settings.compiler)  # pipeline_compiler (TFX) loads here, in the submitter only


BUILDERS: dict[str, Callable[[Settings], Any]] = {
    "repo": repository, "publisher": publisher, "store": artifact_store, "pipelines": pipelines,
    "scheduler_jobs": scheduler_jobs, "run_data": run_data, "compiler": compiler, "notifier": notifier,
    "dead_letters": dead_letters, "notification_targets": notification_targets, "groups_of": groups_of,
    "endpoints": endpoint_reader,
}


@dataclass
class Dependencies:
    """What the API's routes (shared/http/app.py) use. The root fills every adapter; a test gives the
    ones it fakes, and the rest are built from its settings by the same builders."""

    repo: object
    publisher: object
    store: object
    settings: object
    scheduler_jobs: object = None
    run_data: object = None
    dead_letters: object = None
    # The caller's groups (e-mail -> group addresses), matched against a team's `group:` members.
    notification_targets: object = None
    groups_of: Optional[Callable[[str], Any]] = None
    endpoints: object = None  # the serving port's endpoints (shared/services/endpoint_views.py reads them)
    # Opens a tracked experiment's runs for POST /api/experiments:import-from (tests hand in a fake source).
    experiment_runs: Optional[Callable[..., Any]] = None

    def __post_init__(self):
        if self.endpoints is None:
            self.endpoints = endpoint_reader(self.settings)
        if self.groups_of is None:
            self.groups_of = groups_of(self.settings)
        if self.experiment_runs is None:
            self.experiment_runs = experiment_runs
        if self.scheduler_jobs is None:
            self.scheduler_jobs = scheduler_jobs(self.settings)
        if self.run_data is None:
            self.run_data = run_data(self.settings)
        if self.dead_letters is None:
            self.dead_letters = dead_letters(self.settings)
        if self.notification_targets is None:
            self.notification_targets = notification_targets(self.settings)

    @property
    def effects(self):
        """What follows a run change reaches: these routes' publisher and scheduler jobs."""
        return effects(self.publisher, self.scheduler_jobs)


# --------------------------------------------------------------------------- the process's root


class Root:
    def __init__(self, settings: Optional[Settings] = None):
        self._settings = settings
        self._built: dict[str, Any] = {}
        self._builders: dict[str, Callable[[Settings], Any]] = dict(BUILDERS)
        self._lock = threading.RLock()

    @property
    def settings(self) -> Settings:
        with self._lock:
            if self._settings is None:
                self._settings = get_settings()
            return self._settings

    def get(self, name: str) -> Any:
        with self._lock:
            if name not in self._built:
                builder = self._builders.get(name)
                self._built[name] = builder(self.settings) if builder else getattr(self, f"_build_{name}")()
            return self._built[name]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or (name not in self._builders and not hasattr(type(self), f"_build_{name}")):
            raise AttributeError(name)
        return self.get(name)

    def provide(self, settings: Optional[Settings] = None, **adapters: Any) -> "Root":
        """Use these instead of building them (tests); returns self."""
        with self._lock:
            if settings is not None:
                self._settings = settings
            self._built.update(adapters)
        return self

    def build_with(self, name: str, builder: Callable[[Settings], Any]) -> "Root":
        """Build `name` with this (an entry point handing in what shared/ must not import); returns self."""
        with self._lock:
            self._builders[name] = builder
        return self

    def reset(self) -> None:
        with self._lock:
            self._settings = None
            self._built.clear()

    # ------------------------------------------------------------------ what entry points need

    def _build_serving(self):
        if "registrar" not in self._built and "registrar" not in self._builders:
            raise RuntimeError("serving needs a registrar: the entry point hands in "
                               "pipeline_compiler.registry.build_registrar with root.build_with('registrar', ...)")
        return serving(self.settings, self.get("registrar"))

    def _build_effects(self):
        return effects(self.get("publisher"), self.get("scheduler_jobs"))

    def api_dependencies(self) -> Dependencies:
        return Dependencies(repo=self.get("repo"), publisher=self.get("publisher"), store=self.get("store"),
                            settings=self.settings, scheduler_jobs=self.get("scheduler_jobs"),
                            run_data=self.get("run_data"), dead_letters=self.get("dead_letters"),
                            notification_targets=self.get("notification_targets"), groups_of=self.get("groups_of"),
                            endpoints=self.get("endpoints"))

    def warm_after_fork(self, *names: str) -> None:
        """Build these in the background in each forked worker, before the first message rather than during
        it. functions-framework loads the source in gunicorn's master and then forks: a thread started at
        import would run in the master and leave its locks held, forever, in the worker."""
        def warm():
            threading.Thread(target=lambda: [self.get(n) for n in names], daemon=True).start()

        os.register_at_fork(after_in_child=warm)


root = Root()
