"""The trainyard CLI against the API (Flask test client behind a requests-shaped adapter)."""
from __future__ import annotations

import io
import json

import pytest

import trainyard_cli.__main__ as cli
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.http.app import Dependencies, create_app
from shared.services.ports import Effects
from tests.builders import dataset_body, demo_member, local_settings, seed_catalog
from tests.fakes import FakePublisher
from trainyard_cli.client import ApiClient, ApiError
from trainyard_cli.watch import exit_code, progress_line, watch


class FlaskSession:
    """requests.Session's request() over a Flask test client."""

    def __init__(self, app):
        self.client = app.test_client()
        self.headers = {}

    def request(self, method, url, json=None, timeout=None, params=None):
        path = url.split("://", 1)[1].split("/", 1)[1]
        response = self.client.open("/" + path, method=method, json=json, query_string=params or {},
                                    headers=self.headers)

        class Response:
            status_code = response.status_code
            text = response.get_data(as_text=True)

            def json(self_inner):
                return response.get_json()

        return Response()


@pytest.fixture
def api(monkeypatch, repo, publisher, store, ids):
    settings = local_settings("cli@example.com", "t")
    app = create_app(Dependencies(repo=repo, publisher=publisher, store=store, settings=settings))

    def client_factory(url=None, token=None, timeout_s=30):
        client = ApiClient.__new__(ApiClient)
        client.url, client.timeout_s = "http://test", timeout_s
        client.session = FlaskSession(app)
        client.session.headers["Authorization"] = "Bearer t"
        return client

    monkeypatch.setattr(cli, "ApiClient", client_factory)
    return repo, ids


def run_cli(*argv):
    out = io.StringIO()
    code = cli.run(list(argv), out=out)
    return code, out.getvalue()


def test_create_from_best_experiment_and_list_as_table_and_json(api):
    repo, ids = api
    code, out = run_cli("runs", "create", "--name", "cli-model", "--best", "retrieval", "--epochs", "7",
                        "--threshold", "0.3")
    assert code == 0 and "created tr-" in out and "pending" in out
    run = next(iter(repo.runs.values()))
    assert run["base_experiment"]["id"] == ids["experiment"] and run["training_params"]["epochs"] == 7
    assert run["evaluator_config"]["blessing_threshold"]["min_value"] == 0.3
    code, out = run_cli("runs", "list")
    assert code == 0 and out.splitlines()[0].split()[:4] == ["ID", "NAME", "TEAM", "#"] and "cli-model" in out
    assert " demo " in out.splitlines()[1]  # the team of each run
    code, out = run_cli("--json", "runs", "list", "--status", "pending")
    assert json.loads(out)["training_runs"][0]["name"] == "cli-model"


def test_team_is_sent_by_every_create_command_and_a_wrong_one_is_named(api, tmp_path, capsys):
    repo, ids = api
    code, out = run_cli("runs", "create", "--name", "cli-team", "--experiment", ids["experiment"], "--team", "demo")
    assert code == 0 and next(iter(repo.runs.values()))["team"] == "demo"
    code, out = run_cli("runs", "create", "--name", "cli-team", "--experiment", ids["experiment"], "--team", "ads")
    assert code == 1 and "team: 'ads' is not a team of this deployment" in capsys.readouterr().err
    item = tmp_path / "dataset.json"
    item.write_text(json.dumps(dataset_body()))
    code, out = run_cli("catalog", "create", "datasets", "-f", str(item), "--team", "demo")
    assert code == 0 and "created" in out
    code, out = run_cli("catalog", "create", "datasets", "-f", str(item), "--team", "nope")
    assert code == 1 and "team: 'nope' is not a team" in capsys.readouterr().err


def test_a_draft_is_created_then_submitted(api):
    repo, _ = api
    code, out = run_cli("runs", "create", "--name", "cli-draft", "--best", "retrieval", "--draft")
    assert code == 0 and "draft" in out
    run_id = next(iter(repo.runs))
    assert repo.runs[run_id]["status"] == "draft"
    code, out = run_cli("runs", "submit", run_id)
    assert code == 0 and repo.runs[run_id]["status"] == "pending"


def test_api_errors_are_reported_with_the_field(api, capsys):
    code, _ = run_cli("runs", "create", "--name", "Bad Name", "--best", "retrieval")
    assert code == 1
    assert "name:" in capsys.readouterr().err


def test_experiments_top_and_search(api):
    repo, ids = api
    code, out = run_cli("experiments", "top", "--model-type", "retrieval")
    assert code == 0 and "retrieval quick test" in out
    code, out = run_cli("--json", "experiments", "search", f"Exp #{ids['experiment_number']}")
    assert json.loads(out)["experiments"][0]["id"] == ids["experiment"]


