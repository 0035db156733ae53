"""Deterministic synthetic B2B transactions with planted preferences, and a matching demo catalog.

Who buys what is not random: every customer has a handful of regular products (re-ordered over the
months) drawn mostly from the categories its segment prefers, and quantities depend on how much the
segment likes the category. A model that learns customers and segments beats "recommend the most
popular products" by a wide margin; the popularity baseline still gets something, since products
also have an overall popularity.

    python -m pipeline_compiler.demo_data --rows 50000 --out .local/demo/transactions.csv
"""
from __future__ import annotations

import argparse
import csv
import os
from typing import Any, Optional

import numpy as np

SEGMENTS = ["retail", "horeca", "wholesale", "office", "healthcare"]
CITIES = ["warsaw", "krakow", "gdansk", "wroclaw", "poznan", "lodz", "katowice", "lublin", "szczecin", "bialystok"]
CATEGORIES = [
    "beverages", "dairy", "bakery", "cleaning", "paper", "office_supplies",
    "medical", "frozen", "snacks", "packaging", "coffee", "fruit",
]
START_EPOCH_SECONDS = 1_704_067_200  # 2024-01-01T00:00:00Z
COLUMNS = ["customer_id", "segment", "city", "product_id", "category", "subcategory", "price", "timestamp", "quantity"]


def generate_transactions(
    rows: int = 50_000,
    customers: int = 2_000,
    products: int = 2_000,
    months: int = 6,
    seed: int = 7,
) -> dict[str, np.ndarray]:
    """Column name -> array of `rows` transactions, sorted by time. Same arguments, same data."""
    rng = np.random.default_rng(seed)

    customer_segment = rng.integers(0, len(SEGMENTS), customers)
    customer_city = rng.integers(0, len(CITIES), customers)
    # Each segment strongly prefers three categories.
    segment_categories = np.stack([rng.choice(len(CATEGORIES), 3, replace=False) for _ in SEGMENTS])

    product_category = rng.integers(0, len(CATEGORIES), products)
    product_subcategory = rng.integers(0, 4, products)
    category_base_price = rng.uniform(2.0, 60.0, len(CATEGORIES))
    product_price = np.round(category_base_price[product_category] * rng.lognormal(0.0, 0.35, products), 2)
    # Mild global popularity (Zipf-like), so most-popular is a real but weak baseline.
    popularity = 1.0 / np.arange(1, products + 1) ** 0.3
    popularity = popularity[rng.permutation(products)]
    popularity /= popularity.sum()

    products_by_category = [np.flatnonzero(product_category == c) for c in range(len(CATEGORIES))]

    def preferred_pool(segment: int) -> np.ndarray:
        return np.concatenate([products_by_category[c] for c in segment_categories[segment]])

    # Every customer's regular products: 6 of 8 from its segment's categories.
    regulars = np.empty((customers, 8), dtype=np.int64)
    for customer in range(customers):
        pool = preferred_pool(customer_segment[customer])
        weights = popularity[pool] / popularity[pool].sum()
        regulars[customer, :6] = rng.choice(pool, 6, replace=False, p=weights)
        regulars[customer, 6:] = rng.choice(products, 2, replace=False, p=popularity)

    activity = rng.lognormal(0.0, 0.8, customers)
    activity /= activity.sum()
    buyer = rng.choice(customers, rows, p=activity)

    choice = rng.random(rows)
    product = np.empty(rows, dtype=np.int64)
    regular_rows = choice < 0.75
    product[regular_rows] = regulars[buyer[regular_rows], rng.integers(0, 8, regular_rows.sum())]
    segment_rows = (choice >= 0.75) & (choice < 0.95)
    for segment in range(len(SEGMENTS)):
        rows_here = segment_rows & (customer_segment[buyer] == segment)
        pool = preferred_pool(segment)
        weights = popularity[pool] / popularity[pool].sum()
        product[rows_here] = rng.choice(pool, rows_here.sum(), p=weights)
    popular_rows = choice >= 0.95
    product[popular_rows] = rng.choice(products, popular_rows.sum(), p=popularity)

    # Business hours on weekdays, spread over `months` months.
    day = rng.integers(0, months * 30, rows)
    day = day + np.where((day + 0) % 7 >= 5, -2, 0)  # 2024-01-01 is a Monday: move weekends to Thu/Fri
    day = np.clip(day, 0, None)
    hour = rng.integers(7, 18, rows)
    second = rng.integers(0, 3600, rows)
    timestamp = START_EPOCH_SECONDS + day * 86_400 + hour * 3_600 + second

    liked = np.any(segment_categories[customer_segment[buyer]] == product_category[product][:, None], axis=1)
    segment_scale = np.array([1.0, 1.5, 4.0, 0.8, 1.2])[customer_segment[buyer]]
    mean_quantity = segment_scale * np.where(liked, 6.0, 2.0)
    quantity = np.maximum(1, rng.poisson(mean_quantity)).astype(np.int64)

    order = np.argsort(timestamp, kind="stable")
    data = {
        "customer_id": np.array([f"C{c:05d}" for c in buyer]),
        "segment": np.array(SEGMENTS)[customer_segment[buyer]],
        "city": np.array(CITIES)[customer_city[buyer]],
        "product_id": np.array([f"P{p:05d}" for p in product]),
        "category": np.array(CATEGORIES)[product_category[product]],
        "subcategory": np.array([f"{CATEGORIES[c]}_{s}" for c, s in zip(product_category[product], product_subcategory[product])]),
        "price": product_price[product],
        "timestamp": timestamp.astype(np.int64),
        "quantity": quantity,
    }
    return {name: values[order] for name, values in data.items()}


