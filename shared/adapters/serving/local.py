"""The local side of model serving: endpoints served by the local prediction server
(scripts/prediction_server.py). The local registry (the Pusher's layout) is pipeline_compiler/registry.py.

A local endpoint is a JSON file `{endpoints_dir}/{endpoint_id}.json` listing its deployed models and
traffic split; the prediction server loads the SavedModels it lists. Deploying writes the file and
asks the server to load it, so a run is `deployed` only once the model really answers. A traffic change
rewrites the file's split (the server reads it on every request); what each deployed model served is
counted by the server itself (`GET /v1/endpoints/{id}/metrics`), the local side of Cloud Monitoring.
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from typing import Optional

from shared.domain.canary import Observation
from shared.errors import PermanentError, TransientError
from shared.adapters.serving import (DeployedModelView, DeployRequest, DeployResult, EndpointView, endpoint_id_for,
                                     short_id, split_traffic)


class NoTrainerJobs:
    """Locally the pipeline service runs every task in its own process; cancelling the job stops them."""

    def cancel_for_run(self, run_id: str) -> list[str]:
        return []


def read_endpoint(endpoints_dir: str, endpoint_id: str) -> Optional[dict]:
    path = os.path.join(endpoints_dir, f"{endpoint_id}.json")
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def write_endpoint(endpoints_dir: str, endpoint: dict) -> None:
    os.makedirs(endpoints_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=endpoints_dir, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(endpoint, handle, indent=2)
    os.replace(tmp, os.path.join(endpoints_dir, f"{endpoint['endpoint_id']}.json"))  # never half a file


def local_endpoint_id(endpoint_resource_name: str) -> str:
    return short_id(endpoint_resource_name)  # local/endpoints/{id}


def endpoint_view(endpoint: dict) -> EndpointView:
    models = endpoint.get("deployed_models") or []
    split = {**{m["id"]: 0 for m in models}, **{k: int(v) for k, v in (endpoint.get("traffic_split") or {}).items()}}
    return EndpointView(
        id=endpoint["endpoint_id"], resource_name=f"local/endpoints/{endpoint['endpoint_id']}",
        display_name=endpoint.get("display_name") or endpoint["endpoint_id"], created_at=endpoint.get("created_at"),
        labels=dict(endpoint.get("labels") or {}), traffic_split=split,
        deployed_models=tuple(DeployedModelView(id=m["id"], model=m.get("model", ""),
                                                model_version_id=str(m.get("model_version_id") or ""),
                                                display_name=m.get("display_name") or m["id"],
                                                deployed_at=m.get("deployed_at")) for m in models))


class LocalEndpoints:
    def __init__(self, endpoints_dir: str, prediction_url: str, timeout_s: float = 120.0):
        self.endpoints_dir = endpoints_dir
        self.prediction_url = prediction_url.rstrip("/")
        self.timeout_s = timeout_s

    def deploy(self, request: DeployRequest, started: Optional[str] = None, on_started=None) -> DeployResult:
        endpoint_id = request.endpoint_id or endpoint_id_for(request.run_id)
        endpoint = read_endpoint(self.endpoints_dir, endpoint_id)
        if endpoint is None:
            if request.endpoint_id:
                raise PermanentError(f"there is no local endpoint {request.endpoint_id!r}", stage="Deploy")
            endpoint = {"endpoint_id": endpoint_id, "display_name": request.endpoint_display_name,
                        "created_at": datetime.now(timezone.utc).isoformat(),
                        "labels": {"trainyard-run-id": request.run_id}, "deployed_models": [], "traffic_split": {}}
        deployed_id = f"{endpoint_id_for(request.run_id)}-v{request.model_version_id}"
        before = dict(endpoint.get("traffic_split", {}))
        if not any(m["id"] == deployed_id for m in endpoint["deployed_models"]):
            endpoint["deployed_models"].append({
                "id": deployed_id, "model": request.model_resource_name, "model_version_id": request.model_version_id,
                "saved_model_uri": request.serving_model_uri, "display_name": request.run_name,
                "deployed_at": datetime.now(timezone.utc).isoformat()})
        endpoint["traffic_split"] = split_traffic(endpoint.get("traffic_split", {}), deployed_id,
                                                  request.traffic_percent)
        write_endpoint(self.endpoints_dir, endpoint)
        self._load(endpoint_id)
        return DeployResult(endpoint_resource_name=f"local/endpoints/{endpoint_id}", deployed_model_id=deployed_id,
                            traffic_split=endpoint["traffic_split"], previous_traffic_split=before,
                            predict_url=f"{self.prediction_url}/v1/endpoints/{endpoint_id}:predict")

    def _existing(self, endpoint_resource_name: str) -> dict:
        endpoint = read_endpoint(self.endpoints_dir, local_endpoint_id(endpoint_resource_name))
        if endpoint is None:
            raise PermanentError(f"there is no local endpoint {endpoint_resource_name!r}", stage="Deploy")
        return endpoint

    def traffic(self, endpoint_resource_name: str) -> dict:
        return endpoint_view(self._existing(endpoint_resource_name)).traffic_split  # models at 0 included, as Vertex's

    def set_traffic(self, endpoint_resource_name: str, split: dict) -> dict:
        endpoint = self._existing(endpoint_resource_name)
        deployed = {m["id"] for m in endpoint["deployed_models"]}
        unknown = sorted(set(split) - deployed)
        if unknown or sum(split.values()) != 100:
            raise PermanentError(f"traffic split {split} is not one of endpoint {endpoint['endpoint_id']}: "
                                 f"{'unknown models ' + str(unknown) if unknown else 'it must sum to 100'}",
                                 stage="Deploy")
        endpoint["traffic_split"] = {k: int(v) for k, v in split.items()}
        write_endpoint(self.endpoints_dir, endpoint)  # the server reads the file on every request
        return dict(endpoint["traffic_split"])

    def list_endpoints(self) -> list[EndpointView]:
        if not os.path.isdir(self.endpoints_dir):
            return []
        found = (read_endpoint(self.endpoints_dir, name[:-len(".json")])
                 for name in sorted(os.listdir(self.endpoints_dir)) if name.endswith(".json"))
        return [endpoint_view(e) for e in found if e is not None]

    def get_endpoint(self, endpoint_id: str) -> Optional[EndpointView]:
        endpoint = read_endpoint(self.endpoints_dir, local_endpoint_id(endpoint_id))
        return endpoint_view(endpoint) if endpoint is not None else None

    def undeploy(self, endpoint_resource_name: str, deployed_model_id: str, split_after: dict) -> dict:
        """As Vertex's UndeployModel: the model leaves the file (the server stops routing to it on the next
        request) and the split becomes `split_after` over the models left, or empty when none is left."""
        endpoint = self._existing(endpoint_resource_name)
        remaining = [m for m in endpoint["deployed_models"] if m["id"] != deployed_model_id]
        if len(remaining) == len(endpoint["deployed_models"]):
            return endpoint_view(endpoint).traffic_split
        split = {k: int(v) for k, v in split_after.items() if v}
        if remaining and (set(split) - {m["id"] for m in remaining} or sum(split.values()) not in (0, 100)):
            raise PermanentError(f"traffic split {split} is not one of the models left on endpoint "
                                 f"{endpoint['endpoint_id']}", stage="Deploy")
        endpoint.update(deployed_models=remaining, traffic_split=split if remaining else {})
        write_endpoint(self.endpoints_dir, endpoint)
        return endpoint_view(endpoint).traffic_split

    def _load(self, endpoint_id: str) -> dict:
        """The server loads every model of the endpoint before answering: deployed means it serves."""
        import requests

        try:
            response = requests.post(f"{self.prediction_url}/v1/endpoints/{endpoint_id}:load", timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise TransientError(f"local prediction server unreachable at {self.prediction_url}: {exc}") from exc
        if response.status_code >= 500:
            raise TransientError(f"local prediction server: HTTP {response.status_code} {response.text[:300]}")
        if response.status_code >= 400:
            raise PermanentError(f"the local prediction server could not load the model: {response.text[:500]}",
                                 stage="Deploy")
        return response.json()


class LocalServingMetrics:
    """The prediction server's own counters of what each deployed model served."""

    def __init__(self, prediction_url: str, timeout_s: float = 30.0):
        self.prediction_url = prediction_url.rstrip("/")
        self.timeout_s = timeout_s

    def read(self, endpoint_resource_name: str, deployed_model_id: str, since: datetime,
             until: datetime) -> Observation:
        import requests

        url = f"{self.prediction_url}/v1/endpoints/{local_endpoint_id(endpoint_resource_name)}/metrics"
        try:
            response = requests.get(url, timeout=self.timeout_s, params={
                "deployed_model_id": deployed_model_id, "since": since.isoformat(), "until": until.isoformat()})
        except requests.RequestException as exc:
            raise TransientError(f"local prediction server unreachable at {self.prediction_url}: {exc}") from exc
        if response.status_code != 200:
            raise TransientError(f"local prediction server metrics: HTTP {response.status_code} {response.text[:300]}")
        body = response.json()
        return Observation(requests=int(body["requests"]), errors=int(body["errors"]),
                           p95_latency_ms=body.get("p95_latency_ms"))
