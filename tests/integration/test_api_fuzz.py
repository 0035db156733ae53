"""The API fuzzed from its own OpenAPI document (schemathesis, seeded and bounded) on the local stack
with the scripted pipeline service, so the valid runs it creates run no TFX. Every response must be
no server error and must be one the document describes: its status code, content type, body schema
and headers."""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed

import schemathesis
from shared.http.openapi import document
from tests.builders import post_catalog
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20261204
MAX_EXAMPLES = 12  # per operation; ~40 operations → the test stays within about two minutes
SEEN: Counter = Counter()  # (operation, status) → responses
AIMED: Counter = Counter()  # operation → cases
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


# The document the API serves at /api/openapi.json (test_the_served_document_is_the_one_fuzzed checks).
# Loaded at collection, not through schemathesis.pytest.from_fixture: its lazy loader sets
# Function._nodeid, which pytest 9 no longer has.
schema = schemathesis.openapi.from_dict(document())
# Valid requests and requests that break the document (wrong types, missing fields, bad ids...).
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def test_the_served_document_is_the_one_fuzzed(local_stack):
    assert local_stack.get("/api/openapi.json").json() == document()


@pytest.fixture(scope="module")
def fuzz_catalog(local_stack):
    """A real experiment, its dataset and configs (and the runs made from it): the fuzz also reaches the
    paths past "not found", so the documented 200 bodies are checked too, not only the errors."""
    experiment = post_catalog(local_stack.post, "fuzz base", {"batch_size": 512}, {"recall_at_100": 0.5})
    item = local_stack.get(f"/api/experiments/{experiment}").json()["item"]
    return {"experiment": experiment, "runs": [],
            "by_id": {"/api/experiments/{id}": experiment, "/api/datasets/{id}": item["dataset_id"],
                      "/api/feature-configs/{id}": item["feature_config_id"],
                      "/api/model-configs/{id}": item["model_config_id"]}}


def aim_at_real_documents(case, catalog: dict) -> None:
    """Every other run creation names the real base experiment (random ids name nothing, so no run would
    ever be made), every other catalog read by id a real entry, and every third run action a run the fuzz
    made: the services, the submitter and the scripted pipeline service see valid runs too.
    Deterministic, as the seeded fuzz is."""
    AIMED[case.operation.label] += 1
    turn = AIMED[case.operation.label]
    if case.operation.label == "POST /api/training-runs" and isinstance(case.body, dict) and turn % 2 == 0:
        for field in ("dataset_id", "feature_config_id", "model_config_id", "model_type"):
            case.body.pop(field, None)
        case.body["base_experiment_id"] = catalog["experiment"]
    real = catalog["by_id"].get(case.operation.path)
    if real and isinstance((case.path_parameters or {}).get("id"), str) and turn % 2 == 0:
        case.path_parameters["id"] = real
    run_id = (case.path_parameters or {}).get("run_id")
    if isinstance(run_id, str) and catalog["runs"] and turn % 3 == 0:
        case.path_parameters["run_id"] = catalog["runs"][turn % len(catalog["runs"])]


@schema.parametrize()
@hypothesis_seed(SEED)
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=False, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck), print_blob=True)
def test_every_response_is_documented_and_no_server_error(case, local_stack, fuzz_catalog):
    aim_at_real_documents(case, fuzz_catalog)
    response = case.call_and_validate(base_url=local_stack.api, session=local_stack.session, checks=CHECKS,
                                      timeout=30)
    SEEN[(case.operation.label, response.status_code)] += 1
    if case.operation.label == "POST /api/training-runs" and response.status_code == 201:
        fuzz_catalog["runs"].append(response.json()["training_run"]["id"])


def test_the_fuzz_reached_the_services():
    """Not vacuous: the fuzz above sent requests to every operation and got answers of several kinds."""
    print("\n".join(f"{n:4d} x {status} {label}" for (label, status), n in sorted(SEEN.items())))
    assert {label for label, _ in SEEN} == {op.ok().label for op in schema.get_all_operations()}
    statuses = {status for _, status in SEEN}
    assert {200, 201, 400, 404} <= statuses, statuses
    assert SEEN[("POST /api/training-runs", 201)] >= 3  # valid runs were made, and went on to the submitter
    # Real documents were read, so their 200 bodies met the document's schemas (response_schema_conformance).
    reads = ["GET /api/datasets/{id}", "GET /api/feature-configs/{id}", "GET /api/model-configs/{id}",
             "GET /api/experiments/{id}", "GET /api/training-runs/{run_id}", "GET /api/training-runs/{run_id}/errors"]
    assert all(SEEN[(label, 200)] >= 1 for label in reads), {label: SEEN[(label, 200)] for label in reads}
