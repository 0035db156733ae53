"""The whole local stack with real TFX: emulators, functions, the local pipeline service.

test_local_stack and test_champion_loop go through one stack (`local_stack`, started once for the package):
bringing a stack up and loading the demo catalog is CPU the suite pays once, and the local pipeline
service runs their runs one at a time, in the order they are created, either way. Each module keeps its
own runs, schedule, model name and endpoint, so neither reads the other's."""
from __future__ import annotations

import json
import os

import pytest

from tests.conftest import skip_without_emulators

SIZES = dict(rows=6_000, customers=150, products=600, months=4)
# A webhook signing secret by name, for the champion loop's signed notifications to a local receiver.
NOTIFY_SECRET_NAME, NOTIFY_SECRET = "e2e-hook", "e2e-signing-secret"


def pytest_collection_modifyitems(config, items):
    skip_without_emulators(items, "tests/e2e/test_local_stack", "e2e")
    skip_without_emulators(items, "tests/e2e/test_champion_loop", "e2e")


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory):
    """A stack on free ports with the demo data and catalog: its client, config, data root and best experiment."""
    from pipeline_compiler.demo_data import write_csv
    from scripts.demo import load_demo_catalog
    from scripts.stack import Stack, StackConfig
    from trainyard_cli.client import ApiClient

    root = tmp_path_factory.mktemp("e2e")
    data = str(root / "data" / "transactions.csv")
    write_csv(data, **SIZES)
    config = StackConfig.ephemeral(root / "stack", extra_env={
        "TRAINYARD_NOTIFY_SECRETS": json.dumps({NOTIFY_SECRET_NAME: NOTIFY_SECRET}),
        "TRAINYARD_NOTIFY_LOCAL_RECEIVERS": "true",  # the receiver listens on loopback over http
        "TRAINYARD_NOTIFY_SIGNING_SECRETS": json.dumps({NOTIFY_SECRET_NAME: ["http://127.0.0.1/hooks/"]}),
    })
    stack = Stack(config)
    stack.up(timeout_s=180)
    try:
        os.environ.update(config.emulator_env())
        client = ApiClient(url=config.api_url, token=config.dev_token)
        ids = load_demo_catalog(client, data)
        best = client.get("/api/experiments/top-for-training", model_type="retrieval", limit=1)["experiments"][0]
        yield {"client": client, "config": config, "stack": stack, "root": root, "ids": ids, "experiment": best["id"]}
    finally:
        stack.down()
