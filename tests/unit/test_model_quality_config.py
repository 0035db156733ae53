"""Issue 16 through the API: the model options' validation (400 naming the field), embedding-only
towers checked against the run's features, and the spec details (min_lr default, V100 machine,
traffic split on an existing endpoint)."""
import json

import pytest

from shared.adapters.artifact_store import ArtifactStore
from shared.http.app import Dependencies, create_app
from shared.domain.run_config import DeploymentConfig, GpuConfig, TrainingParams
from tests.builders import feature_config_body, local_settings, model_config_body, run_body, seed_catalog
from tests.fakes import FakePublisher

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(repo):
    settings = local_settings("dev@example.com", TOKEN)
    return create_app(Dependencies(repo=repo, publisher=FakePublisher(), store=ArtifactStore(),
                                   settings=settings)).test_client()


def post(client, path, body):
    return client.post(path, data=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"})


def fields(response) -> dict:
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


@pytest.mark.parametrize("override,field", [
    ({"temperature": 0}, "temperature"),
    ({"temperature": -1}, "temperature"),
    ({"temperature": "hot"}, "temperature"),
    ({"normalize_embeddings": "sometimes"}, "normalize_embeddings"),
    ({"sampling_bias_correction": 3}, "sampling_bias_correction"),
    ({"remove_accidental_hits": "maybe"}, "remove_accidental_hits"),
    ({"query_tower": [0]}, "body"),
])
def test_bad_model_options_are_a_400_naming_the_field(client, override, field):
    response = post(client, "/api/model-configs", model_config_body(**override))
    assert response.status_code == 400 and field in fields(response), response.get_json()


def test_embedding_only_towers_are_a_model_config(client):
    response = post(client, "/api/model-configs", model_config_body(
        query_tower=[], candidate_tower=[], normalize_embeddings=True, temperature=0.05))
    assert response.status_code == 201, response.get_json()
    item = response.get_json()["item"]
    assert item["query_tower"] == [] and item["temperature"] == 0.05
    assert item["sampling_bias_correction"] is True and item["remove_accidental_hits"] is False  # the bench's defaults


def test_embedding_only_towers_of_unequal_width_meet_and_a_dense_side_of_another_width_is_a_400(client, repo):
    ids = seed_catalog(repo)
    # builders' feature config: query = customer_id (32) + cyclical (6) + cross (16) = 54; candidate = 32.
    # Both sides embedding-only: the wider query side is projected to 32 (catalog.projection_width), accepted.
    model = post(client, "/api/model-configs", model_config_body(name="emb-only", query_tower=[], candidate_tower=[]))
    response = post(client, "/api/training-runs", run_body(ids["experiment"], model_config_id=model.get_json()["item"]["id"]))
    assert response.status_code == 201, response.get_json()
    # An embedding-only side beside a dense side must match the dense side's output: 54 against 32 is a 400.
    mixed = post(client, "/api/model-configs", model_config_body(name="mixed", query_tower=[], candidate_tower=[64, 32]))
    response = post(client, "/api/training-runs", run_body(ids["experiment"], model_config_id=mixed.get_json()["item"]["id"]))
    assert response.status_code == 400
    assert "54 dimensions and the candidate tower's 32" in fields(response)["model_config_id"]
    # Equal widths: accepted.
    features = post(client, "/api/feature-configs", feature_config_body(name="ids", features=feature_config_body()["features"][:2]))
    response = post(client, "/api/training-runs", run_body(ids["experiment"], model_config_id=mixed.get_json()["item"]["id"],
                                                          feature_config_id=features.get_json()["item"]["id"]))
    assert response.status_code == 201, response.get_json()


def test_promoting_an_experiment_trained_at_0_001_is_accepted(client, repo):
    ids = seed_catalog(repo)
    response = post(client, "/api/training-runs", run_body(ids["experiment"], training_params={"learning_rate": 0.001}))
    assert response.status_code == 201, response.get_json()
    schedule = response.get_json()["training_run"]["training_params"]["lr_schedule"]
    assert schedule["min_lr"] == pytest.approx(1e-5)  # 1% of the rate when the spec's 0.001 is not below it
    assert TrainingParams().lr_schedule.min_lr == 0.001  # the spec's default where it fits
    with pytest.raises(ValueError, match="min_lr must be below learning_rate"):
        TrainingParams.model_validate({"learning_rate": 0.001, "lr_schedule": {"type": "reduce_on_plateau", "min_lr": 0.001}})


def test_spec_appendix_a_and_the_gradual_rollout_default():
    assert GpuConfig(gpu_type="NVIDIA_TESLA_V100", gpu_count=2).machine_type == "n1-standard-16"  # Appendix A's V100 machine
    assert DeploymentConfig(action="deploy_existing", existing_endpoint_id="9").traffic_split == 10
    assert DeploymentConfig(action="deploy_new").traffic_split == 100  # a new endpoint serves only this model
    assert DeploymentConfig(action="deploy_existing", existing_endpoint_id="9", traffic_split=40).traffic_split == 40


def test_a_lift_only_gate_needs_no_fixed_threshold_and_is_validated(client, repo):
    ids = seed_catalog(repo)
    response = post(client, "/api/training-runs", run_body(
        ids["experiment"], evaluator_config={"enabled": True, "min_lift_over_baseline_percent": 15}))
    assert response.status_code == 201, response.get_json()
    evaluator = response.get_json()["training_run"]["evaluator_config"]
    assert evaluator["min_lift_over_baseline_percent"] == 15 and evaluator["blessing_threshold"] is None
    bad = post(client, "/api/training-runs", run_body(
        ids["experiment"], evaluator_config={"enabled": True, "min_lift_over_baseline_percent": -3}))
    assert bad.status_code == 400 and "evaluator_config.min_lift_over_baseline_percent" in fields(bad)
