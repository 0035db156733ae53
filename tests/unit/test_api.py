"""The HTTP API with in-memory fakes: create/list/get/delete/submit, the catalog, errors, identity."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from shared.domain import model_kinds, runs, teams
from shared.contract import topics
from shared.adapters.artifact_store import ArtifactStore
from shared.http.app import Dependencies, create_app
from shared.settings import get_settings
from tests.builders import dataset_body, feature_config_body, local_settings, model_config_body, run_body, seed_catalog
from tests.fakes import FakePublisher
from tests.identity_tokens import GCLOUD_CLIENT_ID, delivered_token

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings():
    return local_settings("dev@example.com", TOKEN)


@pytest.fixture
def client(repo, publisher, store, settings):
    app = create_app(Dependencies(repo=repo, publisher=publisher, store=store, settings=settings))
    return app.test_client()


def post(client, path, body, headers=AUTH):
    return client.post(path, data=json.dumps(body), headers={**headers, "Content-Type": "application/json"})


def fields(response) -> dict:
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


# ----------------------------------------------------------------------------- create


def test_create_inherits_from_experiment_fills_defaults_and_queues_submit(client, ids, publisher):
    response = post(client, "/api/training-runs", run_body(ids["experiment"]))
    assert response.status_code == 201, response.get_json()
    run = response.get_json()["training_run"]
    assert run["status"] == "pending" and run["run_number"] == 1 and run["attempt"] == 1
    assert run["created_by"] == "dev@example.com"
    assert run["model_type"] == "retrieval"
    assert run["dataset"]["id"] == ids["dataset"] and run["model_config"]["id"] == ids["model"]
    params = run["training_params"]
    assert params["epochs"] == 5  # given
    assert params["batch_size"] == 4096 and params["learning_rate"] == 0.05  # inherited from the experiment
    assert params["data_sample_percent"] == 100 and params["split_strategy"] == "strict_time"  # Appendix B
    assert params["lr_schedule"] == {"type": "reduce_on_plateau", "factor": 0.5, "patience": 3, "min_lr": 0.001,
                                     "monitor": "val_loss"}
    assert run["gpu_config"] == {"gpu_type": "NVIDIA_L4", "gpu_count": 2, "preemptible": True,
                                 "machine_type": "g2-standard-24", "machine_count": 1,
                                 "region": None, "fallbacks": []}
    assert run["evaluator_config"]["blessing_threshold"] == {"metric": "recall_at_100", "min_value": 0.4,
                                                             "max_value": None}
    assert run["base_experiment"]["display_name"] == f"Exp #{ids['experiment_number']}"
    assert [s["name"] for s in run["stage_details"]] == list(runs.STAGES)
    assert run["created_at"].endswith("Z")
    assert publisher.messages == [(topics.RUN_SUBMIT, {"run_id": run["id"], "attempt": 1}, {"run_id": run["id"]})]


def test_run_numbers_count_per_model_not_per_run_name(client, ids):
    """Spec §6.1: run_number auto-increments per ml_model, the deployment's model (TRAINYARD_MODEL_NAME);
    a run's name names its Vertex Model Registry entry, not the model the run belongs to."""
    numbers = [post(client, "/api/training-runs", run_body(ids["experiment"])).get_json()["training_run"]["run_number"]
               for _ in range(3)]
    other = post(client, "/api/training-runs", run_body(ids["experiment"], name="other-name"))
    later = post(client, "/api/training-runs", run_body(ids["experiment"]))
    assert numbers == [1, 2, 3]
    assert other.get_json()["training_run"]["run_number"] == 4
    assert later.get_json()["training_run"]["run_number"] == 5


def test_each_model_has_its_own_run_number_counter():
    from dataclasses import replace

    from shared.domain import run_numbers
    from shared.services import run_builder
    from shared.settings import get_settings

    settings = replace(get_settings(), model_name="recs/eu", project="p")
    assert run_builder.run_counter(settings) == "model-recs%2Feu"  # a document id has no '/'
    assert run_builder.run_counter(replace(settings, model_name="")) == "model-p"  # the header's default: the project
    assert run_numbers.counter_key("other") != run_builder.run_counter(settings)


