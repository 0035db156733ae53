"""Valid request bodies for tests, and a deployment with teams for the identities they act as."""
from __future__ import annotations

from dataclasses import replace

from shared.domain import teams

DEV = "dev@example.com"


def demo_member(identity: str = DEV, declared=None) -> tuple:
    """(caller, the deployment's teams) for a service call: by default `identity` is the admin of a
    demo team (the local stack's own team when none is declared) that may use anything."""
    declared = teams.demo(identity) if declared is None else declared
    return teams.caller(identity, declared), declared


def local_settings(identity: str = DEV, token: str = "test-token", **changes):
    """The local stack's settings for an API whose developer `identity` is admin of the demo team
    (pass `teams=`/`admins=` to declare others)."""
    from shared.settings import get_settings

    changes.setdefault("teams", teams.demo(identity))
    return replace(get_settings(), auth_mode="local", dev_token=token, dev_identity=identity, **changes)


def dataset_body(**overrides) -> dict:
    body = {"name": "Q4 2024 Training Data",
            "source": {"kind": "files", "uri": "/data/transactions.csv", "format": "csv"},
            "columns": {"user_id": "customer_id", "item_id": "product_id", "timestamp": "ts",
                        "quantity": "quantity"},
            "features": ["segment", "city", "category"]}
    body.update(overrides)
    return body


def feature_config_body(**overrides) -> dict:
    body = {"name": "config-042", "features": [
        {"name": "customer_id", "column": "customer_id", "side": "query",
         "transform": {"type": "vocabulary", "embedding_dim": 32}},
        {"name": "product_id", "column": "product_id", "side": "candidate",
         "transform": {"type": "vocabulary", "embedding_dim": 32}},
        {"name": "ts_cyc", "column": "ts", "side": "query", "transform": {"type": "cyclical"}},
        {"name": "cat_x_city", "side": "query",
         "transform": {"type": "cross", "columns": ["category", "city"], "hash_buckets": 100}}]}
    body.update(overrides)
    return body


def model_config_body(model_type="retrieval", **overrides) -> dict:
    body = {"name": f"mdl-{model_type}-001", "model_type": model_type, "query_tower": [64, 32],
            "candidate_tower": [64, 32], "optimizer": "adagrad"}
    body.update(overrides)
    return body


def seed_catalog(repo, model_type="retrieval", recall=0.5, rmse=None, member=None) -> dict:
    """Create a dataset, feature config, model config and one experiment (as `member`, a
    (caller, teams) pair; by default the demo team's admin); return their ids."""
    from shared.services import catalog_entries

    member = member or demo_member()
    dataset = catalog_entries.create(repo, "datasets", dataset_body(), *member)
    features = catalog_entries.create(repo, "feature_configs", feature_config_body(), *member)
    model = catalog_entries.create(repo, "model_configs", model_config_body(model_type), *member)
    metrics = {"recall_at_100": recall} if rmse is None else {"test_rmse": rmse}
    experiment = catalog_entries.create(repo, "experiments", {
        "name": f"{model_type} quick test", "model_type": model_type, "dataset_id": dataset["id"],
        "feature_config_id": features["id"], "model_config_id": model["id"],
        "params": {"epochs": 20, "batch_size": 4096, "learning_rate": 0.05, "data_sample_percent": 10},
        "metrics": metrics}, *member)
    return {"dataset": dataset["id"], "features": features["id"], "model": model["id"],
            "experiment": experiment["id"], "experiment_number": experiment["number"]}


def run_body(experiment_id: str, **overrides) -> dict:
    body = {"name": "product-recommender-v3", "base_experiment_id": experiment_id,
            "training_params": {"epochs": 5}}
    body.update(overrides)
    return body


def post_catalog(post, experiment_name: str, params: dict, metrics: dict) -> str:
    """Create a dataset, feature config, model config and one retrieval experiment through the HTTP
    API (`post(path, body)` returns a response); returns the experiment's id."""
    dataset = post("/api/datasets", dataset_body()).json()["item"]
    features = post("/api/feature-configs", feature_config_body()).json()["item"]
    model = post("/api/model-configs", model_config_body()).json()["item"]
    return post("/api/experiments", {
        "name": experiment_name, "model_type": "retrieval", "dataset_id": dataset["id"],
        "feature_config_id": features["id"], "model_config_id": model["id"],
        "params": params, "metrics": metrics}).json()["item"]["id"]


def estimated_cost(total: float, currency: str = "USD", **overrides) -> dict:
    """A run's `estimated_cost` in the shape shared/domain/cost.estimate writes (an attempt-1 run, direct
    runner, no stages priced), with `total` as its only cost."""
    cost = {"currency": currency, "total": total, "attempt_total": total, "earlier_attempts_total": 0.0,
            "pipeline_run_fee": 0.0, "region": "us-central1", "region_priced": True, "attempt": 1, "spot": True,
            "data_runner": "direct", "stages": [], "unpriced": [], "partial": False, "prices_as_of": "2026-12-04",
            "upper_bound": False}
    cost.update(overrides)
    return cost
