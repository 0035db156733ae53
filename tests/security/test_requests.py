"""Requests and pages (docs/security.md, "Requests and pages"; review LOW: body and nesting limits, the
`region` filter injection, security headers), replayed through the HTTP app as an attacker would send them.
Before: a 2 MB catalog document was stored (Firestore then refuses it: a 500), 5,000-deep JSON was a
RecursionError (500), `region` went verbatim into a Cloud Monitoring filter, and no page or API response
carried a CSP, X-Frame-Options or nosniff."""
from __future__ import annotations

import json

import pytest

from shared.adapters.artifact_store import ArtifactStore
from shared.adapters.run_data_sources import CloudGpuQuota, RunDataSources
from shared.adapters.run_logs import CloudLoggingLogs
from shared.http.app import Dependencies, create_app
from shared.settings import Settings
from tests.builders import dataset_body, local_settings, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository

TOKEN = "dev-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
METRIC = "aiplatform.googleapis.com/custom_model_training_preemptible_nvidia_l4_gpus"


class QuotaApis:
    """Cloud Quotas and Cloud Monitoring as the pre-flight calls them (shared/adapters/run_data_sources.py):
    records each Monitoring filter it is sent."""

    def __init__(self):
        self.filters: list[str] = []

    def call(self, method, url, what, **kwargs):
        if what == "Cloud Quotas":
            return {"quotaInfos": [{"metric": METRIC, "quotaId": "q", "dimensionsInfos": [
                {"dimensions": {}, "details": {"value": "4"}}]}]}
        self.filters.append(kwargs["params"]["filter"])
        return {"timeSeries": []}


@pytest.fixture
def repo():
    return InMemoryRepository()


def app_with(repo, **deps):
    settings = local_settings("dev@example.com", TOKEN)  # the demo team's admin
    return create_app(Dependencies(repo=repo, publisher=FakePublisher(), store=ArtifactStore(), settings=settings,
                                   **deps)).test_client()


def post(client, path, raw: bytes | str):
    return client.post(path, data=raw, headers={**AUTH, "Content-Type": "application/json"})


def fields(response) -> dict:
    body = response.get_json()
    return {e["field"]: e["message"] for e in body.get("errors", [])}


# ----------------------------------------------------------------------------- body size and nesting


def test_a_2_mb_catalog_document_is_413_with_the_json_error_shape(repo):
    doc = dataset_body(features=[f"feature_{n:06d}" for n in range(200_000)])  # the review's probe: 2 MB
    response = post(app_with(repo), "/api/datasets", json.dumps(doc))
    assert response.status_code == 413
    assert response.get_json()["success"] is False and "larger than" in response.get_json()["message"]
    assert repo.list_catalog("datasets", 10) == []


@pytest.mark.parametrize("path", ["/api/datasets", "/api/training-runs", "/api/training/schedules"])
def test_json_5000_deep_is_400_naming_body_not_a_500(repo, path):
    response = post(app_with(repo), path, "[" * 5000 + "]" * 5000)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert "body" in fields(response) and "deep" in fields(response)["body"]


def test_deep_json_inside_an_object_and_on_an_optional_body_route(repo):
    ids = seed_catalog(repo)
    client = app_with(repo)
    nested = '{"name": "x", "params": ' + '{"a": ' * 3000 + "1" + "}" * 3000 + "}"
    assert post(client, "/api/datasets", nested).status_code == 400
    run = client.post("/api/training-runs", json=run_body(ids["experiment"]), headers=AUTH)
    run_id = run.get_json()["training_run"]["id"]
    response = post(client, f"/api/training-runs/{run_id}/retry", "[" * 5000 + "]" * 5000)
    assert response.status_code == 400 and "body" in fields(response)


def test_brackets_inside_strings_do_not_count_as_nesting(repo):
    doc = dataset_body(description="[" * 1000 + "{" * 500)
    response = post(app_with(repo), "/api/datasets", json.dumps(doc))
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize("changes, field", [
    ({"description": "x" * 2001}, "description"),
    ({"features": [f"f{n}" for n in range(501)]}, "features"),
    ({"features": ["c" * 301]}, "features.0"),
])
def test_catalog_fields_have_limits_named_in_the_400(repo, changes, field):
    response = post(app_with(repo), "/api/datasets", json.dumps(dataset_body(**changes)))
    assert response.status_code == 400 and field in fields(response), response.get_json()


def test_model_config_towers_and_descriptions_have_limits(repo):
    from tests.builders import model_config_body

    client = app_with(repo)
    deep_tower = post(client, "/api/model-configs", json.dumps(model_config_body(query_tower=[8] * 17)))
    assert deep_tower.status_code == 400 and "query_tower" in fields(deep_tower)
    long = post(client, "/api/feature-configs", json.dumps({"name": "f", "description": "x" * 2001, "features": []}))
    assert long.status_code == 400 and "description" in fields(long)


