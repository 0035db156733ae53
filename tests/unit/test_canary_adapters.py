"""The adapters a canary's watch and a rollback use: an endpoint's traffic read and set (Vertex through the
official aiplatform client against EndpointService's gRPC fake; locally the endpoint file), and what a
deployed model served (Cloud Monitoring through the official monitoring client against MetricService's
gRPC fake; locally the prediction server's own counters)."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.serving.local import LocalEndpoints, LocalServingMetrics, write_endpoint
from shared.adapters.serving.monitoring import ERRORS, LATENCIES, RESPONSES, CloudMonitoringMetrics
from shared.domain import canary
from shared.domain.canary import Observation
from shared.errors import PermanentError
from tests.unit.test_vertex_serving import deploy_request, endpoints, registrar, spec, vertex  # noqa: F401

T = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


# ----------------------------------------------------------------------------- Vertex: the traffic split


def test_vertex_traffic_is_promoted_and_restored_with_update_endpoint(vertex):  # noqa: F811
    old = registrar(vertex).register(spec("tr-aaaaaaaaaaaaaaaa", name="recs-v2"), "gs://a/old")
    first = endpoints(vertex).deploy(deploy_request(old, run_id="tr-aaaaaaaaaaaaaaaa"))
    name = first.endpoint_resource_name
    new = registrar(vertex).register(spec(), "gs://a/new")
    staged = endpoints(vertex).deploy(deploy_request(new, endpoint_id=name.rsplit("/", 1)[-1], percent=10))
    assert staged.previous_traffic_split == {first.deployed_model_id: 100}
    old_id, new_id = first.deployed_model_id, staged.deployed_model_id
    adapter = endpoints(vertex)
    assert adapter.traffic(name) == {old_id: 90, new_id: 10}

    promoted = adapter.set_traffic(name, canary.promoted(adapter.traffic(name), new_id))
    assert dict(vertex.endpoints.endpoint(name).traffic_split) == {new_id: 100}  # a model at 0 is left out
    assert promoted == {old_id: 0, new_id: 100} and adapter.traffic(name) == promoted  # but still listed
    (update,) = vertex.server.requests("update_endpoint")
    assert list(update.update_mask.paths) == ["traffic_split"]

    restored = adapter.set_traffic(name, canary.restored(staged.previous_traffic_split, promoted, new_id))
    assert restored == {old_id: 100, new_id: 0}
    assert len(vertex.endpoints.endpoint(name).deployed_models) == 2  # the rolled-back model stays, at 0 %
    with pytest.raises(PermanentError, match="add up to 100"):
        adapter.set_traffic(name, {old_id: 50})

    # deploying the rolled-back model again gives it its share back (it is still deployed, at 0 %)
    again = endpoints(vertex).deploy(deploy_request(new, endpoint_id=name.rsplit("/", 1)[-1], percent=10))
    assert again.deployed_model_id == new_id and again.traffic_split == {old_id: 90, new_id: 10}
    assert again.previous_traffic_split == {old_id: 100, new_id: 0}
    assert len(vertex.server.requests("deploy_model")) == 2  # the old model's and the new one's, once


# ----------------------------------------------------------------------------- Vertex: Cloud Monitoring


@pytest.fixture
def monitoring():
    from tests.protocol_fakes import monitoring as fakes

    server, fake = fakes.start()
    yield server, fake
    server.stop()


def test_cloud_monitoring_reads_one_deployed_models_responses_errors_and_p95(monitoring):
    server, fake = monitoring
    for minute in range(10):
        fake.add(RESPONSES, "recs-prod", "22", T + timedelta(minutes=minute), 30)
        fake.add(LATENCIES, "recs-prod", "22", T + timedelta(minutes=minute), 40.0 + minute * 10)
    fake.add(ERRORS, "recs-prod", "22", T + timedelta(minutes=3), 4)
    fake.add(ERRORS, "recs-prod", "11", T + timedelta(minutes=3), 500)  # the old model: not the canary's
    fake.add(ERRORS, "recs-prod", "22", T - timedelta(minutes=3), 500)  # before the watch began
    metrics = CloudMonitoringMetrics("proj", emulator_host=server.address)
    seen = metrics.read("projects/proj/locations/europe-west4/endpoints/recs-prod", "22", T, T + timedelta(minutes=10))
    assert seen == Observation(requests=300, errors=4, p95_latency_ms=130.0)
    request = fake.requests[0]
    assert request.name == "projects/proj" and 'resource.type = "aiplatform.googleapis.com/Endpoint"' in request.filter
    assert 'metric.labels.deployed_model_id = "22"' in request.filter
    assert request.aggregation.alignment_period.total_seconds() == 600
    nothing = metrics.read("projects/proj/locations/europe-west4/endpoints/other", "22", T, T + timedelta(minutes=1))
    assert nothing == Observation(requests=0, errors=0, p95_latency_ms=None)


# ----------------------------------------------------------------------------- local: the endpoint file and counters


@pytest.fixture
def local_endpoint(tmp_path):
    write_endpoint(str(tmp_path), {
        "endpoint_id": "prod", "display_name": "prod", "labels": {}, "traffic_split": {"old": 90, "new": 10},
        "deployed_models": [{"id": i, "model": "m", "model_version_id": "1", "display_name": i,
                             "saved_model_uri": str(tmp_path / f"missing-{i}")} for i in ("old", "new")]})
    return str(tmp_path)


def test_local_traffic_is_set_in_the_endpoint_file(local_endpoint):
    adapter = LocalEndpoints(local_endpoint, "http://127.0.0.1:1")
    assert adapter.traffic("local/endpoints/prod") == {"old": 90, "new": 10}
    assert adapter.set_traffic("local/endpoints/prod", {"old": 100, "new": 0}) == {"old": 100, "new": 0}
    with open(f"{local_endpoint}/prod.json") as handle:
        assert json.load(handle)["traffic_split"] == {"old": 100, "new": 0}
    with pytest.raises(PermanentError, match="unknown models"):
        adapter.set_traffic("local/endpoints/prod", {"elsewhere": 100})
    with pytest.raises(PermanentError, match="sum to 100"):
        adapter.set_traffic("local/endpoints/prod", {"old": 60})


def test_the_prediction_server_counts_what_each_deployed_model_served(local_endpoint):
    """A model that cannot answer is a serving error (500, counted); a malformed request is the caller's
    (400, not the model's error); the metrics route and LocalServingMetrics read the window."""
    from werkzeug.serving import make_server

    from scripts.prediction_server import create_app

    app = create_app(local_endpoint)
    client = app.test_client()
    since = datetime.now(timezone.utc)
    for _ in range(3):
        answer = client.post("/v1/endpoints/prod:predict", json={"instances": [{"customer_id": "c1"}],
                                                                  "deployed_model_id": "new"})
        assert answer.status_code == 500 and answer.get_json()["deployed_model_id"] == "new"
    assert client.post("/v1/endpoints/prod:predict", json={"instances": [],
                                                            "deployed_model_id": "new"}).status_code == 400
    summary = client.get("/v1/endpoints/prod/metrics", query_string={"deployed_model_id": "new"}).get_json()
    assert summary["requests"] == 3 and summary["errors"] == 3 and summary["p95_latency_ms"] >= 0
    assert client.get("/v1/endpoints/prod/metrics", query_string={"deployed_model_id": "old"}).get_json()["requests"] == 0
    assert client.get("/v1/endpoints/prod/metrics").status_code == 400

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        metrics = LocalServingMetrics(f"http://127.0.0.1:{server.server_port}")
        seen = metrics.read("local/endpoints/prod", "new", since, datetime.now(timezone.utc) + timedelta(seconds=1))
        assert (seen.requests, seen.errors) == (3, 3)
        later = metrics.read("local/endpoints/prod", "new", datetime.now(timezone.utc) + timedelta(seconds=1),
                             datetime.now(timezone.utc) + timedelta(seconds=2))
        assert later == Observation(0, 0, None)
    finally:
        server.shutdown()
        thread.join()