def test_watch_follows_to_the_end_and_returns_the_status_code():
    states = iter([
        {"id": "r", "status": "running", "current_stage": "Examples", "progress_percent": 5},
        {"id": "r", "status": "running", "current_stage": "Train", "progress_percent": 40, "current_epoch": 2,
         "total_epochs": 10, "live_metrics": {"loss": 0.5}},
        {"id": "r", "status": "completed", "current_stage": None, "progress_percent": 100},
    ])
    out = io.StringIO()
    final = watch(lambda: next(states), interval_s=0, out=out, interactive=False)
    assert final["status"] == "completed"
    text = out.getvalue()
    assert "stage Examples" in text and "epoch 2/10" in text and "loss 0.5000" in text


def test_progress_line_draws_the_bar():
    line = progress_line({"status": "running", "progress_percent": 50, "current_stage": "Train",
                          "current_epoch": 3, "total_epochs": 6, "live_metrics": {"recall_at_100": 0.41}}, width=10)
    assert line.startswith("[#####-----]  50%") and "epoch 3/6" in line and "recall_at_100 0.4100" in line


def test_api_error_message_lists_fields():
    error = ApiError(400, {"errors": [{"field": "name", "message": "bad"}]})
    assert str(error) == "HTTP 400: name: bad"


# ----------------------------------------------------------------------------- deploy after training

REGISTERED = {"status": "completed", "progress_percent": 100, "vertex_model_resource_name": "projects/p/locations/l/models/7",
              "vertex_model_version": "1", "deployment_config": {"action": "deploy_new", "endpoint_name": "recs-prod"}}
DEPLOYING = {"id": "d1", "status": "deploying", "automatic": True, "endpoint_name": "recs-prod", "endpoint_id": None}
DEPLOYED = {**DEPLOYING, "status": "deployed", "endpoint_resource_name": "local/endpoints/r",
            "predict_url": "http://127.0.0.1:8090/v1/endpoints/r:predict"}


def stored_run(repo, **fields) -> dict:
    from shared.services import intake
    from tests.builders import run_body

    experiment = next(iter(repo.catalog["experiments"]))
    run = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                            run_body(experiment), *demo_member("cli@example.com"))
    return repo.mutate_run(run["id"], lambda d: {**d, **fields})


def test_get_prints_the_deployment_status_endpoint_and_predict_url(api):
    repo, _ = api
    run = stored_run(repo, **REGISTERED, deployment=DEPLOYED, deployment_status="deployed")
    code, out = run_cli("runs", "get", run["id"])
    assert code == 0 and out.startswith(f"{run['id']}  product-recommender-v3 #1  completed")
    assert "model: projects/p/locations/l/models/7 (version 1)" in out
    assert "deployment: deployed (automatic) to local/endpoints/r" in out
    assert "predict URL: http://127.0.0.1:8090/v1/endpoints/r:predict" in out
    code, out = run_cli("--json", "runs", "get", run["id"])
    assert json.loads(out)["deployment"]["automatic"] is True
    failed = stored_run(repo, **REGISTERED, deployment={**DEPLOYING, "status": "failed", "error": "quota exceeded"})
    assert "deployment: failed (automatic): quota exceeded" in run_cli("runs", "get", failed["id"])[1]
    planned = stored_run(repo, status="running", deployment_config=REGISTERED["deployment_config"])
    assert "deployment: deploy_new to recs-prod after training" in run_cli("runs", "get", planned["id"])[1]


def test_get_prints_the_gate_with_its_lift_over_most_popular_and_over_ease(api):
    repo, _ = api
    gate = {"threshold_metric": "recall_at_100", "actual_value": 0.4, "threshold_value": 0.3, "blessed": True,
            "passed": True, "baseline_value": 0.3, "lift_percent": 33.3, "required_lift_percent": None,
            "ease_value": 0.412, "lift_over_ease_percent": -2.9, "required_lift_over_ease_percent": -10.0}
    run = stored_run(repo, status="completed", evaluation_results=gate)
    out = run_cli("runs", "get", run["id"])[1]
    assert ("gate: recall_at_100 0.4 vs threshold 0.3; +33.3% over most-popular; "
            "-2.9% over EASE (required ≥ -10%): blessed") in out


def test_get_prints_the_champion_and_why_the_run_was_not_blessed(api):
    repo, _ = api
    gate = {"threshold_metric": "recall_at_100", "actual_value": 0.41, "threshold_value": 0.3, "blessed": False,
            "passed": False, "champion_value": 0.52, "champion_version": "3", "champion_source": "endpoint 987",
            "champion_tolerance": 0.01, "champion_required_value": 0.5148,
            "reason": "not blessed: recall_at_100 0.41 < champion 0.52 × 0.99"}
    run = stored_run(repo, status="not_blessed", evaluation_results=gate)
    out = run_cli("runs", "get", run["id"])[1]
    assert ("gate: recall_at_100 0.41 vs threshold 0.3; champion v3 (endpoint 987) 0.52, required ≥ 0.5148 (× 0.99): "
            "not blessed: recall_at_100 0.41 < champion 0.52 × 0.99") in out


