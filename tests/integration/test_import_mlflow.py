"""`trainyard catalog import --from mlflow` against a REAL MLflow tracking server (SQLite backend,
started here from its own venv: scripts/setup_mlflow.sh) and the local stack (the API under
functions-framework on the Firestore emulator): runs become catalog entries; a re-import changes
nothing; a changed run updates its experiment; mapping errors name the run and the field."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import requests

from tests.rehearsal.runtime import free_port
from shared.adapters import mlflow_runs
from trainyard_cli.__main__ import run as cli

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
MLFLOW = REPO / ".local" / "mlflow-venv" / "bin"
EXPERIMENT = "recs-quick-tests"
FEATURES = textwrap.dedent("""\
    features:
      - {name: customer_id, column: customer_id, side: query, transform: {type: vocabulary, embedding_dim: 32}}
      - {name: product_id, column: product_id, side: candidate, transform: {type: vocabulary, embedding_dim: 32}}
    """)
# Logged through mlflow's own client, as a team's training script would. Runs: two finished with one
# model config, one finished with a wider one, one still running, one finished without the feature config.
SEED = textwrap.dedent("""\
    import json, sys, tempfile, os
    import mlflow
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment(sys.argv[2])
    features = sys.argv[3]
    ids = {}
    base = {"dataset_name": "transactions", "data_uri": "/data/transactions.csv", "user_column": "customer_id",
            "item_column": "product_id", "timestamp_column": "ts", "feature_config_name": "fc-1",
            "model_config_name": "towers", "model_type": "retrieval", "query_tower": "[64, 32]",
            "candidate_tower": "[64, 32]", "optimizer": "adagrad", "epochs": 5, "batch_size": 1024,
            "learning_rate": 0.05}
    for name, over, recall, finish, logged in (
            ("lucky-fox", {}, 0.31, True, True), ("brave-owl", {"learning_rate": 0.1}, 0.34, True, True),
            ("wide-elk", {"query_tower": "[128, 32]", "candidate_tower": "[128, 32]"}, 0.36, True, True),
            ("still-going", {}, 0.2, False, True), ("no-features", {}, 0.1, True, False)):
        run = mlflow.start_run(run_name=name)
        mlflow.log_params({**base, **over})
        mlflow.log_metrics({"recall_at_100": recall, "loss": 1.5 - recall})
        if logged:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "feature_config.yaml")
                open(path, "w").write(features)
                mlflow.log_artifact(path, artifact_path="trainyard")
        ids[name] = run.info.run_id
        if finish:
            mlflow.end_run()
        else:
            mlflow.end_run(status="RUNNING")
    print(json.dumps(ids))
    """)


def _mlflow_python(script: str, *argv: str) -> str:
    done = subprocess.run([str(MLFLOW / "python"), "-c", script, *argv], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    if not (MLFLOW / "mlflow").exists():
        pytest.skip("no MLflow venv: run scripts/setup_mlflow.sh (make tools does)")
    home = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(home / "server.log", "w")
    server = subprocess.Popen(
        [str(MLFLOW / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{home}/mlflow.db",
         "--artifacts-destination", str(home / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None, (home / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not start in 120 s"
            time.sleep(0.5)
        runs = json.loads(_mlflow_python(SEED, url, EXPERIMENT, FEATURES).strip().splitlines()[-1])
        yield url, runs
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its workers, started in their own group
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def cli_env(local_stack, monkeypatch):
    monkeypatch.setenv("TRAINYARD_API_URL", local_stack.api)
    monkeypatch.setenv("TRAINYARD_TOKEN", local_stack.stack.config.dev_token)
    return local_stack


def call(*argv) -> tuple[int, dict | str]:
    out = io.StringIO()
    code = cli(list(argv), out=out)
    text = out.getvalue()
    return code, json.loads(text) if argv[0] == "--json" else text


def by_name(report: dict) -> dict:
    return {row["run_name"]: row for row in report["runs"]}


def imported(stack, route: str, url: str) -> list[dict]:
    """The entries of `route` imported from this server (the session's stack holds other tests' too)."""
    items = stack.get(f"/api/{route}", limit=500).json()["items"]
    return [item for item in items if (item.get("origin") or {}).get("location") == url]


def test_runs_import_once_re_import_unchanged_and_a_changed_run_updates(mlflow_server, cli_env, monkeypatch):
    url, runs = mlflow_server
    monkeypatch.setattr(mlflow_runs, "MLFLOW_PAGE", 2)  # five runs: three pages of runs/search
    code, dry = call("--json", "catalog", "import", "--from", "mlflow", url, "--experiment", EXPERIMENT, "--dry-run")
    assert code == 1 and dry["counts"] == {"valid": 3, "skipped": 1, "failed": 1}, dry
    assert imported(cli_env, "experiments", url) == []  # a dry run writes nothing

    code, first = call("--json", "catalog", "import", "--from", "mlflow", url, "--experiment", EXPERIMENT)
    rows = by_name(first)
    assert first["counts"] == {"created": 3, "skipped": 1, "failed": 1}, first
    assert rows["still-going"]["result"] == "skipped (running)"
    assert "artifact 'trainyard/feature_config.yaml'" in rows["no-features"]["error"]
    assert runs["no-features"] in rows["no-features"]["error"]

    experiments = {e["name"]: e for e in imported(cli_env, "experiments", url)}
    assert set(experiments) == {"lucky-fox", "brave-owl", "wide-elk"}
    fox = experiments["lucky-fox"]
    assert fox["metrics"]["recall_at_100"] == pytest.approx(0.31) and fox["params"]["learning_rate"] == 0.05
    assert fox["origin"] == {"source": "mlflow", "location": url, "experiment": EXPERIMENT,
                             "run_id": runs["lucky-fox"], "run_name": "lucky-fox",
                             "url": f"{url}/#/experiments/1/runs/{runs['lucky-fox']}"}
    assert fox["source"]["kind"] == "mlflow" and fox["source"]["run_id"] == runs["lucky-fox"]
    # runs over the same data and features share their entries; the wider towers are a config of their own
    assert len({e["dataset_id"] for e in experiments.values()}) == 1
    assert len({e["feature_config_id"] for e in experiments.values()}) == 1
    assert experiments["brave-owl"]["model_config_id"] == fox["model_config_id"] != \
        experiments["wide-elk"]["model_config_id"]
    assert len(imported(cli_env, "model-configs", url)) == 2 and len(imported(cli_env, "datasets", url)) == 1
    assert cli_env.get(f"/api/feature-configs/{fox['feature_config_id']}").json()["item"]["features"][0][
        "name"] == "customer_id"

    code, again = call("--json", "catalog", "import", "--from", "mlflow", url, "--experiment", EXPERIMENT)
    assert again["counts"] == {"unchanged": 3, "skipped": 1, "failed": 1}, again
    assert {r["experiment_id"] for r in again["runs"] if "experiment_id" in r} == \
        {e["id"] for e in experiments.values()}

    # The team re-evaluated one run: its metric changes at the source, and its entry follows.
    _mlflow_python("import mlflow, sys; mlflow.set_tracking_uri(sys.argv[1]); "
                   "mlflow.MlflowClient().log_metric(sys.argv[2], 'recall_at_100', 0.5)", url, runs["brave-owl"])
    code, changed = call("--json", "catalog", "import", "--from", "mlflow", url, "--experiment", EXPERIMENT)
    assert by_name(changed)["brave-owl"]["result"] == "updated"
    assert changed["counts"] == {"updated": 1, "unchanged": 2, "skipped": 1, "failed": 1}, changed
    owl = cli_env.get(f"/api/experiments/{experiments['brave-owl']['id']}").json()["item"]
    assert owl["metrics"]["recall_at_100"] == 0.5 and owl["number"] == experiments["brave-owl"]["number"]
    assert len(imported(cli_env, "experiments", url)) == 3
    top = cli_env.get("/api/experiments/top-for-training", model_type="retrieval", limit=50).json()["experiments"]
    ranked = [e["id"] for e in top if e["id"] in {x["id"] for x in experiments.values()}]
    assert ranked[0] == owl["id"]  # the updated metric ranks it first among the imported for promotion


def test_mapping_errors_name_the_key_the_run_and_the_field(mlflow_server, cli_env, tmp_path, capsys):
    url, runs = mlflow_server
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("version: 1\ndatasets: {fields: {name: x}}\nfeature_configs: {}\nmodel_configs: {}\n"
                     "experiments: {}\nexperimentz: {}\n")
    code, _ = call("catalog", "import", "--from", "mlflow", url, "--experiment", EXPERIMENT, "--mapping", str(wrong))
    assert code == 2 and "unknown key 'experimentz'" in capsys.readouterr().err

    default = (REPO / "examples/import/mlflow_mapping.yaml").read_text()
    misnamed = tmp_path / "misnamed.yaml"
    misnamed.write_text(default.replace("{param: model_type, default: retrieval}", "{param: kind}")
                        .replace('"{params.dataset_name}"', '"{params.dataset}"'))
    code, report = call("--json", "catalog", "import", "--from", "mlflow", url, "--experiment", EXPERIMENT,
                        "--mapping", str(misnamed), "--dry-run")
    error = by_name(report)["lucky-fox"]["error"]
    assert code == 1 and error.startswith(f"run {runs['lucky-fox']}: ")
    assert "datasets.name: Field required" in error and "model_configs.model_type: Field required" in error

    code, _ = call("catalog", "import", "--from", "mlflow", url, "--experiment", "no-such-experiment")
    assert code == 2 and "no-such-experiment" in capsys.readouterr().err