# ----------------------------------------------------------------------------- query parameters


def test_region_cannot_inject_into_the_monitoring_filter(repo):
    apis = QuotaApis()
    sources = RunDataSources(CloudLoggingLogs("p", "europe-west4", apis), CloudGpuQuota("p", apis))
    client = app_with(repo, run_data=sources)
    injected = 'europe-west4" OR metric.type="logging.googleapis.com/user/secrets'
    response = client.get("/api/gpu-availability", query_string={"region": injected}, headers=AUTH)
    assert response.status_code == 400 and fields(response) == {
        "region": "must be a Google Cloud region such as europe-west4"}
    assert apis.filters == []
    ok = client.get("/api/gpu-availability", query_string={"region": "us-central1"}, headers=AUTH)
    assert ok.status_code == 200 and apis.filters and 'location="us-central1"' in apis.filters[-1]


def test_the_adapter_itself_refuses_a_region_that_is_not_one():
    from shared.errors import FieldError

    with pytest.raises(FieldError):
        CloudGpuQuota("p", QuotaApis())._read_in_use(METRIC, 'x" OR "1"="1')


@pytest.mark.parametrize("path, params, field", [
    ("/api/datasets", {"model_type": "retrieval' OR 1"}, "model_type"),
    ("/api/experiments", {"model_type": "bogus"}, "model_type"),
    ("/api/training-runs", {"dataset": "../../etc"}, "dataset"),
    ("/api/training-runs", {"dataset_id": "a/b"}, "dataset_id"),
    ("/api/training-runs", {"q": "x" * 201}, "q"),
    ("/api/training-runs", {"search": "x" * 201}, "search"),
    ("/api/training-runs", {"page_token": "x" * 5000}, "page_token"),
    ("/api/training-runs", {"unknown": "x" * 600}, "unknown"),
    ("/api/gpu-availability", {"preemptible": "maybe"}, "preemptible"),
    ("/api/gpu-availability", {"region": "EUROPE-WEST4"}, "region"),
    ("/api/training-runs/tr-missing/logs", {"stage": "Train' OR x"}, "stage"),
])
def test_each_query_parameter_of_the_wrong_shape_is_a_400_naming_it(repo, path, params, field):
    response = app_with(repo).get(path, query_string=params, headers=AUTH)
    assert response.status_code == 400 and field in fields(response), response.get_json()


def test_a_parameter_given_twice_is_checked_each_time(repo):
    response = app_with(repo).get("/api/gpu-availability?region=europe-west4&region=x%22", headers=AUTH)
    assert response.status_code == 400 and "region" in fields(response)


# ----------------------------------------------------------------------------- headers


@pytest.fixture
def dist(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Training</title>")
    (tmp_path / "assets" / "index-abc.js").write_text("console.log('hi')")
    return tmp_path


def page_client(dist, **env):
    settings = Settings.from_environ({"TRAINYARD_AUTH": "local", "TRAINYARD_DEV_TOKEN": TOKEN,
                                      "TRAINYARD_DASHBOARD_DIR": str(dist), **env})
    return create_app(Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=ArtifactStore(),
                                   settings=settings)).test_client()


def policy(response) -> dict:
    return {part.split()[0]: part.split()[1:] for part in response.headers["Content-Security-Policy"].split("; ")}


@pytest.mark.parametrize("path", ["/training", "/training/assets/index-abc.js", "/training/config.json"])
def test_the_page_and_its_assets_carry_the_security_headers(dist, path):
    response = page_client(dist, FIRESTORE_EMULATOR_HOST="127.0.0.1:8085").get(path)
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    csp = policy(response)
    assert csp["frame-ancestors"] == ["'none'"] and csp["script-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["connect-src"] == ["'self'", "http://127.0.0.1:8085"]  # locally: the Firestore emulator only


def test_the_cloud_page_may_reach_firebase_and_nothing_else(dist):
    csp = policy(page_client(dist, TRAINYARD_AUTH="firebase", GOOGLE_CLOUD_PROJECT="prod",
                             TRAINYARD_DEV_TOKEN="").get("/training"))
    assert csp["script-src"] == ["'self'", "https://apis.google.com"]  # the sign-in popup's loader
    assert set(csp["connect-src"]) == {"'self'", "https://firestore.googleapis.com",
                                       "https://identitytoolkit.googleapis.com", "https://securetoken.googleapis.com"}
    assert csp["frame-src"] == ["https://prod.firebaseapp.com"]
    assert "'unsafe-eval'" not in str(csp) and "'unsafe-inline'" not in csp["script-src"]


@pytest.mark.parametrize("path", ["/api/training-runs", "/api/nowhere", "/health"])
def test_every_api_answer_carries_them_too(dist, path):
    for headers in ({}, AUTH):
        response = page_client(dist).get(path, headers=headers)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert policy(response) == {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}
