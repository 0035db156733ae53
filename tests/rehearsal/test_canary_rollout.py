"""A canary's watch as deployed: run-commands, started as terraform/ describes it, takes a `canary_check`
from its topic, reads the new deployed model's serving metrics with the official monitoring client over
Cloud Monitoring's gRPC protocol (ListTimeSeries on the fake), finds the breach, and sends the endpoint's
traffic back with the official aiplatform client (EndpointService.UpdateEndpoint on the fake); the run
records the rollback and the traffic change."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from shared.adapters.serving import DeployRequest
from shared.adapters.serving.monitoring import ERRORS, LATENCIES, RESPONSES
from shared.contract import topics
from shared.domain import canary, runs
from tests.rehearsal.test_deployment_runs import catalog, member  # noqa: F401 - the fixture

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]


def deployed_pair(cloud):
    """An endpoint serving an old model, with a new one deployed beside it at 20 %, in the Vertex fake."""
    from pipeline_compiler.registry import VertexRegistrar
    from shared.adapters.serving.vertex import VertexEndpoints

    image = f"{cloud.region}-docker.pkg.dev/{cloud.project}/trainyard/trainyard-serving:v1"
    registrar = VertexRegistrar(cloud.project, cloud.region, image, emulator_host=cloud.vertex.server.address, wait_s=30)
    endpoints = VertexEndpoints(cloud.project, cloud.region, wait_s=30, emulator_host=cloud.vertex.server.address)

    def deploy(run_id, name, endpoint_id, percent):
        entry = registrar.register(SimpleNamespace(run_id=run_id, attempt=1, run_number=1, model_type="retrieval",
                                                   run_name=name, artifacts_uri=f"gs://{cloud.project}-artifacts/{name}"),
                                   f"gs://{cloud.project}-artifacts/{name}/model/saved_model")
        return endpoints.deploy(DeployRequest(
            run_id=run_id, run_name=name, model_resource_name=entry.model_resource_name,
            model_version_id=entry.model_version_id, serving_model_uri=entry.serving_model_uri, endpoint_id=endpoint_id,
            endpoint_display_name="recs-canary", traffic_percent=percent, machine_type="n1-standard-4")), entry

    (old, _) = deploy("tr-canary-old-000", "recs-canary-old", None, 100)
    (new, entry) = deploy("tr-canary-new-000", "recs-canary-new", old.endpoint_resource_name.rsplit("/", 1)[-1], 20)
    return old, new, entry


def test_run_commands_rolls_a_breaching_canary_back_over_grpc(cloud, catalog):  # noqa: F811
    from shared.adapters.scheduler_jobs import LocalTickerJobs
    from shared.services import intake
    from shared.services.ports import Effects

    old, new, entry = deployed_pair(cloud)
    name, endpoint_id = new.endpoint_resource_name, new.endpoint_resource_name.rsplit("/", 1)[-1]
    assert new.traffic_split == {old.deployed_model_id: 80, new.deployed_model_id: 20}
    run = intake.create_run(cloud.repo, Effects(cloud.publisher, LocalTickerJobs()),
                            {"name": "recs-canary-new", "base_experiment_id": catalog["small"]}, *member())
    started = runs.now() - timedelta(minutes=5)
    limits = {"percent": 20, "watch_minutes": 30, "max_error_rate": 0.05, "min_requests": 20}
    deployment = {"id": "canary-1", "status": "canary", "endpoint_id": endpoint_id, "traffic_split": 20,
                  "model_resource_name": entry.model_resource_name, "model_version_id": entry.model_version_id,
                  "requested_by": "rehearsal@example.com", "requested_at": started, "endpoint_resource_name": name,
                  "deployed_model_id": new.deployed_model_id, "traffic": new.traffic_split,
                  "previous_traffic": new.previous_traffic_split, "deployed_at": started,
                  "canary": canary.start(limits, started)}
    cloud.repo.mutate_run(run["id"], lambda d: {
        **d, "status": runs.COMPLETED, "vertex_model_resource_name": entry.model_resource_name,
        "vertex_model_version": entry.model_version_id, "deployment": deployment, "deployment_status": "canary",
        "is_deployed": True})
    at = runs.now() - timedelta(minutes=2)
    cloud.vertex.monitoring.add(RESPONSES, endpoint_id, new.deployed_model_id, at, 60)
    cloud.vertex.monitoring.add(ERRORS, endpoint_id, new.deployed_model_id, at, 15)
    cloud.vertex.monitoring.add(LATENCIES, endpoint_id, new.deployed_model_id, at, 80.0)
    cloud.vertex.monitoring.add(ERRORS, endpoint_id, old.deployed_model_id, at, 900)  # the old model's: not judged

    cloud.publish(topics.RUN_COMMANDS, {"command": "canary_check", "run_id": run["id"], "deployment_id": "canary-1"})
    doc = cloud.wait(lambda: (d := cloud.repo.get_run(run["id"]))["deployment_status"] == "rolled_back" and d, 180,
                     "the canary to be rolled back")
    assert doc["deployment"]["canary"]["status"] == "breached"
    assert "error rate 25.0% (15 of 60 requests)" in doc["deployment"]["canary"]["reason"]
    assert dict(cloud.endpoints.endpoint(name).traffic_split) == {old.deployed_model_id: 100}
    (update,) = [r for r in cloud.vertex.server.requests("update_endpoint") if r.endpoint.name == name]  # shared fake
    assert list(update.update_mask.paths) == ["traffic_split"]
    reads = cloud.vertex.server.requests("list_time_series")
    assert {r.name for r in reads} == {f"projects/{cloud.project}"}
    assert all(f'metric.labels.deployed_model_id = "{new.deployed_model_id}"' in r.filter for r in reads)
    last = doc["endpoint_history"][-1]
    assert last["action"] == "rolled_back" and last["by"] == "trainyard (canary watch)"
    assert last["to"] == {old.deployed_model_id: 100, new.deployed_model_id: 0}