def write_csv(path: str, rows: int = 50_000, **sizes: Any) -> str:
    """Write the demo transactions to `path` (parent directories created); returns the path."""
    data = generate_transactions(rows=rows, **sizes)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        # Plain Python values (tolist) in chunks: the same text as numpy scalars, fast enough for 5M rows.
        for start in range(0, len(data["timestamp"]), 100_000):
            writer.writerows(zip(*(data[c][start:start + 100_000].tolist() for c in COLUMNS)))
    return path


def demo_catalog(data_uri: str, model_type: str = "retrieval", rows: Optional[int] = None) -> dict[str, dict]:
    """Dataset, FeatureConfig and ModelConfig dicts (valid against shared/domain/catalog.py) for the demo data."""
    dataset = {
        "name": "demo-b2b-transactions",
        "description": "Synthetic B2B transactions with planted segment and customer preferences",
        "source": {"kind": "files", "uri": data_uri, "format": "csv"},
        "columns": {"user_id": "customer_id", "item_id": "product_id", "timestamp": "timestamp", "quantity": "quantity"},
        "features": ["segment", "city", "category", "subcategory", "price"],
        "split_strategy": "strict_time",
        "sample_percent": 100,
        "stats": {"rows": rows} if rows else {},
    }
    feature_config = {
        "name": "demo-buyer-product-features",
        "features": [
            {"name": "customer_id", "column": "customer_id", "side": "query",
             "transform": {"type": "vocabulary", "embedding_dim": 32}},
            {"name": "segment", "column": "segment", "side": "query",
             "transform": {"type": "vocabulary", "embedding_dim": 8}},
            {"name": "city", "column": "city", "side": "query", "transform": {"type": "hashing", "num_buckets": 64, "embedding_dim": 4}},
            {"name": "segment_x_city", "side": "query",
             "transform": {"type": "cross", "columns": ["segment", "city"], "hash_buckets": 200, "embedding_dim": 4}},
            {"name": "order_time", "column": "timestamp", "side": "query",
             "transform": {"type": "cyclical", "components": ["hour_of_day", "day_of_week", "month"]}},
            {"name": "product_id", "column": "product_id", "side": "candidate",
             "transform": {"type": "vocabulary", "embedding_dim": 32}},
            {"name": "category", "column": "category", "side": "candidate",
             "transform": {"type": "vocabulary", "embedding_dim": 8}},
            {"name": "subcategory", "column": "subcategory", "side": "candidate",
             "transform": {"type": "vocabulary", "embedding_dim": 8}},
            {"name": "price", "column": "price", "side": "candidate", "transform": {"type": "normalize", "log1p": True}},
            {"name": "price_bucket", "column": "price", "side": "candidate",
             "transform": {"type": "bucketize", "num_buckets": 8, "embedding_dim": 4}},
        ],
    }
    model_config = {
        "name": f"demo-{model_type}",
        "model_type": model_type,
        "query_tower": [64, 32],
        "candidate_tower": [64, 32],
        "ranking_head": [64, 16],
        "optimizer": "adagrad",
    }
    return {"dataset": dataset, "feature_config": feature_config, "model_config": model_config}


def demo_run_spec(
    data_uri: str,
    artifacts_uri: str,
    pipeline_root: str,
    model_type: str = "retrieval",
    run_id: str = "demo-run",
    training_params: Optional[dict[str, Any]] = None,
    evaluator_config: Optional[dict[str, Any]] = None,
    **overrides: Any,
):
    """A RunSpec over the demo catalog, for tests, the benchmark and local demos."""
    from shared.domain.run_config import RunSpec

    catalog = demo_catalog(data_uri, model_type)
    spec = {
        "run_id": run_id,
        "run_name": f"demo-{model_type}",
        "run_number": 1,
        "model_type": model_type,
        "dataset": catalog["dataset"],
        "feature_config": catalog["feature_config"],
        "model_config": catalog["model_config"],
        "training_params": {"epochs": 5, "batch_size": 512, "learning_rate": 0.1,
                            "lr_schedule": {"type": "constant"}, **(training_params or {})},
        "gpu_config": {"gpu_type": "NVIDIA_L4", "gpu_count": 2, "preemptible": True},
        "evaluator_config": evaluator_config or {"enabled": True},
        "deployment_config": {"action": "register_only"},
        "artifacts_uri": artifacts_uri,
        "pipeline_root": pipeline_root,
        **overrides,
    }
    return RunSpec.model_validate(spec)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=".local/demo/transactions.csv")
    args = parser.parse_args(argv)
    path = write_csv(args.out, rows=args.rows, customers=args.customers, products=args.products,
                     months=args.months, seed=args.seed)
    print(path)


if __name__ == "__main__":
    main()
