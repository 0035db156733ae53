"""The OpenAPI document describes the bodies the API really sends: each catalog kind created, listed and
fetched by id, a run created, fetched, queued again and asked for its errors, every 2xx body validated
against the schema the document gives for that operation and status (issue 26 part 9). The fuzz
(tests/integration/test_api_fuzz.py) checks the same on every operation against the local stack."""
from __future__ import annotations

import json

import jsonschema
import pytest

from shared.http.app import Dependencies, create_app
from shared.http.openapi import document
from tests.builders import dataset_body, feature_config_body, local_settings, model_config_body, run_body

TOKEN = "test-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def call(repo, publisher, store):
    """call(method, path, template, body=None) → the JSON body, once it has met its documented schema."""
    client = create_app(Dependencies(repo=repo, publisher=publisher, store=store,
                                     settings=local_settings("dev@example.com", TOKEN))).test_client()
    doc = document()

    def _call(method: str, path: str, template: str, body: dict | None = None) -> dict:
        response = client.open(path, method=method.upper(), headers=HEADERS,
                               data=json.dumps(body) if body is not None else None)
        assert 200 <= response.status_code < 300, (path, response.get_json())
        documented = doc["paths"][template][method]["responses"][str(response.status_code)]
        schema = documented["content"]["application/json"]["schema"]  # a KeyError here: undocumented body
        jsonschema.validate(response.get_json(), {**schema, "components": doc["components"]})
        return response.get_json()
    return _call


def catalog(call) -> dict:
    ids = {}
    for route, body in (("datasets", dataset_body()), ("feature-configs", feature_config_body()),
                        ("model-configs", model_config_body())):
        ids[route] = call("post", f"/api/{route}", f"/api/{route}", body)["item"]["id"]
    ids["experiments"] = call("post", "/api/experiments", "/api/experiments", {
        "name": "exp", "model_type": "retrieval", "dataset_id": ids["datasets"],
        "feature_config_id": ids["feature-configs"], "model_config_id": ids["model-configs"],
        "params": {"batch_size": 512}, "metrics": {"recall_at_100": 0.5}})["item"]["id"]
    return ids


@pytest.mark.parametrize("route", ["datasets", "feature-configs", "model-configs", "experiments"])
def test_a_catalog_entry_by_id_is_the_documented_envelope(call, route):
    doc_id = catalog(call)[route]
    body = call("get", f"/api/{route}/{doc_id}", f"/api/{route}/{{id}}")
    assert body["success"] is True and body["item"]["id"] == doc_id
    listed = call("get", f"/api/{route}", f"/api/{route}")
    assert doc_id in {item["id"] for item in listed["items"]}


def test_a_run_and_its_errors_are_the_documented_bodies(call):
    experiment = catalog(call)["experiments"]
    run = call("post", "/api/training-runs", "/api/training-runs", run_body(experiment))["training_run"]
    template = "/api/training-runs/{run_id}"
    assert call("get", f"/api/training-runs/{run['id']}", template)["training_run"]["status"] == "pending"
    call("post", f"/api/training-runs/{run['id']}/submit", template + "/submit")
    errors = call("get", f"/api/training-runs/{run['id']}/errors", template + "/errors")
    assert errors["run_id"] == run["id"] and errors["attempts"][0]["attempt"] == 1


def test_the_document_refuses_the_bare_object_it_once_promised(call):
    """The schemas above are not vacuous: the bare item (what the document used to promise) fails them."""
    doc = document()
    doc_id = catalog(call)["datasets"]
    item = call("get", f"/api/datasets/{doc_id}", "/api/datasets/{id}")["item"]
    schema = doc["paths"]["/api/datasets/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(item, {**schema, "components": doc["components"]})


def test_every_success_of_every_operation_documents_its_body():
    """So the fuzz's response_schema_conformance checks a schema on every operation, never nothing."""
    missing = [f"{method.upper()} {path} {code}" for path, operations in document()["paths"].items()
               for method, operation in operations.items() for code, response in operation["responses"].items()
               if code.startswith("2") and "schema" not in response.get("content", {}).get("application/json", {})]
    assert missing == []
