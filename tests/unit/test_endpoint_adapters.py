"""The local side of the endpoints port (shared/adapters/serving/local.py): an endpoint file listed and read as
Vertex's would be, and a model undeployed with its traffic handed to the others (the Vertex side:
tests/unit/test_vertex_serving.py)."""
from __future__ import annotations

import pytest

from shared.adapters.serving import DeployRequest
from shared.adapters.serving.local import LocalEndpoints
from shared.errors import PermanentError


def deploy(endpoints, run_id, version, endpoint_id=None, percent=100):
    return endpoints.deploy(DeployRequest(
        run_id=run_id, run_name=f"recs-{version}", model_resource_name=f"/registry/{run_id}", model_version_id=version,
        serving_model_uri=f"/models/{run_id}", endpoint_id=endpoint_id, endpoint_display_name="recs",
        traffic_percent=percent, machine_type="local"))


@pytest.fixture
def endpoints(tmp_path, monkeypatch):
    adapter = LocalEndpoints(str(tmp_path), "http://127.0.0.1:1")
    monkeypatch.setattr(adapter, "_load", lambda endpoint_id: {})  # no prediction server in a unit test
    return adapter


def test_local_endpoints_are_listed_and_read_with_every_model_and_its_share(endpoints):
    assert endpoints.list_endpoints() == []
    first = deploy(endpoints, "tr-a", "1")
    second = deploy(endpoints, "tr-b", "2", endpoint_id="tr-a", percent=30)
    deploy(endpoints, "tr-c", "1")
    assert [e.id for e in endpoints.list_endpoints()] == ["tr-a", "tr-c"]
    view = endpoints.get_endpoint("local/endpoints/tr-a")
    assert view.resource_name == first.endpoint_resource_name and view.created_at
    assert view.traffic_split == {first.deployed_model_id: 70, second.deployed_model_id: 30}
    assert [(m.id, m.model_version_id, m.display_name) for m in view.deployed_models] == [
        (first.deployed_model_id, "1", "recs-1"), (second.deployed_model_id, "2", "recs-2")]
    assert endpoints.get_endpoint("nope") is None


def test_a_local_undeploy_hands_the_traffic_over_and_is_idempotent(endpoints):
    first = deploy(endpoints, "tr-a", "1")
    second = deploy(endpoints, "tr-b", "2", endpoint_id="tr-a", percent=30)
    name = first.endpoint_resource_name
    with pytest.raises(PermanentError, match="not one of the models left"):
        endpoints.undeploy(name, second.deployed_model_id, {second.deployed_model_id: 100})
    assert endpoints.undeploy(name, second.deployed_model_id, {first.deployed_model_id: 100}) == \
        {first.deployed_model_id: 100}
    assert endpoints.undeploy(name, second.deployed_model_id, {}) == {first.deployed_model_id: 100}  # gone already
    assert endpoints.undeploy(name, first.deployed_model_id, {}) == {}
    assert endpoints.get_endpoint("tr-a").deployed_models == ()
