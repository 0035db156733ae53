"""The Vertex serving adapters (shared/adapters/serving/vertex.py, pipeline_compiler/registry.py) through the official GAPIC clients over
ModelService's, EndpointService's and JobService's gRPC protocol (tests/protocol_fakes/vertex.py):
what the Pusher registers, what run-commands deploys and cancels. The first production run is no
longer their first integration test."""
from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest

from pipeline_compiler.registry import VertexRegistrar
from shared.errors import PermanentError, TransientError
from shared.adapters.serving import DeployRequest
from shared.adapters.serving.vertex import VertexEndpoints, VertexTrainerJobs

PROJECT, REGION = "proj", "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/trainyard/trainyard-serving:v1"


@pytest.fixture
def vertex():
    from tests.protocol_fakes import vertex as fakes

    served = []
    fake = fakes.start(REGION, serve=lambda model: served.append(model.name) and None)
    fake.served = served
    yield fake
    fake.server.stop()


def spec(run_id="tr-0123456789abcdef", attempt=1, name="recs-v3"):
    return SimpleNamespace(run_id=run_id, attempt=attempt, run_number=3, model_type="retrieval", run_name=name,
                           artifacts_uri=f"gs://bucket/training/{run_id}")


def registrar(vertex) -> VertexRegistrar:
    return VertexRegistrar(PROJECT, REGION, IMAGE, emulator_host=vertex.server.address, wait_s=30)


def endpoints(vertex) -> VertexEndpoints:
    return VertexEndpoints(PROJECT, REGION, wait_s=30, emulator_host=vertex.server.address)


def deploy_request(entry, run_id="tr-0123456789abcdef", endpoint_id=None, percent=100) -> DeployRequest:
    return DeployRequest(run_id=run_id, run_name="recs-v3", model_resource_name=entry.model_resource_name,
                         model_version_id=entry.model_version_id, serving_model_uri=entry.serving_model_uri,
                         endpoint_id=endpoint_id, endpoint_display_name="recs", traffic_percent=percent,
                         machine_type="n1-standard-4")


def test_register_uploads_our_serving_container_and_is_idempotent_per_attempt(vertex):
    first = registrar(vertex).register(spec(), "gs://a/tr-1/model/saved_model")
    assert first.model_resource_name.startswith(f"{PARENT}/models/") and first.model_version_id == "1"
    model = vertex.models.version(f"{first.model_resource_name}@1")
    assert model.container_spec.image_uri == IMAGE
    assert (model.container_spec.predict_route, model.container_spec.health_route) == ("/predict", "/health")
    assert [p.container_port for p in model.container_spec.ports] == [8080]
    assert model.version_description.endswith("model card: gs://bucket/training/tr-0123456789abcdef/model_card/model_card.md")
    assert model.artifact_uri == "gs://a/tr-1/model/saved_model"
    assert dict(model.labels)["trainyard-attempt"] == "1"

    again = registrar(vertex).register(spec(), "gs://a/tr-1/model/saved_model")  # a retried Pusher
    assert (again.model_resource_name, again.model_version_id) == (first.model_resource_name, "1")
    assert len(vertex.server.requests("upload_model")) == 1

    # B7: the next attempt is a new version of the same model and becomes the default; a retry of the
    # first attempt still finds its own version, though it is no longer the default.
    second = registrar(vertex).register(spec(attempt=2), "gs://a/tr-1/model/saved_model")
    assert (second.model_resource_name, second.model_version_id) == (first.model_resource_name, "2")
    assert "default" in vertex.models.version(f"{first.model_resource_name}@2").version_aliases
    retried = registrar(vertex).register(spec(attempt=1), "gs://a/tr-1/model/saved_model")
    assert retried.model_version_id == "1" and len(vertex.server.requests("upload_model")) == 2


def test_register_errors_name_the_push_stage(vertex):
    vertex.server.fail("list_models", grpc.StatusCode.PERMISSION_DENIED, "aiplatform.models.list denied")
    with pytest.raises(PermanentError) as raised:
        registrar(vertex).register(spec(), "gs://a/m")
    assert raised.value.stage == "Push" and "denied" in str(raised.value)
    vertex.server.fail("list_models", grpc.StatusCode.UNAVAILABLE, times=10)
    with pytest.raises(TransientError):
        registrar(vertex).register(spec(), "gs://a/m")


def test_deploy_makes_the_runs_endpoint_once_and_sends_all_traffic(vertex):
    entry = registrar(vertex).register(spec(), "gs://a/m")
    result = endpoints(vertex).deploy(deploy_request(entry))
    endpoint = vertex.endpoints.endpoint(result.endpoint_resource_name)
    assert endpoint.name == f"{PARENT}/endpoints/tr-0123456789abcdef" and endpoint.display_name == "recs"
    (deployed,) = endpoint.deployed_models
    assert deployed.model.split("@")[0] == entry.model_resource_name
    assert deployed.dedicated_resources.machine_spec.machine_type == "n1-standard-4"
    assert result.traffic_split == {deployed.id: 100} and result.deployed_model_id == deployed.id
    assert result.predict_url == f"https://{REGION}-aiplatform.googleapis.com/v1/{endpoint.name}:predict"
    assert vertex.served  # the fake's model server was started for it

    endpoints(vertex).deploy(deploy_request(entry))  # a redelivered command: nothing deployed twice
    assert len(vertex.server.requests("deploy_model")) == 1
    assert len(vertex.server.requests("create_endpoint")) == 1