def test_watch_follows_the_automatic_deploy_to_its_end():
    states = iter([
        {"id": "r", "status": "running", "current_stage": "Push", "progress_percent": 95},
        {"id": "r", **REGISTERED},  # completed; the deploy is requested a moment later
        {"id": "r", **REGISTERED, "deployment": DEPLOYING},
        {"id": "r", **REGISTERED, "deployment": DEPLOYING},
        {"id": "r", **REGISTERED, "deployment": DEPLOYED},
        {"id": "r", **REGISTERED, "deployment": DEPLOYED},
    ])
    out = io.StringIO()
    final = watch(lambda: next(states), interval_s=0, out=out, interactive=False)
    assert final["deployment"]["status"] == "deployed" and exit_code(final) == 0
    text = out.getvalue()
    assert text.count("deployment: deploying (automatic) to a new endpoint 'recs-prod'") == 1
    assert "deployment: deployed (automatic) to local/endpoints/r" in text and "predict URL: http://" in text


def test_watch_ends_non_zero_when_the_deploy_fails(api):
    repo, _ = api
    run = stored_run(repo, **REGISTERED, deployment={**DEPLOYING, "status": "failed", "error": "no such endpoint"})
    code, out = run_cli("runs", "watch", run["id"])
    assert code == 3 and "deployment: failed (automatic): no such endpoint" in out
    assert exit_code({"status": "completed", "deployment": {"status": "deployed"}}) == 0
    assert exit_code({"status": "not_blessed"}) == 2 and exit_code({"status": "failed"}) == 1


def test_watch_does_not_wait_forever_for_a_deploy_that_is_never_requested():
    out = io.StringIO()
    final = watch(lambda: {"id": "r", **REGISTERED}, interval_s=0, out=out, interactive=False, deploy_grace_s=0)
    assert final["status"] == "completed" and "was not requested" in out.getvalue() and exit_code(final) == 0
    register_only = {**REGISTERED, "deployment_config": {"action": "register_only"}}
    assert watch(lambda: register_only, interval_s=0, out=io.StringIO(), interactive=False)["status"] == "completed"


def test_a_threshold_given_with_an_experiment_gates_that_experiments_kind(api):
    """--threshold bounds the primary metric of the base experiment's kind, in its direction, as the
    vocabulary states them (a ranking experiment: a test_rmse ceiling)."""
    repo, _ = api
    ranking = seed_catalog(repo, "ranking", rmse=0.9)
    code, out = run_cli("runs", "create", "--name", "cli-ranking", "--experiment", ranking["experiment"],
                        "--threshold", "0.95")
    assert code == 0, out
    run = next(r for r in repo.runs.values() if r["name"] == "cli-ranking")
    assert run["evaluator_config"]["blessing_threshold"] == {"metric": "test_rmse", "min_value": None, "max_value": 0.95}


def test_the_vocabulary_command_shows_the_served_training_defaults(api):
    code, out = run_cli("vocabulary")
    line = next(l for l in out.splitlines() if l.startswith("training defaults: "))
    assert code == 0 and "epochs 150" in line and "batch_size 8192" in line and '"type": "reduce_on_plateau"' in line


def test_warm_start_from_the_champion_and_what_runs_get_says_it_started_from(api, capsys):
    repo, ids = api
    code, out = run_cli("runs", "create", "--name", "cli-warm", "--experiment", ids["experiment"],
                        "--warm-start", "champion")
    assert code == 0, capsys.readouterr().err
    run_id, run = next(iter(repo.runs.items()))
    assert run["training_params"]["warm_restart"]["source"] == "champion" and run["warm_source"]["source"] == "champion"
    code, _ = run_cli("runs", "create", "--name", "cli-warm", "--experiment", ids["experiment"], "--warm-start", "run:tr-nope")
    assert code == 1 and "warm_restart.run_id: no training run with id 'tr-nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a usage error: argparse says what it takes
        run_cli("runs", "create", "--name", "cli-warm", "--experiment", ids["experiment"], "--warm-start", "run")
    repo.mutate_run(run_id, lambda d: {**d, "warm_start": {
        "status": "loaded", "source": "champion", "source_id": "models/9@3 (registry default)", "tables": 2,
        "rows_kept": 340, "rows_new": 12, "rows_dropped": 1}})
    code, out = run_cli("runs", "get", run_id)
    assert ("warm start: loaded from champion models/9@3 (registry default); 2 embedding table(s): 340 rows kept, "
            "12 new, 1 dropped") in out
