"""Finding the champion a run's model (the challenger) must match: the version serving on the run's
target endpoint (deployment_config's existing endpoint), else the registry's default version of the
model named after the run. The Evaluator scores it on the same test split (evaluation.py).

- Vertex: EndpointService.GetEndpoint's `deployed_models` and `traffic_split` (a map from a
  DeployedModel's id to its percent of the endpoint's traffic); the one with the most traffic serves.
  Its model version, or the model's default version, comes from ModelService.GetModel with `@version`
  or `@default`: "the default alias references the model version that is used if a user runs a command on
  a model without specifying a particular version" (cloud.google.com/vertex-ai/docs/model-registry/model-alias);
  the Pusher uploads each blessed version with the `default` alias, so it moves to the newest.
- local: the endpoint file the local prediction server serves ({endpoints_dir}/{id}.json) and the local
  registry ({registry_dir}/{run_name}/versions/{n}/, the highest n is the default: the Pusher's layout).
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Callable, Optional

from shared.adapters.serving.local import read_endpoint
from shared.adapters.vertex_gapic import RegionalService, gapic
from shared.contract.labels import label_value


@dataclass(frozen=True)
class Champion:
    model: str  # Vertex: projects/P/locations/L/models/M; local: the registry's model directory
    version: str
    artifact_uri: str  # the SavedModel with its serving signatures
    source: str  # where it was found: "endpoint E" or "registry default"


def _serving_most(deployed: list[tuple[str, object]], traffic: dict[str, int]):
    """The deployed model taking the most traffic (none when nothing takes any)."""
    ranked = sorted(((traffic.get(model_id, 0), i, model) for i, (model_id, model) in enumerate(deployed)),
                    key=lambda t: (t[0], t[1]))
    return ranked[-1][2] if ranked and ranked[-1][0] > 0 else None


def find_local(spec, registry_dir: str, endpoints_dir: str) -> Optional[Champion]:
    """The local champion: on the existing endpoint the run deploys to, else the registry's newest version."""
    endpoint_id = _existing_endpoint(spec)
    if endpoint_id:
        endpoint = read_endpoint(endpoints_dir, endpoint_id) or {}
        serving = _serving_most([(m["id"], m) for m in endpoint.get("deployed_models", [])],
                                endpoint.get("traffic_split") or {})
        if serving is not None:
            return Champion(model=serving.get("model") or "", version=str(serving.get("model_version_id") or ""),
                            artifact_uri=serving["saved_model_uri"], source=f"endpoint {endpoint_id}")
    model_dir = os.path.join(registry_dir, label_value(spec.run_name))
    versions_dir = os.path.join(model_dir, "versions")
    if not os.path.isdir(versions_dir):
        return None
    versions = sorted(int(v) for v in os.listdir(versions_dir) if v.isdigit())
    for version in reversed(versions):  # a version whose copy did not finish has no metadata.json yet
        metadata_path = os.path.join(versions_dir, str(version), "metadata.json")
        if os.path.isfile(metadata_path):
            with open(metadata_path) as handle:
                entry = json.load(handle)["entry"]
            return Champion(model=model_dir, version=str(version), artifact_uri=entry["serving_model_uri"],
                            source="registry default")
    return None


def _existing_endpoint(spec) -> Optional[str]:
    config = spec.deployment_config
    return config.existing_endpoint_id if config.action == "deploy_existing" else None


class _Endpoints(RegionalService):
    CLIENT = "EndpointServiceClient"


class VertexChampions(RegionalService):
    """The Vertex champion, through the official GAPIC clients (ModelService, EndpointService)."""

    CLIENT = "ModelServiceClient"

    def __init__(self, project: str, region: str, client=None, endpoint_client=None, emulator_host: str = ""):
        super().__init__(project, region, client, emulator_host)
        self.endpoints = _Endpoints(project, region, endpoint_client, emulator_host)

    def find(self, spec) -> Optional[Champion]:
        from google.api_core import exceptions

        endpoint_id = _existing_endpoint(spec)
        if endpoint_id:
            name = endpoint_id if endpoint_id.startswith("projects/") else f"{self.parent}/endpoints/{endpoint_id}"
            try:
                endpoint = self.endpoints.client.get_endpoint(request={"name": name})
            except exceptions.NotFound:  # nothing serves there (as a local endpoint file that is gone)
                endpoint = gapic().Endpoint()
            serving = _serving_most([(m.id, m) for m in endpoint.deployed_models], dict(endpoint.traffic_split))
            if serving is not None:
                version = serving.model_version_id
                model = self.client.get_model(request={"name": f"{serving.model.split('@')[0]}@{version}"
                                                       if version else serving.model})
                return Champion(model=model.name, version=model.version_id, artifact_uri=model.artifact_uri,
                                source=f"endpoint {endpoint_id}")
        for model in self.client.list_models(request={"parent": self.parent,
                                                      "filter": f'display_name="{spec.run_name}"'}):
            default = self.client.get_model(request={"name": f"{model.name}@default"})
            return Champion(model=default.name, version=default.version_id, artifact_uri=default.artifact_uri,
                            source="registry default")
        return None


def find(spec, target: str, project: str, region: str, registry_dir: str, endpoints_dir: str,
         emulator_host: str = "") -> Optional[Champion]:
    """The run's champion where its Pusher registers (the Pusher's own parameters), or None."""
    if target == "vertex":
        return VertexChampions(project, region, emulator_host=emulator_host).find(spec)
    return find_local(spec, registry_dir, endpoints_dir)


def finder(spec, target: str, project: str, region: str, registry_dir: str, endpoints_dir: str,
           emulator_host: str = "") -> Callable[[], Optional[Champion]]:
    """`find` with these arguments, asked once however often it is called (the Evaluator asks whether to use
    the Beam job, then scores the champion: one answer for both)."""
    return functools.cache(lambda: find(spec, target, project, region, registry_dir, endpoints_dir, emulator_host))