def two_models(vertex, percent):
    """An old model on its run's endpoint, and a new one beside it at `percent`: (old, new, their deploys)."""
    old = registrar(vertex).register(spec("tr-aaaaaaaaaaaaaaaa", name="recs-v2"), "gs://a/old")
    first = endpoints(vertex).deploy(deploy_request(old, run_id="tr-aaaaaaaaaaaaaaaa"))
    new = registrar(vertex).register(spec(), "gs://a/new")
    second = endpoints(vertex).deploy(deploy_request(new, endpoint_id=first.endpoint_resource_name.rsplit("/", 1)[-1],
                                                     percent=percent))
    return old, new, first, second


def test_deploy_to_an_existing_endpoint_splits_traffic_with_the_models_already_there(vertex):
    old, new, _, result = two_models(vertex, 30)
    endpoint_id = result.endpoint_resource_name.rsplit("/", 1)[-1]
    endpoint = vertex.endpoints.endpoint(endpoint_id)
    ids = {m.model.split("@")[0]: m.id for m in endpoint.deployed_models}
    assert result.traffic_split == {ids[new.model_resource_name]: 30, ids[old.model_resource_name]: 70}
    assert sum(dict(endpoint.traffic_split).values()) == 100

    with pytest.raises(PermanentError, match="no endpoint"):
        endpoints(vertex).deploy(deploy_request(new, endpoint_id="missing-endpoint"))


def test_trainer_jobs_of_a_run_are_cancelled_and_others_left_alone(vertex):
    mine = vertex.jobs.add_custom_job(PARENT, "trainer-mine", {"trainyard-run-id": "tr-0123456789abcdef"})
    done = vertex.jobs.add_custom_job(PARENT, "trainer-done", {"trainyard-run-id": "tr-0123456789abcdef"},
                                      state="JOB_STATE_SUCCEEDED")
    other = vertex.jobs.add_custom_job(PARENT, "trainer-other", {"trainyard-run-id": "tr-ffffffffffffffff"})
    jobs = VertexTrainerJobs(PROJECT, REGION, emulator_host=vertex.server.address)
    assert jobs.cancel_for_run("tr-0123456789abcdef") == [mine]
    assert [vertex.jobs.state(n) for n in (mine, done, other)] == [
        "JOB_STATE_CANCELLED", "JOB_STATE_SUCCEEDED", "JOB_STATE_RUNNING"]
    assert jobs.cancel_for_run("tr-0123456789abcdef") == []  # again: nothing left running


def test_endpoints_are_listed_across_pages_and_read_with_their_models_and_split(vertex):
    old, new, first, second = two_models(vertex, 25)
    endpoint_id = first.endpoint_resource_name.rsplit("/", 1)[-1]
    for n in range(3):  # more endpoints than one page of the fake's (page_size 2 below)
        endpoints(vertex).deploy(deploy_request(old, run_id=f"tr-b{n}aaaaaaaaaaaaaa"))
    adapter = endpoints(vertex)
    real_list = adapter.client.list_endpoints
    adapter.client.list_endpoints = lambda request: real_list(request={**request, "page_size": 2})
    listed = adapter.list_endpoints()
    assert [e.id for e in listed] == sorted(e.id for e in listed) and len(listed) == 4
    assert len(vertex.server.requests("list_endpoints")) >= 2  # the pager followed next_page_token

    view = endpoints(vertex).get_endpoint(endpoint_id)
    assert view.resource_name == first.endpoint_resource_name and view.display_name == "recs"
    assert view.traffic_split == second.traffic_split and sum(view.traffic_split.values()) == 100
    by_id = {m.id: m for m in view.deployed_models}
    assert by_id[second.deployed_model_id].model == new.model_resource_name
    assert by_id[second.deployed_model_id].model_version_id == new.model_version_id
    assert by_id[first.deployed_model_id].deployed_at
    assert endpoints(vertex).get_endpoint("missing-endpoint") is None


def test_undeploy_takes_the_models_traffic_away_in_the_same_call_and_is_idempotent(vertex):
    _, _, first, second = two_models(vertex, 40)
    name = first.endpoint_resource_name
    after = endpoints(vertex).undeploy(name, second.deployed_model_id, {first.deployed_model_id: 100})
    assert after == {first.deployed_model_id: 100}
    assert [m.id for m in vertex.endpoints.endpoint(name).deployed_models] == [first.deployed_model_id]
    (request,) = vertex.server.requests("undeploy_model")
    assert dict(request.traffic_split) == {first.deployed_model_id: 100}  # Vertex refuses a model that keeps traffic

    assert endpoints(vertex).undeploy(name, second.deployed_model_id, {first.deployed_model_id: 100}) == after
    assert len(vertex.server.requests("undeploy_model")) == 1  # already gone: nothing asked again
    assert endpoints(vertex).undeploy(name, first.deployed_model_id, {}) == {}  # the last one: the split empties
    assert not vertex.endpoints.endpoint(name).deployed_models
