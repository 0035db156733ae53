"""Valid request bodies for tests."""
from __future__ import annotations


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


def seed_catalog(repo, model_type="retrieval", recall=0.5, rmse=None) -> dict:
    """Create a dataset, feature config, model config and one experiment; return their ids."""
    from shared.services import catalog_entries

    dataset = catalog_entries.create(repo, "datasets", dataset_body(), "dev@example.com")
    features = catalog_entries.create(repo, "feature_configs", feature_config_body(), "dev@example.com")
    model = catalog_entries.create(repo, "model_configs", model_config_body(model_type), "dev@example.com")
    metrics = {"recall_at_100": recall} if rmse is None else {"test_rmse": rmse}
    experiment = catalog_entries.create(repo, "experiments", {
        "name": f"{model_type} quick test", "model_type": model_type, "dataset_id": dataset["id"],
        "feature_config_id": features["id"], "model_config_id": model["id"],
        "params": {"epochs": 20, "batch_size": 4096, "learning_rate": 0.05, "data_sample_percent": 10},
        "metrics": metrics}, "dev@example.com")
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