def test_create_without_experiment_needs_the_configs(client, ids):
    response = post(client, "/api/training-runs", {"name": "no-base", "model_type": "retrieval"})
    assert response.status_code == 400
    assert set(fields(response)) == {"dataset_id", "feature_config_id", "model_config_id"}
    ok = post(client, "/api/training-runs", {"name": "no-base", "dataset_id": ids["dataset"],
                                             "feature_config_id": ids["features"], "model_config_id": ids["model"]})
    assert ok.status_code == 201
    assert ok.get_json()["training_run"]["training_params"]["batch_size"] == 8192  # Appendix B


@pytest.mark.parametrize("body, field, words", [
    ({"name": "Bad_Name"}, "name", "lowercase letters"),
    ({"name": "ab"}, "name", "3-63"),
    ({"name": "9lives"}, "name", "starting with a letter"),
    ({"training_params": {"epochs": 0}}, "training_params.epochs", "greater than or equal to 1"),
    ({"training_params": {"epochs": 5000}}, "training_params.epochs", "less than or equal to 1000"),
    ({"training_params": {"batch_size": 0}}, "training_params.batch_size", "greater than or equal"),
    ({"training_params": {"learning_rate": -1}}, "training_params.learning_rate", "greater than 0"),
    ({"training_params": {"data_sample_percent": 101}}, "training_params.data_sample_percent", "less than"),
    ({"training_params": {"early_stopping": {"patience": 0}}}, "training_params.early_stopping.patience", "greater than or equal to 1"),
    ({"training_params": {"lr_schedule": {"type": "cosine", "factor": 0.5}}},
     "training_params.lr_schedule.cosine.factor", "unknown field"),
    ({"training_params": {"lr_schedule": {"type": "sawtooth"}}}, "training_params.lr_schedule", "tag"),
    ({"training_params": {"lr_schedule": {"type": "reduce_on_plateau", "min_lr": 1.0}, "learning_rate": 0.1}},
     "training_params", "min_lr must be below learning_rate"),
    ({"gpu_config": {"gpu_type": "NVIDIA_L4", "gpu_count": 2, "machine_type": "n1-standard-8"}},
     "gpu_config.machine_type", "needs a g2 machine type"),
    ({"gpu_config": {"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 8}}, "gpu_config.gpu_count", "counts [1, 2, 4]"),
    ({"gpu_config": {"gpu_type": "NVIDIA_TESLA_A100", "gpu_count": 2, "machine_type": "a2-highgpu-1g"}},
     "gpu_config.machine_type", "use a2-highgpu-2g"),
    # Compute Engine caps a one-V100 VM at 12 vCPUs / 78 GB (https://cloud.google.com/compute/docs/gpus)
    ({"gpu_config": {"gpu_type": "NVIDIA_TESLA_V100", "gpu_count": 1, "machine_type": "n1-standard-16"}},
     "gpu_config.machine_type", "at most 12 vCPUs and 78 GB); use one of n1-standard-4, n1-standard-8"),
    ({"gpu_config": {"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 1, "machine_type": "n1-highmem-64"}},
     "gpu_config.machine_type", "at most 48 vCPUs and 312 GB"),
    ({"gpu_config": {"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 1, "machine_type": "n1-standard-1"}},
     "gpu_config.machine_type", "not an N1 type Vertex training offers"),
    ({"gpu_config": {"gpu_type": "NVIDIA_L4", "gpu_count": 2, "machine_type": "g2-standard-8"}},
     "gpu_config.machine_type", "does not hold 2 x NVIDIA_L4; use g2-standard-24"),
    ({"gpu_config": {"gpu_type": "NVIDIA_H100", "gpu_count": 1}}, "gpu_config.gpu_type", "Input should be"),
    ({"gpu_config": {"gpu_count": 3}}, "gpu_config.gpu_count", "Input should be"),
    ({"gpu_config": {"machine_count": 0}}, "gpu_config.machine_count", "greater than or equal to 1"),
    ({"gpu_config": {"machine_count": 17}}, "gpu_config.machine_count", "less than or equal to 16"),
    ({"gpu_config": {"machine_count": "two"}}, "gpu_config.machine_count", "valid integer"),
    ({"evaluator_config": {"blessing_threshold": {"metric": "test_rmse", "max_value": 1.0}}},
     "evaluator_config.blessing_threshold.metric", "does not fit a retrieval model"),
    ({"evaluator_config": {"blessing_threshold": {"metric": "recall_at_100", "max_value": 0.3}}},
     "evaluator_config.blessing_threshold", "higher-is-better"),
    ({"deployment_config": {"action": "deploy_existing"}}, "deployment_config", "needs existing_endpoint_id"),
    ({"deployment_config": {"action": "deploy_new", "traffic_split": 0}}, "deployment_config.traffic_split", "greater than or equal to 1"),
    ({"scheduled_at": "2001-01-01T00:00:00Z"}, "scheduled_at", "in the past"),
    ({"surprise": 1}, "surprise", "unknown field"),
    ({"training_params": {"surprise": 1}}, "training_params.surprise", "unknown field"),
    ({"training_params": {"tensorboard": {"histogram_every_epochs": -1}}},
     "training_params.tensorboard.histogram_every_epochs", "greater than or equal to 0"),
    ({"training_params": {"tensorboard": {"histograms": 5}}}, "training_params.tensorboard.histograms", "unknown field"),
    ({"base_experiment_id": "nope"}, "base_experiment_id", "no experiment with id 'nope'"),
    ({"dataset_id": "nope"}, "dataset_id", "no dataset with id 'nope'"),
    ({"model_type": "ranking"}, "model_type", "is a retrieval model, not ranking"),
])
def test_bad_input_is_400_naming_the_field(client, ids, body, field, words):
    response = post(client, "/api/training-runs", {**run_body(ids["experiment"]), **body})
    assert response.status_code == 400, response.get_json()
    errors = fields(response)
    assert field in errors, errors
    assert words.lower() in errors[field].lower() or words in errors[field], errors


def test_malformed_json_is_400(client, ids):
    response = client.post("/api/training-runs", data="{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert fields(response) == {"body": fields(response)["body"]}
    response = post(client, "/api/training-runs", ["a", "list"])
    assert response.status_code == 400 and "body" in fields(response)


def test_deploy_new_defaults_the_endpoint_name_to_the_run(client, ids):
    response = post(client, "/api/training-runs", run_body(ids["experiment"], deployment_config={"action": "deploy_new"}))
    assert response.get_json()["training_run"]["deployment_config"]["endpoint_name"] == "product-recommender-v3"


def test_ranking_gate_defaults_from_the_experiment(client, repo):
    ids = seed_catalog(repo, model_type="ranking", rmse=0.8)
    run = post(client, "/api/training-runs", run_body(ids["experiment"])).get_json()["training_run"]
    assert run["evaluator_config"]["blessing_threshold"]["metric"] == "test_rmse"
    assert run["evaluator_config"]["blessing_threshold"]["max_value"] == pytest.approx(0.88)


def test_the_evaluator_config_keeps_what_the_request_gives(client, ids):
    asked = {"min_lift_over_baseline_percent": 5.0, "ease_max_items": 500, "min_lift_over_ease_percent": -10.0}
    run = post(client, "/api/training-runs", run_body(ids["experiment"], evaluator_config=asked)).get_json()["training_run"]
    assert {k: run["evaluator_config"][k] for k in asked} == asked
    assert run["evaluator_config"]["blessing_threshold"] is None  # a lift-only gate gets no fixed threshold
    del asked["min_lift_over_baseline_percent"]
    run = post(client, "/api/training-runs", run_body(ids["experiment"], evaluator_config=asked)).get_json()["training_run"]
    assert {k: run["evaluator_config"][k] for k in asked} == asked
    assert run["evaluator_config"]["blessing_threshold"]["metric"] == "recall_at_100"  # the default gate, added


@pytest.mark.parametrize("kind", model_kinds.KINDS, ids=lambda k: k.name)
def test_the_default_gate_is_the_kinds_primary_metric(client, repo, kind):
    lower = model_kinds.lower_is_better(kind.primary_metric)
    ids = seed_catalog(repo, model_type=kind.name, rmse=0.8 if lower else None)
    gate = post(client, "/api/training-runs", run_body(ids["experiment"])).get_json()["training_run"][
        "evaluator_config"]["blessing_threshold"]
    assert gate["metric"] == kind.primary_metric
    assert gate["max_value" if lower else "min_value"] == pytest.approx(0.88 if lower else 0.40)
    if lower:  # no base metric to hold the run near: the request must name a threshold
        bare = seed_catalog(repo, model_type=kind.name)
        response = post(client, "/api/training-runs", run_body(bare["experiment"]))
        assert response.status_code == 400
        assert f"no {kind.primary_metric} to derive it from" in fields(response)["evaluator_config.blessing_threshold"]


def test_a_failed_publish_keeps_the_run_and_says_how_to_retry(repo, settings, ids):
    failing = FakePublisher(fail=True)
    client = create_app(Dependencies(repo=repo, publisher=failing, store=ArtifactStore(), settings=settings)).test_client()
    response = post(client, "/api/training-runs", run_body(ids["experiment"]))
    assert response.status_code == 201
    run_id = response.get_json()["training_run"]["id"]
    assert "submit" in response.get_json()["warnings"][0]
    assert repo.get_run(run_id)["status"] == "pending"
    failing.fail = False
    assert client.post(f"/api/training-runs/{run_id}/submit", headers=AUTH).status_code == 202
    assert failing.messages[0][1] == {"run_id": run_id, "attempt": 1}


# ----------------------------------------------------------------------------- read, list, delete


def test_get_and_404(client, ids):
    run = post(client, "/api/training-runs", run_body(ids["experiment"])).get_json()["training_run"]
    assert client.get(f"/api/training-runs/{run['id']}", headers=AUTH).get_json()["training_run"]["id"] == run["id"]
    missing = client.get("/api/training-runs/tr-nothing", headers=AUTH)
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


def test_list_filters_search_and_pages(client, repo, ids):
    made = [post(client, "/api/training-runs", run_body(ids["experiment"], name=f"model-{i:02d}",
                                                         description="weekly refresh" if i % 2 else "adhoc"))
            .get_json()["training_run"]["id"] for i in range(7)]
    repo.mutate_run(made[0], lambda d: {**d, "status": "failed"})
    page1 = client.get("/api/training-runs?page_size=3", headers=AUTH).get_json()
    assert len(page1["training_runs"]) == 3 and page1["total"] == 7 and page1["next_page_token"]
    seen = [r["id"] for r in page1["training_runs"]]
    token = page1["next_page_token"]
    while token:
        page = client.get(f"/api/training-runs?page_size=3&page_token={token}", headers=AUTH).get_json()
        seen += [r["id"] for r in page["training_runs"]]
        token = page["next_page_token"]
    assert sorted(seen) == sorted(made) and len(seen) == 7
    failed = client.get("/api/training-runs?status=failed", headers=AUTH).get_json()
    assert [r["id"] for r in failed["training_runs"]] == [made[0]]
    weekly = client.get("/api/training-runs?search=WEEKLY", headers=AUTH).get_json()
    assert len(weekly["training_runs"]) == 3 and weekly["total"] is None
    by_name = client.get("/api/training-runs?search=model-04", headers=AUTH).get_json()
    assert [r["name"] for r in by_name["training_runs"]] == ["model-04"]
    assert client.get(f"/api/training-runs?dataset={ids['dataset']}&model_type=retrieval",
                      headers=AUTH).get_json()["total"] == 7
    assert client.get("/api/training-runs?status=sleeping", headers=AUTH).status_code == 400
    assert client.get("/api/training-runs?page_size=500", headers=AUTH).status_code == 400
    assert client.get("/api/training-runs?page_token=garbage", headers=AUTH).status_code == 400


def test_delete_only_terminal_runs(client, repo, ids):
    run_id = post(client, "/api/training-runs", run_body(ids["experiment"])).get_json()["training_run"]["id"]
    refused = client.delete(f"/api/training-runs/{run_id}", headers=AUTH)
    assert refused.status_code == 409 and "pending" in refused.get_json()["message"]
    repo.mutate_run(run_id, lambda d: {**d, "status": "completed"})
    deleted = client.delete(f"/api/training-runs/{run_id}", headers=AUTH)
    assert deleted.status_code == 200 and deleted.get_json()["changed"] is True
    assert repo.get_run(run_id)["deleted"] is True  # soft: kept for the grace period (tests/security/test_deletes.py)
    assert client.get(f"/api/training-runs/{run_id}", headers=AUTH).status_code == 404
    again = client.delete(f"/api/training-runs/{run_id}", headers=AUTH)  # a repeat: the first delete stands
    assert again.status_code == 200 and again.get_json()["changed"] is False
    assert again.get_json()["purge_after"] == deleted.get_json()["purge_after"]


def test_delete_keeps_the_run_artifacts_for_the_grace_period(client, repo, ids, tmp_path):
    run_id = post(client, "/api/training-runs", run_body(ids["experiment"])).get_json()["training_run"]["id"]
    artifacts = tmp_path / run_id
    (artifacts / "model").mkdir(parents=True)
    (artifacts / "model" / "weights.bin").write_text("x")
    repo.mutate_run(run_id, lambda d: {**d, "status": "failed", "gcs_artifacts_path": str(artifacts)})
    response = client.delete(f"/api/training-runs/{run_id}", headers=AUTH)
    assert response.status_code == 200 and "restorable until" in response.get_json()["message"]
    assert (artifacts / "model" / "weights.bin").exists()


def test_submit_only_pending(client, repo, ids):
    run_id = post(client, "/api/training-runs", run_body(ids["experiment"])).get_json()["training_run"]["id"]
    repo.mutate_run(run_id, lambda d: {**d, "status": "running"})
    assert client.post(f"/api/training-runs/{run_id}/submit", headers=AUTH).status_code == 409


def test_save_as_draft_then_submit_later(client, repo, ids, publisher):
    """Spec §4 "Save as Draft": a run stored without submitting, submitted later, deletable meanwhile."""
    response = post(client, "/api/training-runs", run_body(ids["experiment"], draft=True))
    assert response.status_code == 201, response.get_json()
    run = response.get_json()["training_run"]
    assert run["status"] == "draft" and run["run_number"] == 1 and "draft" not in run
    assert publisher.messages == []  # nothing queued
    listed = client.get("/api/training-runs?status=draft", headers=AUTH).get_json()["training_runs"]
    assert [r["id"] for r in listed] == [run["id"]]
    submitted = client.post(f"/api/training-runs/{run['id']}/submit", headers=AUTH)
    assert submitted.status_code == 202 and repo.get_run(run["id"])["status"] == "pending"
    assert publisher.messages[-1][1] == {"run_id": run["id"], "attempt": 1}
    # submitting again re-queues the pending run (the submitter's claim makes it harmless)
    assert client.post(f"/api/training-runs/{run['id']}/submit", headers=AUTH).status_code == 202
    draft = post(client, "/api/training-runs", run_body(ids["experiment"], name="kept-as-draft", draft=True))
    assert client.delete(f"/api/training-runs/{draft.get_json()['training_run']['id']}", headers=AUTH).status_code == 200


def test_a_draft_is_not_scheduled(client, ids):
    response = post(client, "/api/training-runs", run_body(ids["experiment"], draft=True,
                                                           scheduled_at="2099-01-01T00:00:00Z"))
    assert response.status_code == 400 and "draft" in fields(response)


def test_a_stray_submit_message_never_starts_a_draft():
    from datetime import datetime, timezone

    from shared.domain import runs

    assert runs.claim_for_submit({"status": runs.DRAFT, "attempt": 1}, 1, datetime.now(timezone.utc)) is None


# ----------------------------------------------------------------------------- catalog


def test_catalog_create_list_get_and_validation(client):
    dataset = post(client, "/api/datasets", dataset_body())
    assert dataset.status_code == 201
    dataset_id = dataset.get_json()["item"]["id"]
    assert client.get(f"/api/datasets/{dataset_id}", headers=AUTH).get_json()["item"]["name"] == "Q4 2024 Training Data"
    assert len(client.get("/api/datasets", headers=AUTH).get_json()["items"]) == 1
    bad = post(client, "/api/datasets", dataset_body(source={"kind": "bigquery"}))
    assert bad.status_code == 400 and "source.bigquery" in fields(bad)
    bad = post(client, "/api/feature-configs", feature_config_body(features=[
        {"name": "a", "column": "a", "side": "query", "transform": {"type": "hashing"}}]))
    assert bad.status_code == 400 and "features.0.transform.hashing.num_buckets" in fields(bad)
    bad = post(client, "/api/model-configs", model_config_body(candidate_tower=[64, 16]))
    assert bad.status_code == 400 and "same output dimension" in fields(bad)["body"]
    bad = post(client, "/api/experiments", {"name": "x", "model_type": "retrieval", "dataset_id": "nope",
                                            "feature_config_id": "nope", "model_config_id": "nope"})
    assert set(fields(bad)) == {"dataset_id", "feature_config_id", "model_config_id"}
    assert client.get("/api/model-configs/nope", headers=AUTH).status_code == 404


def test_top_for_training_orders_by_primary_metric(client, repo):
    ids = seed_catalog(repo, recall=0.3)
    for recall in (0.9, 0.6, None):
        body = {"name": f"exp {recall}", "model_type": "retrieval", "dataset_id": ids["dataset"],
                "feature_config_id": ids["features"], "model_config_id": ids["model"],
                "metrics": {"recall_at_100": recall}}
        assert post(client, "/api/experiments", body).status_code == 201
    ranking = seed_catalog(repo, model_type="ranking", rmse=0.9)
    for rmse in (0.5, 1.2):
        post(client, "/api/experiments", {"name": f"rank {rmse}", "model_type": "ranking",
                                          "dataset_id": ranking["dataset"], "feature_config_id": ranking["features"],
                                          "model_config_id": ranking["model"], "metrics": {"test_rmse": rmse}})
    top = client.get("/api/experiments/top-for-training?model_type=retrieval&limit=2", headers=AUTH).get_json()
    assert [e["metrics"]["recall_at_100"] for e in top["experiments"]] == [0.9, 0.6]
    top = client.get("/api/experiments/top-for-training?model_type=ranking", headers=AUTH).get_json()
    assert [e["metrics"]["test_rmse"] for e in top["experiments"]] == [0.5, 0.9, 1.2]
    assert top["metric"] == "test_rmse" and top["direction"] == "asc"
    assert client.get("/api/experiments/top-for-training?model_type=nope", headers=AUTH).status_code == 400


def test_search_by_number_name_and_config_name(client, repo):
    ids = seed_catalog(repo)
    n = ids["experiment_number"]
    for q in (f"Exp #{n}", f"#{n}", f"exp {n}", str(n)):
        found = client.get("/api/experiments/search", query_string={"q": q}, headers=AUTH).get_json()["experiments"]
        assert [e["id"] for e in found] == [ids["experiment"]], q
    assert len(client.get("/api/experiments/search?q=QUICK", headers=AUTH).get_json()["experiments"]) == 1
    assert len(client.get("/api/experiments/search?q=config-042", headers=AUTH).get_json()["experiments"]) == 1
    assert client.get("/api/experiments/search?q=zzz", headers=AUTH).get_json()["experiments"] == []
    assert client.get("/api/experiments/search?q=", headers=AUTH).status_code == 400


# ----------------------------------------------------------------------------- identity, openapi, routing


def test_identity_is_required_except_for_health(client):
    assert client.get("/health").status_code == 200
    assert client.get("/api/training-runs").status_code == 401
    assert client.get("/api/training-runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/openapi.json").status_code == 401


API_URL = "https://europe-west4-p.cloudfunctions.net/trainyard-api"


# The seeded catalog's team, with the people these tests sign in as.
# The seeded dataset reads a local file: the team may read anything (data confinement: tests/security).
CLOUD_TEAMS = teams.parse({"demo": {"members": {"ana@example.com": "trainer", "ci@example.com": "viewer"},
                                    "model_names": ["product-recommender-*"], "buckets": ["*"]}})


def _cloud_client(repo, publisher, settings, **changes):
    cloud = replace(settings, **{"auth_mode": "google", "allowed_domain": "example.com",
                                 "auth_audience": f"{API_URL}, {GCLOUD_CLIENT_ID}", "teams": CLOUD_TEAMS, **changes})
    return create_app(Dependencies(repo=repo, publisher=publisher, store=ArtifactStore(), settings=cloud)).test_client()


def test_google_identity_as_cloud_run_delivers_it(repo, publisher, settings, ids):
    """A3: Cloud Run IAM removes the signature; the API accepts the claims of a token IAM passed."""
    client = _cloud_client(repo, publisher, settings)
    user = {"Authorization": f"Bearer {delivered_token('ana@example.com')}"}
    run = post(client, "/api/training-runs", run_body(ids["experiment"]), headers=user)
    assert run.status_code == 201, run.get_json()
    assert run.get_json()["training_run"]["created_by"] == "ana@example.com"
    robot = {"Authorization": f"Bearer {delivered_token('ci@example.com', aud=API_URL)}"}
    assert client.get("/api/training-runs", headers=robot).status_code == 200


@pytest.mark.parametrize("token, says", [
    (None, "send an identity"),
    ("not-a-jwt", "not a JWT"),
    ("a.!!!.b", "cannot be read"),
    (delivered_token(aud="https://other-service.run.app"), "another audience"),
    (delivered_token(aud="1234.apps.googleusercontent.com"), "another audience"),
    (delivered_token(expires_in=-3600), "expired"),
    (delivered_token(iss="https://evil.example"), "not issued by Google"),
    (delivered_token(email="eve@other.org"), "not in example.com"),
    (delivered_token(email_verified=False), "no verified email"),
    (delivered_token(iat=int(__import__("time").time()) + 3600), "issued in the future"),
])
def test_google_identity_refusals_name_the_reason(repo, publisher, settings, token, says):
    client = _cloud_client(repo, publisher, settings)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/api/training-runs", headers=headers)
    assert response.status_code == 401 and response.get_json()["error"] == "unauthenticated"
    assert says in response.get_json()["message"]


def test_google_identity_without_a_configured_audience_refuses_everything(repo, publisher, settings):
    """The old behaviour (audience=None) accepted a Google token minted for any client."""
    client = _cloud_client(repo, publisher, settings, auth_audience="")
    response = client.get("/api/training-runs", headers={"Authorization": f"Bearer {delivered_token()}"})
    assert response.status_code == 401 and "TRAINYARD_AUTH_AUDIENCE" in response.get_json()["message"]


def test_openapi_comes_from_the_validating_models(client):
    doc = client.get("/api/openapi.json", headers=AUTH).get_json()
    assert doc["openapi"].startswith("3.")
    schema = doc["components"]["schemas"]["CreateRunRequest"]
    assert schema["additionalProperties"] is False and "name" in schema["required"]
    assert "/api/training-runs/{run_id}" in doc["paths"]
    assert doc["components"]["schemas"]["TrainingParams"]["properties"]["epochs"]["maximum"] == 1000


def test_unknown_route_and_method(client):
    assert client.get("/api/nothing-here", headers=AUTH).status_code == 404
    assert client.put("/api/training-runs", headers=AUTH).status_code == 405


def test_every_api_route_is_in_the_openapi_document(client):
    import re

    from shared.http.app import CATALOG_ROUTES

    documented = set(client.get("/api/openapi.json", headers=AUTH).get_json()["paths"])
    for rule in client.application.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        if not path.startswith("/api/") or path == "/api/openapi.json":
            continue
        if path in ("/api/{kind}", "/api/{kind}/{doc_id}"):  # one rule serving every catalog kind
            for kind in CATALOG_ROUTES:
                assert path.replace("{kind}", kind).replace("{doc_id}", "{id}") in documented
            continue
        assert path in documented, f"{path} is served but not in /api/openapi.json"
