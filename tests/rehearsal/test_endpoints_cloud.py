"""Endpoints as deployed: two runs of team recs deployed to one Vertex endpoint through the API (run-commands
deploys them with the official aiplatform client over Vertex's gRPC protocol); the API function lists the
endpoint and reads it with its own EndpointServiceClient (ListEndpoints, GetEndpoint on the fake) — models, split,
the run each came from, history; its deployer changes the split and undeploys a model through the API, and
run-commands carries both out (UpdateEndpoint, UndeployModel with the split that takes the model's traffic
away) and records them on the runs. The IAM table names every RPC each workload called."""
from __future__ import annotations

import pytest

from tests.rehearsal.test_batch_predictions_cloud import _registered_run
from tests.rehearsal.test_cloud_runs import _assert_iam_table_names_every_rpc_served
from tests.rehearsal.test_cloud_runs import api  # noqa: F401 - the fixture: ana, deployer on team recs

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]


def _deployed(cloud, api, run_id: str, body: dict) -> dict:  # noqa: F811 - api is the fixture's value
    api.post(f"/api/training-runs/{run_id}/deploy", body)
    return cloud.wait(lambda: (d := cloud.repo.get_run(run_id))["deployment_status"] == "deployed" and d, 180,
                      f"{run_id} to be deployed")


def test_a_deployer_reads_changes_and_undeploys_an_endpoint_through_the_api(cloud, api):  # noqa: F811
    old = _deployed(cloud, api, _registered_run(cloud, "endpoints-rehearsal-old")["id"], {})
    endpoint = old["deployment"]["endpoint_resource_name"].rsplit("/", 1)[-1]
    new = _deployed(cloud, api, _registered_run(cloud, "endpoints-rehearsal-new")["id"],
                    {"endpoint_id": endpoint, "traffic_split": 25})
    a, b = old["deployment"]["deployed_model_id"], new["deployment"]["deployed_model_id"]

    listed = {e["id"]: e for e in api.get("/api/endpoints")["endpoints"]}
    assert listed[endpoint]["traffic_split"] == {a: 75, b: 25} and listed[endpoint]["teams"] == ["recs"]
    one = api.get(f"/api/endpoints/{endpoint}")["endpoint"]
    assert {m["id"]: m["run"]["id"] for m in one["deployed_models"]} == {a: old["id"], b: new["id"]}
    assert [h["action"] for h in one["history"]] == ["deployed", "deployed"]
    assert any(r.parent.endswith(f"/locations/{cloud.region}") for r in cloud.vertex.server.requests("list_endpoints"))

    api.post(f"/api/endpoints/{endpoint}/traffic", {"traffic_split": {a: 50, b: 50}, "reason": "rehearsal A/B"})
    cloud.wait(lambda: dict(cloud.endpoints.endpoint(endpoint).traffic_split) == {a: 50, b: 50}, 120, "the new split")
    api.post(f"/api/endpoints/{endpoint}/undeploy", {"deployed_model_id": b})
    gone = cloud.wait(lambda: (d := cloud.repo.get_run(new["id"]))["deployment_status"] == "undeployed" and d, 180,
                      "the new model to be undeployed")
    assert [m.id for m in cloud.endpoints.endpoint(endpoint).deployed_models] == [a]
    assert dict(cloud.endpoints.endpoint(endpoint).traffic_split) == {a: 100}
    (undeploy,) = [r for r in cloud.vertex.server.requests("undeploy_model") if r.endpoint.endswith("/" + endpoint)]
    assert dict(undeploy.traffic_split) == {a: 100}  # Vertex undeploys only a model whose traffic the call takes away
    assert [e["action"] for e in gone["endpoint_history"]][-2:] == ["traffic_changed", "undeployed"]
    history = api.get(f"/api/endpoints/{endpoint}")["endpoint"]["history"]
    assert [h["action"] for h in history] == ["deployed", "deployed", "traffic_changed", "undeployed"]
    assert history[2]["by"] == api.email and history[2]["reason"] == "rehearsal A/B"
    _assert_iam_table_names_every_rpc_served(cloud)
