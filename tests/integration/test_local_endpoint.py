"""The local endpoint: a real prediction server loading a SavedModel shaped like the pipeline's
serving export (raw query features in, top-K candidate `ids` and `scores` out via a TFRS index),
deployed through the run-commands adapter, answers exactly what the model answers when called
directly. Registration into the local registry uses the Pusher's own function (push-anyway).

The SavedModel is built here with TensorFlow (pipeline_compiler's trained export takes a full
pipeline run; its serving signature has the same shape)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import requests

from pipeline_compiler.registry import LocalRegistrar
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.adapters.serving import DeployRequest
from shared.adapters.serving.local import LocalEndpoints
from shared.services.ports import Effects
from tests.builders import demo_member, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository

pytestmark = pytest.mark.integration

CUSTOMERS = [f"c{i}" for i in range(20)]
PRODUCTS = [f"p{i}" for i in range(50)]


def build_retrieval_saved_model(path: str, seed: int, k: int = 10) -> None:
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    tf.random.set_seed(seed)
    lookup = tf.keras.layers.StringLookup(vocabulary=CUSTOMERS)
    query_tower = tf.keras.Sequential([lookup, tf.keras.layers.Embedding(len(CUSTOMERS) + 1, 8)])
    candidates = tf.random.stateless_normal((len(PRODUCTS), 8), seed=(seed, 1))
    index = tfrs.layers.factorized_top_k.BruteForce(k=k)
    index.index(candidates, tf.constant(PRODUCTS))

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.query_tower, self.index = query_tower, index

        @tf.function(input_signature=[{"customer_id": tf.TensorSpec([None], tf.string, name="customer_id")}])
        def retrieve(self, raw):
            scores, ids = self.index(self.query_tower(raw["customer_id"]))
            return {"ids": ids, "scores": scores}

    module = Serving()
    module.retrieve({"customer_id": tf.constant(["c1"])})  # builds the variables
    tf.saved_model.save(module, path, signatures={"serving_default": module.retrieve.get_concrete_function()})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from werkzeug.serving import make_server

    from scripts.prediction_server import create_app

    endpoints_dir = str(tmp_path_factory.mktemp("endpoints"))
    http = make_server("127.0.0.1", 0, create_app(endpoints_dir), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield endpoints_dir, f"http://127.0.0.1:{http.server_port}"
    http.shutdown()


def deploy_request(run_id: str, saved_model: str, version: str, endpoint_id=None, traffic=100) -> DeployRequest:
    return DeployRequest(run_id=run_id, run_name="product-recommender-v3", model_resource_name="registry/x",
                         model_version_id=version, serving_model_uri=saved_model, endpoint_id=endpoint_id,
                         endpoint_display_name="product-recommender-v3", traffic_percent=traffic,
                         machine_type="local")


def test_the_local_endpoint_returns_the_same_top_k_as_the_model(tmp_path, server):
    import tensorflow as tf

    endpoints_dir, url = server
    saved_model = str(tmp_path / "model" / "saved_model")
    build_retrieval_saved_model(saved_model, seed=1)
    endpoints = LocalEndpoints(endpoints_dir, url)
    result = endpoints.deploy(deploy_request("tr-local-1", saved_model, "1"))
    assert result.traffic_split == {result.deployed_model_id: 100}
    assert result.predict_url == f"{url}/v1/endpoints/tr-local-1:predict"

    queries = ["c1", "c7", "c19", "unknown-customer"]
    response = requests.post(result.predict_url, json={"instances": [{"customer_id": c} for c in queries]}, timeout=60)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    direct = tf.saved_model.load(saved_model).signatures["serving_default"](customer_id=tf.constant(queries))
    for i, prediction in enumerate(predictions):
        assert prediction["ids"] == [x.decode() for x in direct["ids"][i].numpy()]
        np.testing.assert_allclose(prediction["scores"], direct["scores"][i].numpy(), rtol=1e-6)
        assert len(prediction["ids"]) == 10

    # a repeated deploy is idempotent: same deployed model, one entry
    again = endpoints.deploy(deploy_request("tr-local-1", saved_model, "1"))
    assert again.deployed_model_id == result.deployed_model_id
    described = requests.get(f"{url}/v1/endpoints/tr-local-1", timeout=10).json()
    assert len(described["deployed_models"]) == 1 and described["deployed_models"][0]["loaded"]

    assert requests.post(result.predict_url, json={"instances": [{"city": "x"}]}, timeout=10).status_code == 400
    assert requests.post(f"{url}/v1/endpoints/nope:predict", json={"instances": [{}]}, timeout=10).status_code == 404


def test_a_second_model_on_an_existing_endpoint_takes_its_traffic_share(tmp_path, server):
    endpoints_dir, url = server
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    build_retrieval_saved_model(first, seed=1)
    build_retrieval_saved_model(second, seed=2)
    endpoints = LocalEndpoints(endpoints_dir, url)
    base = endpoints.deploy(deploy_request("tr-local-2", first, "1"))
    added = endpoints.deploy(deploy_request("tr-local-3", second, "1", endpoint_id="tr-local-2", traffic=30))
    assert added.endpoint_resource_name == "local/endpoints/tr-local-2"
    assert added.traffic_split == {added.deployed_model_id: 30, base.deployed_model_id: 70}
    seen = {requests.post(added.predict_url, json={"instances": [{"customer_id": "c3"}]}, timeout=30).json()[
        "deployed_model_id"] for _ in range(40)}
    assert seen == {added.deployed_model_id, base.deployed_model_id}
    pinned = requests.post(added.predict_url, json={"instances": [{"customer_id": "c3"}],
                                                    "deployed_model_id": base.deployed_model_id}, timeout=30).json()
    assert pinned["deployed_model_id"] == base.deployed_model_id
    from shared.errors import PermanentError

    with pytest.raises(PermanentError):
        endpoints.deploy(deploy_request("tr-local-4", second, "1", endpoint_id="missing-endpoint", traffic=50))


def test_push_anyway_registers_into_the_local_registry_like_the_pusher(tmp_path):
    from dataclasses import replace

    from shared.services import intake
    from shared.services.submission import build_run_spec
    from shared.settings import get_settings

    repo = InMemoryRepository()
    ids = seed_catalog(repo)
    run = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                            run_body(ids["experiment"]), *demo_member("dev@example.com"))
    settings = replace(get_settings(), artifacts_root=str(tmp_path / "artifacts"), pipeline_root=str(tmp_path / "root"))
    spec = build_run_spec(run, repo, settings)
    saved_model = str(tmp_path / "artifacts" / run["id"] / "model" / "saved_model")
    build_retrieval_saved_model(saved_model, seed=3)
    registrar = LocalRegistrar(str(tmp_path / "registry"))
    entry = registrar.register(spec, saved_model)
    assert entry.model_display_name == "product-recommender-v3" and entry.model_version_id == "1"
    assert (tmp_path / "registry" / "product-recommender-v3" / "versions" / "1" / "saved_model" / "saved_model.pb").exists()
    assert registrar.register(spec, saved_model).model_version_id == "1"  # same attempt: no second version
