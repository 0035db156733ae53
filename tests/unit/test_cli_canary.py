"""`trainyard runs deploy --canary-percent …`, `runs rollback` and `runs endpoint-history` against the
API in process (tests/unit/test_cli_routes.py's `api` fixture)."""
from __future__ import annotations

import json

from tests.unit.test_canary import CANARY_SERVING
from tests.unit.test_cli import stored_run
from tests.unit.test_cli_routes import api, run_cli  # noqa: F401 - the fixture

def test_deploy_with_canary_flags_sends_the_canary(api, capsys):  # noqa: F811
    repo = api["repo"]
    done = stored_run(repo, status="completed", vertex_model_resource_name="projects/p/locations/l/models/7",
                      vertex_model_version="1")
    code, out = run_cli("runs", "deploy", done["id"], "--endpoint-id", "prod", "--canary-percent", "5",
                        "--watch-minutes", "60", "--max-p95-latency-ms", "250")
    assert code == 0, out
    staged = repo.get_run(done["id"])["deployment"]
    assert staged["traffic_split"] == 5 and staged["canary"]["watch_minutes"] == 60
    assert staged["canary"]["max_p95_latency_ms"] == 250 and staged["canary"]["max_error_rate"] == 0.01
    other = stored_run(repo, status="completed", vertex_model_resource_name="projects/p/locations/l/models/7",
                       vertex_model_version="1")
    code, _ = run_cli("runs", "deploy", other["id"], "--endpoint-id", "prod", "--canary-percent", "5")
    assert code == 1 and "canary.watch_minutes" in capsys.readouterr().err  # the API names the missing field


def test_endpoint_history_and_rollback(api):  # noqa: F811
    repo = api["repo"]
    serving = stored_run(repo, status="completed", **CANARY_SERVING)
    code, out = run_cli("runs", "endpoint-history", serving["id"])
    assert code == 0 and "canary watching until" in out and "120 requests, 1 errors, p95 41 ms" in out
    assert "canary_started" in out and "old 100% → old 90%, new 10%" in out
    code, out = run_cli("runs", "rollback", serving["id"], "--reason", "bad results in QA")
    assert code == 0 and "rolling back on local/endpoints/prod" in out
    assert repo.get_run(serving["id"])["deployment"]["rollback"]["reason"] == "bad results in QA"
    code, out = run_cli("--json", "runs", "endpoint-history", serving["id"])
    assert code == 0 and json.loads(out)["deployment"]["status"] == "rolling_back"
