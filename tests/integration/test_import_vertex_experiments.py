"""`trainyard catalog import --from vertex` through the official SDK (aiplatform.ExperimentRun.list →
MetadataService over gRPC with TLS, as the SDK always connects) against the MetadataService fake of
tests/protocol_fakes/vertex_metadata.py, into the local stack's API: runs become entries, a re-import
changes nothing, a changed run updates its experiment, an unknown experiment is a clear error.

The CLI runs in a process of its own: gRPC reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (the fake's certificate)
once per process, and there is no Google account here, so that process's Application Default Credentials
are anonymous (the one thing replaced: where credentials come from)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.cloud.aiplatform_v1.services.metadata_service.transports.grpc import MetadataServiceGrpcTransport

from tests.protocol_fakes.grpc_service import FakeServer
from tests.protocol_fakes.vertex_metadata import MetadataServiceFake, serve_tls

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PROJECT, REGION, EXPERIMENT = "recs-prod", "europe-west4", "quick-tests"
FEATURES = json.dumps([
    {"name": "customer_id", "column": "customer_id", "side": "query", "transform": {"type": "vocabulary"}},
    {"name": "product_id", "column": "product_id", "side": "candidate", "transform": {"type": "vocabulary"}}])
# As aiplatform.log_params stores them: numbers are numbers (a protobuf Struct's doubles).
PARAMS = {"dataset_name": "transactions", "bq_table": "recs-prod.shop.transactions", "user_column": "customer_id",
          "item_column": "product_id", "timestamp_column": "ts", "feature_config_name": "fc", "features": FEATURES,
          "model_config_name": "towers", "model_type": "retrieval", "query_tower": "[64, 32]",
          "candidate_tower": "[64, 32]", "epochs": 5, "batch_size": 512, "learning_rate": 0.05}
ANONYMOUS = ("import sys, google.auth, google.auth.credentials as c; "
             "google.auth.default = lambda *a, **k: (c.AnonymousCredentials(), None); "
             "from trainyard_cli.__main__ import run; sys.exit(run(sys.argv[1:]))")


@pytest.fixture
def vertex(tmp_path):
    fake = MetadataServiceFake(PROJECT, REGION, page_size=2)  # three runs: two pages of contexts
    fake.add_experiment(EXPERIMENT)
    server = FakeServer()
    server.add(MetadataServiceGrpcTransport, fake)
    address, certificate = serve_tls(server, tmp_path)
    server.start()
    try:
        yield fake, server, address, certificate
    finally:
        server.stop()


def trainyard(stack, vertex, *argv) -> tuple[int, dict | str, str]:
    _, _, address, certificate = vertex
    env = {**os.environ, "TRAINYARD_API_URL": stack.api, "TRAINYARD_TOKEN": stack.stack.config.dev_token,
           "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(certificate), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", ANONYMOUS, "--json", "catalog", "import", "--from", "vertex",
                           "--project", PROJECT, "--location", REGION, "--api-endpoint", address, *argv],
                          capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    try:
        return done.returncode, json.loads(done.stdout), done.stderr
    except ValueError:
        return done.returncode, done.stdout, done.stderr


def test_vertex_runs_import_once_and_a_changed_run_updates(local_stack, vertex):
    fake, server, _, _ = vertex
    fake.put_run(EXPERIMENT, "run-a", PARAMS, {"recall_at_100": 0.41, "loss": 0.9})
    fake.put_run(EXPERIMENT, "run-b", {**PARAMS, "learning_rate": 0.1}, {"recall_at_100": 0.44})
    fake.put_run(EXPERIMENT, "run-c", PARAMS, {"recall_at_100": 0.2}, state="RUNNING")

    code, first, err = trainyard(local_stack, vertex, "--experiment", EXPERIMENT)
    assert code == 0 and first["counts"] == {"created": 2, "skipped": 1}, (first, err)
    assert len(server.requests("list_contexts")) >= 2  # the SDK paged through the runs
    rows = {row["run_name"]: row for row in first["runs"]}
    made = local_stack.get(f"/api/experiments/{rows['run-a']['experiment_id']}").json()["item"]
    assert made["origin"] == {"source": "vertex", "location": f"projects/{PROJECT}/locations/{REGION}",
                              "experiment": EXPERIMENT, "run_id": f"{EXPERIMENT}-run-a", "run_name": "run-a",
                              "url": "https://console.cloud.google.com/vertex-ai/experiments/locations/"
                                     f"{REGION}/experiments/{EXPERIMENT}/runs/{EXPERIMENT}-run-a?project={PROJECT}"}
    assert made["params"] == {"epochs": 5, "batch_size": 512, "learning_rate": 0.05}
    assert made["metrics"] == {"recall_at_100": 0.41, "loss": 0.9}
    dataset = local_stack.get(f"/api/datasets/{made['dataset_id']}").json()["item"]
    assert dataset["source"] == {"kind": "bigquery", "table": "recs-prod.shop.transactions"}

    code, again, err = trainyard(local_stack, vertex, "--experiment", EXPERIMENT)
    assert again["counts"] == {"unchanged": 2, "skipped": 1}, (again, err)

    fake.put_run(EXPERIMENT, "run-b", {**PARAMS, "learning_rate": 0.1}, {"recall_at_100": 0.47})
    code, changed, err = trainyard(local_stack, vertex, "--experiment", EXPERIMENT)
    assert changed["counts"] == {"updated": 1, "unchanged": 1, "skipped": 1}, (changed, err)
    updated = local_stack.get(f"/api/experiments/{rows['run-b']['experiment_id']}").json()["item"]
    assert updated["metrics"]["recall_at_100"] == 0.47


def test_an_unknown_vertex_experiment_is_a_clear_error(local_stack, vertex):
    code, out, err = trainyard(local_stack, vertex, "--experiment", "no-such")
    assert code == 2 and "no experiment 'no-such'" in err and f"projects/{PROJECT}/locations/{REGION}" in err
