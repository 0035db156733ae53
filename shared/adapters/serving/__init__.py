"""Model serving for run actions: register a saved model, deploy it to an endpoint, change an endpoint's
traffic split, read what a deployed model served (a canary's watch), stop what a cancelled run started.
One interface, two sides, chosen once from settings (shared/composition.py):

- Vertex (shared/adapters/serving/vertex.py): Vertex AI Endpoints and the Trainer's CustomJobs (GAPIC, lazy
  imports); serving metrics from Cloud Monitoring (shared/adapters/serving/monitoring.py).
- local (shared/adapters/serving/local.py): the local prediction server (scripts/prediction_server.py), which
  loads the pushed SavedModel with TensorFlow and counts what each deployed model served.

Registering a model is the Pusher's own code (pipeline_compiler/registry.py); the run-commands entry
point hands it in, since shared/ never imports pipeline_compiler.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional, Protocol

from shared.contract import results
from shared.domain.canary import Observation, whole_percents


# The serving contract of Trainyard's prediction container (serving_image/, scripts/prediction_server.py):
# Vertex starts it with AIP_HTTP_PORT / AIP_PREDICT_ROUTE / AIP_HEALTH_ROUTE from the routes and port
# the model is registered with (https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements).
SERVING_PORT = 8080
PREDICT_ROUTE = "/predict"
HEALTH_ROUTE = "/health"


@dataclass(frozen=True)
class DeployRequest:
    run_id: str
    run_name: str
    model_resource_name: str  # projects/P/locations/L/models/M (local: the registry directory of the model)
    model_version_id: str
    serving_model_uri: str
    endpoint_id: Optional[str]  # an existing endpoint; None: the run's own endpoint (created if missing)
    endpoint_display_name: str
    traffic_percent: int  # 1–100: the new model's share; the models already there keep the rest
    machine_type: str


@dataclass(frozen=True)
class DeployResult:
    endpoint_resource_name: str
    deployed_model_id: str
    traffic_split: dict
    predict_url: str
    console_url: Optional[str] = None
    previous_traffic_split: dict = field(default_factory=dict)  # the endpoint's split before (empty: unknown or new)


class Registrar(Protocol):
    serving_image: Optional[str]  # the prediction container versions are registered with (None: local server)

    def register(self, spec, serving_model_uri: str) -> results.RegistryEntry:
        """A new version of the model named after the run, labelled with the run (idempotent per attempt)."""


class Endpoints(Protocol):
    def deploy(self, request: DeployRequest, started: Optional[str] = None, on_started=None) -> DeployResult:
        """Deploy (idempotent: a model version already on the endpoint is not deployed twice).
        `on_started(operation)` records a long operation; `started` is what an earlier delivery
        recorded, to follow instead of starting again."""

    def traffic(self, endpoint_resource_name: str) -> dict:
        """The endpoint's traffic split now: deployed model id → percent."""

    def set_traffic(self, endpoint_resource_name: str, split: dict) -> dict:
        """Route the endpoint's traffic as `split` (ids of models deployed there, summing to 100);
        returns the split now in force. Idempotent: the same split twice changes nothing."""

    def list_endpoints(self) -> list["EndpointView"]:
        """Every endpoint of the project and region (the local server's), by id."""

    def get_endpoint(self, endpoint_id: str) -> Optional["EndpointView"]:
        """One endpoint (an id or a full resource name); None when there is none."""

    def undeploy(self, endpoint_resource_name: str, deployed_model_id: str, split_after: dict) -> dict:
        """Take one deployed model off the endpoint, the others' traffic set to `split_after` (empty: the
        endpoint serves nothing); returns the split now in force. Idempotent: a model already gone is done."""


@dataclass(frozen=True)
class DeployedModelView:
    id: str
    model: str  # the registry model's resource name (local: its registry directory)
    model_version_id: str
    display_name: str
    deployed_at: Optional[str] = None  # RFC 3339


@dataclass(frozen=True)
class EndpointView:
    """An endpoint as either side reports it: what GET /api/endpoints shows beside the runs it came from."""
    id: str  # the last segment of the resource name: unique in the project and region
    resource_name: str
    display_name: str
    deployed_models: tuple[DeployedModelView, ...] = ()
    traffic_split: dict = field(default_factory=dict)  # every deployed model's share, those at 0 included
    created_at: Optional[str] = None
    labels: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"id": self.id, "resource_name": self.resource_name, "display_name": self.display_name,
                "created_at": self.created_at, "labels": dict(self.labels), "traffic_split": dict(self.traffic_split),
                "deployed_models": [vars(m).copy() for m in self.deployed_models]}


def short_id(endpoint: str) -> str:
    """An endpoint's id from its id or its resource name (projects/…/endpoints/{id}, local/endpoints/{id})."""
    return endpoint.rsplit("/", 1)[-1]


class ServingMetrics(Protocol):
    def read(self, endpoint_resource_name: str, deployed_model_id: str, since: datetime,
             until: datetime) -> Observation:
        """What one deployed model of the endpoint served in [since, until): requests, errors, p95 latency."""


class TrainerJobs(Protocol):
    def cancel_for_run(self, run_id: str) -> list[str]:
        """Cancel jobs a run's pipeline started outside the pipeline itself; returns their names."""


def endpoint_id_for(run_id: str) -> str:
    """The run's own endpoint id: deterministic, so a redelivered deploy finds the endpoint it made.
    Vertex accepts [a-z0-9-], up to 63 characters, starting with a letter."""
    value = re.sub(r"[^a-z0-9-]", "-", run_id.lower()).strip("-")[:63].rstrip("-")
    return value if value[:1].isalpha() else f"r{value}"[:63]


def split_traffic(existing: dict, new_id: str, percent: int) -> dict:
    """The new model takes `percent`; the models already there share the rest in their old proportions
    (largest remainder, so the split sums to exactly 100)."""
    others = {k: v for k, v in existing.items() if k != new_id and v > 0}
    rest = 100 - percent
    if not others or rest == 0:
        return {new_id: 100} if not others else {new_id: 100, **{k: 0 for k in others}}
    return {new_id: percent, **whole_percents(others, rest)}


class Serving:
    """The adapters run commands need, built by the composition root (shared/composition.py)."""

    def __init__(self, registrar: Registrar, endpoints: Endpoints, trainer_jobs: TrainerJobs,
                 machine_type: str = "n1-standard-4", metrics: Optional[ServingMetrics] = None,
                 batch_predictions=None):
        self.registrar = registrar
        self.endpoints = endpoints
        self.trainer_jobs = trainer_jobs
        self.metrics = metrics  # a canary's watch reads it
        self.machine_type = machine_type  # of a deployed model's replicas
        self.batch_predictions = batch_predictions  # shared/adapters/batch_prediction.py
