"""The CLI covers every API route (checked against the OpenAPI document), in the API's vocabulary,
with human output (4 significant digits, relative times, colour on a TTY only), --json anywhere,
exit codes 0/1/2, `runs logs -f` following to the end, and a completion script."""
from __future__ import annotations

import io
import json
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import trainyard_cli.__main__ as cli
from shared.adapters.serving.local import LocalEndpoints
from shared.http.app import Dependencies, create_app
from shared.http.openapi import document
from shared.adapters.run_data_sources import LocalGpuQuota, RunDataSources
from tests.builders import dataset_body, local_settings
from shared.adapters.dead_letters import DeadLetters
from tests.fakes import FakePubSub
from tests.unit.test_cli import FlaskSession, stored_run
from tests.unit.test_canary import CANARY_SERVING
from tests.unit.test_schedules import NoJobs
from trainyard_cli import format as fmt
from trainyard_cli import run_commands
from trainyard_cli.client import ApiClient

ROOT = Path(__file__).resolve().parents[2]


class GrowingLogs:
    """A log source like the local pipeline service's: an offset cursor; `grow` lines appear per read."""

    def __init__(self):
        self.lines: list[str] = []
        self.on_read = None
        self.resumes = False  # as the stage logs readers: the cursor comes back at the end too (a follow_token)
        self.asked: list[tuple] = []

    def read(self, run, attempt, stage, severity, page_size, cursor):
        self.asked.append((stage, severity, cursor))
        if self.on_read:
            self.on_read()
        offset = (cursor or {}).get("o", 0)
        page = self.lines[offset:offset + page_size]
        more = offset + len(page) < len(self.lines)
        return {"entries": [{"timestamp": None, "severity": "ERROR" if "Traceback" in line else "INFO",
                             "stage": "Train", "task": "Trainer", "message": line} for line in page],
                "source": "fake", "more": more,
                "next_cursor": {"o": offset + len(page)} if more or self.resumes else None}


@pytest.fixture
def api(monkeypatch, tmp_path, repo, publisher, store, ids):
    logs = GrowingLogs()
    settings = local_settings("cli@example.com", "t", admins=frozenset({"cli@example.com"}), local_dir=str(tmp_path),
                              notify_signing_secrets={"team-hook": ("https://hooks.example.com/",)})
    pubsub = FakePubSub()
    app = create_app(Dependencies(repo=repo, publisher=publisher, store=store, settings=settings,
                                  scheduler_jobs=NoJobs(), run_data=RunDataSources(logs, LocalGpuQuota()),
                                  dead_letters=DeadLetters("p", pubsub, pubsub),
                                  endpoints=LocalEndpoints(str(tmp_path / "endpoints"), "http://127.0.0.1:1")))
    calls: list[tuple[str, str]] = []

    def client_factory(url=None, token=None, timeout_s=30):
        client = ApiClient.__new__(ApiClient)
        client.url, client.timeout_s = "http://test", timeout_s
        client.session = FlaskSession(app)
        client.session.headers["Authorization"] = "Bearer t"
        original = client.call

        def recording_call(method, path, body=None, **params):
            calls.append((method, path))
            return original(method, path, body, **params)

        client.call = recording_call
        return client

    monkeypatch.setattr(cli, "ApiClient", client_factory)
    monkeypatch.setattr(run_commands, "LOG_POLL_S", 0)
    return {"repo": repo, "ids": ids, "logs": logs, "calls": calls, "store": store}


def run_cli(*argv):
    out = io.StringIO()
    code = cli.run(list(argv), out=out)
    return code, out.getvalue()


def write(tmp_path, name, text) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


SCHEDULE_YAML = """
name: nightly retrain
schedule_type: daily
time_of_day: "02:00"
timezone: Europe/Kyiv
auto_pause_after_failures: 2
run_template:
  name: nightly-recs
  base_experiment_id: {experiment}
"""


def _run_with_card(store, repo, base: str) -> dict:
    """A registered run whose model card was written when it was registered."""
    from shared.contract import results
    from shared.services import model_cards
    from tests.unit.pipeline_compiler.tiny_data import tiny_spec
    from tests.unit.scenario import T0

    run = stored_run(repo, status="completed", vertex_model_resource_name="projects/p/locations/l/models/8",
                     vertex_model_version="2", gcs_artifacts_path=base)
    entry = results.RegistryEntry(model_display_name=run["name"], model_resource_name="projects/p/locations/l/models/8",
                                  model_version_id="2", serving_model_uri=f"{base}/model/saved_model",
                                  registered_at=T0)
    model_cards.write_card(store, tiny_spec("/tmp/unused", run_id=run["id"]), entry, artifacts_uri=run["gcs_artifacts_path"])
    return run


def test_models_card_prints_the_card_and_where_it_is_stored(api, tmp_path):
    run = _run_with_card(api["store"], api["repo"], str(tmp_path / "carded"))
    code, out = run_cli("models", "card", run["id"])
    assert code == 0 and out.startswith(f"# Model card: {run['name']}, version 2") and "## Lineage" in out
    assert out.rstrip().endswith(f"(stored at {tmp_path}/carded/model_card/model_card.md)")
    code, out = run_cli("--json", "models", "card", run["id"])
    assert code == 0 and json.loads(out)["card"]["model_version"] == "2"


def _endpoint_with_two_models(repo, tmp_path) -> str:
    """A local endpoint (in the API's endpoints directory) serving a run's model m2, with m1 beside it at 0 %."""
    from shared.adapters.serving.local import write_endpoint

    write_endpoint(str(tmp_path / "endpoints"), {"endpoint_id": "shop", "display_name": "shop", "traffic_split": {
        "m1": 0, "m2": 100}, "deployed_models": [{"id": "m1", "model": "/r/a", "model_version_id": "1"},
                                                 {"id": "m2", "model": "/r/b", "model_version_id": "2"}]})
    stored_run(repo, status="completed", deployment_status="deployed", is_deployed=True, deployment={
        "id": "d-shop", "status": "deployed", "endpoint_resource_name": "local/endpoints/shop",
        "deployed_model_id": "m2"})
    return "shop"


def test_every_api_route_has_a_command(api, tmp_path, monkeypatch):
    """Each (method, route) of the OpenAPI document is called by some CLI command: a new route without
    a command fails here."""
    repo, ids = api["repo"], api["ids"]
    failed = stored_run(repo, status="failed", error_stage="Train", error_message="CUDA out of memory")
    done = stored_run(repo, status="completed", vertex_model_resource_name="projects/p/locations/l/models/7",
                      vertex_model_version="1")
    gated = stored_run(repo, status="not_blessed")
    batched = stored_run(repo, status="completed", vertex_model_resource_name="projects/p/locations/l/models/7",
                         vertex_model_version="1", gcs_artifacts_path=str(tmp_path / "batched"))
    carded = _run_with_card(api["store"], repo, str(tmp_path / "carded"))
    serving = stored_run(repo, status="completed", **CANARY_SERVING)
    shop = _endpoint_with_two_models(repo, tmp_path)
    pending = stored_run(repo)
    gone = stored_run(repo, status="cancelled")
    waiting, unwanted = stored_run(repo, status="awaiting_approval"), stored_run(repo, status="awaiting_approval")
    schedule_file = write(tmp_path, "s.yaml", SCHEDULE_YAML.format(experiment=ids["experiment"]))
    dataset_file = write(tmp_path, "d.json", json.dumps(dataset_body(name="second dataset")))
    code, out = run_cli("--json", "schedules", "create", "--file", schedule_file)
    assert code == 0, out
    schedule_id = json.loads(out)["schedule"]["id"]
    later = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    code, out = run_cli("--json", "runs", "create", "--name", "later-recs", "--experiment", ids["experiment"],
                        "--body", write(tmp_path, "later.yaml", f"scheduled_at: {later}\n"))
    scheduled_run = json.loads(out)["training_run"]
    assert code == 0 and scheduled_run["status"] == "scheduled"
    scheduled_run = scheduled_run["id"]
    from tests.unit.test_import_mapping import a_logged_run
    from shared.adapters.mlflow_runs import MlflowRuns

    monkeypatch.setattr(MlflowRuns, "runs", lambda self, experiment: iter([a_logged_run()]))
    commands = [
        ("catalog", "import", "--from", "mlflow", "http://mlflow.test:5000", "--experiment", "quick"),
        ("catalog", "import", "--from", "mlflow", "http://localhost:5000", "--experiment", "quick", "--by-api"),
        ("runs", "create", "--name", "cli-a", "--best", "retrieval"), ("runs", "list"), ("runs", "get", failed["id"]),
        ("runs", "submit", pending["id"]), ("runs", "run-now", scheduled_run),
        ("runs", "cancel", pending["id"]), ("runs", "retry", failed["id"], "--gpu-type", "NVIDIA_TESLA_A100"),
        ("runs", "deploy", done["id"], "--endpoint-name", "recs"), ("runs", "push-anyway", gated["id"]),
        ("runs", "rollback", serving["id"]), ("runs", "endpoint-history", serving["id"]),
        ("endpoints", "list"), ("endpoints", "get", shop), ("endpoints", "traffic", shop, "m1=30", "m2=70"),
        ("endpoints", "undeploy", shop, "m1"),
        ("runs", "batch-predict", batched["id"], "--users", write(tmp_path, "users.txt", "c1\nc2\n"), "--k", "5",
         "--gcs-output", str(tmp_path / "batch")),
        ("runs", "logs", done["id"]), ("runs", "history", done["id"]), ("runs", "artifacts", done["id"]),
        ("runs", "errors", failed["id"]), ("models", "card", carded["id"]),
        ("runs", "delete", gone["id"]), ("runs", "list", "--deleted"),
        ("runs", "restore", gone["id"]),
        ("runs", "approve", waiting["id"]), ("runs", "reject", unwanted["id"], "--reason", "too big"),
        ("spend", "demo"),
        ("experiments", "top"), ("experiments", "search", "quick"),
        ("catalog", "create", "datasets", "--file", dataset_file),
        *[("catalog", verb, kind) for verb in ("list",) for kind in cli.catalog_commands.KINDS],
        *[("catalog", "get", kind, ids[key]) for kind, key in (
            ("datasets", "dataset"), ("feature-configs", "features"), ("model-configs", "model"),
            ("experiments", "experiment"))],
        ("schedules", "list"), ("schedules", "get", schedule_id), ("schedules", "pause", schedule_id),
        ("schedules", "resume", schedule_id), ("schedules", "trigger", schedule_id),
        ("schedules", "cancel", schedule_id), ("gpu", "availability", "--gpu-count", "2"),
        ("admin", "reconciler"), ("vocabulary",), ("whoami",), ("admin", "dead-letters", "list", "run-submit"),
        ("admin", "dead-letters", "replay", "run-submit"), ("admin", "audit", "--result", "refused"),
        ("admin", "assign-team", "runs", failed["id"], "demo"),
    ]
    for argv in commands:
        code, out = run_cli(*argv)
        assert code == 0, (argv, out)
    for kind in ("feature-configs", "model-configs", "experiments"):  # create for every kind (a 400 names the field)
        assert run_cli("catalog", "create", kind, "--file", write(tmp_path, "e.yaml", "name: x\n"))[0] == 1
    templates = {(method.upper(), path) for path, item in document()["paths"].items() for method in item
                 if path.startswith("/api/")}
    called = set()
    for method, path in api["calls"]:
        matches = [t for t in templates if t[0] == method
                   and re.match("^" + re.sub(r"\{[^}]+\}", "[^/]+", t[1]) + "$", path)]
        if matches:  # the most specific route: /api/experiments/search, not /api/experiments/{id}
            called.add(min(matches, key=lambda t: t[1].count("{")))
    assert templates - called == set()


def test_help_lists_every_command():
    """`bin/trainyard --help` names every command the parser has (the list is generated from it)."""
    table: dict[str, list[str]] = {}
    cli.completion._tree(cli.build_parser(), "", table)
    leaves = {path for path in table if path and not any(k.startswith(path + " ") for k in table)}
    assert {"runs retry", "runs deploy", "runs push-anyway", "runs logs", "runs history", "runs artifacts",
            "runs errors", "schedules create", "schedules list", "schedules get", "schedules pause",
            "schedules resume", "schedules trigger", "schedules cancel", "catalog create", "catalog list",
            "catalog get", "catalog import", "gpu availability", "completion"} <= leaves
    text = subprocess.run([str(ROOT / "bin" / "trainyard"), "--help"], capture_output=True, text=True,
                          check=True).stdout
    for leaf in leaves:
        assert f"trainyard {leaf} " in text, leaf
    assert "Exit codes: 0 ok; 1 the API refused" in text
    for group in ("runs", "schedules", "catalog", "gpu"):
        sub = subprocess.run([str(ROOT / "bin" / "trainyard"), group, "--help"], capture_output=True, text=True)
        assert sub.returncode == 0 and "COMMAND" in sub.stdout


def test_human_output_rounds_metrics_shows_relative_times_and_colours_only_a_tty(api):
    repo = api["repo"]
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=3, minutes=5)
    stored_run(repo, status="completed", recall_at_100=0.19012976799056233, duration_seconds=3725,
               created_at=an_hour_ago)
    code, out = run_cli("runs", "list")
    assert code == 0 and "0.1901 " in out and "0.19012976" not in out
    assert "3h ago" in out and "1h 2m" in out and "\033[" not in out  # a StringIO is not a TTY
    code, out = run_cli("--json", "runs", "list")
    assert json.loads(out)["training_runs"][0]["recall_at_100"] == 0.19012976799056233
    assert fmt.state("failed", True) == "\033[31mfailed\033[0m" and fmt.state("failed", False) == "failed"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    assert cli.run(["runs", "list"], out=tty) == 0 and "\033[32mcompleted\033[0m" in tty.getvalue()


def test_format_helpers():
    now = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
    assert fmt.metric(0.19012976799056233) == "0.1901" and fmt.metric(1234.5678) == "1235" and fmt.metric(3) == "3"
    assert fmt.relative("2026-12-04T11:58:00.123456Z", now) == "2m ago"
    assert fmt.relative("2026-12-06T12:00:00Z", now) == "in 2d" and fmt.relative("2026-12-04T12:00:01Z", now) == "now"
    assert fmt.duration(59) == "59s" and fmt.duration(7260) == "2h 1m" and fmt.duration(None) == ""
    assert fmt.money(12.345) == "$12.35" and fmt.money(0.0042) == "$0.0042"


def test_json_goes_before_or_after_the_command(api):
    run = stored_run(api["repo"])
    before = json.loads(run_cli("--json", "runs", "get", run["id"])[1])
    after = json.loads(run_cli("runs", "get", run["id"], "--json")[1])
    assert before == after and before["id"] == run["id"]


def test_exit_codes_api_error_1_with_the_api_message_usage_2(api, capsys, tmp_path):
    run = stored_run(api["repo"], status="running")
    code, _ = run_cli("runs", "retry", run["id"])
    assert code == 1 and "HTTP 409" in capsys.readouterr().err
    code, _ = run_cli("runs", "get", "tr-missing")
    assert code == 1 and "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        run_cli("runs", "retry")
    assert usage.value.code == 2
    code, _ = run_cli("catalog", "create", "datasets", "--file", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in capsys.readouterr().err
    code, _ = run_cli("catalog", "create", "datasets", "--file", write(tmp_path, "list.yaml", "- a\n- b\n"))
    assert code == 2 and "must hold one object" in capsys.readouterr().err


def test_schedule_from_yaml_get_shows_stats_and_runs(api, tmp_path):
    file = write(tmp_path, "s.yaml", SCHEDULE_YAML.format(experiment=api["ids"]["experiment"]))
    code, out = run_cli("schedules", "create", "-f", file, "--name", "renamed")
    assert code == 0 and "renamed" in out and "daily at 02:00 (Europe/Kyiv)" in out and "next run:" in out
    schedule_id = out.split()[0]
    code, out = run_cli("schedules", "trigger", schedule_id)
    assert code == 0 and "run: " in out
    code, out = run_cli("schedules", "get", schedule_id)
    assert code == 0 and "runs: 1 total" in out and "latest runs:" in out and "pending" in out
    code, out = run_cli("schedules", "pause", schedule_id)
    assert code == 0 and "paused" in out
    code, out = run_cli("schedules", "list", "--status", "paused")
    assert code == 0 and schedule_id in out and out.splitlines()[0].startswith("ID")


def test_retry_deploy_and_errors_speak_the_api(api):
    repo = api["repo"]
    failed = stored_run(repo, status="failed", error_stage="Train", error_message="CUDA out of memory")
    code, out = run_cli("runs", "errors", failed["id"])
    assert code == 0 and "attempt 1: failed at Train: CUDA out of memory" in out
    code, out = run_cli("runs", "retry", failed["id"], "--attempt", "1", "--gpu-type", "NVIDIA_TESLA_A100",
                        "--epochs", "3", "--on-demand", "--machine-count", "2")
    assert code == 0 and "attempt 2 queued" in out
    retried = repo.get_run(failed["id"])
    assert retried["gpu_config"]["machine_count"] == 2
    assert retried["gpu_config"]["gpu_type"] == "NVIDIA_TESLA_A100" and retried["gpu_config"]["preemptible"] is False
    assert retried["training_params"]["epochs"] == 3
    assert "already" in run_cli("runs", "retry", failed["id"], "--attempt", "1")[1]


def test_logs_follow_until_the_run_is_terminal(api):
    repo, logs = api["repo"], api["logs"]
    run = stored_run(repo, status="running")
    reads = {"n": 0}

    def grow():
        reads["n"] += 1
        logs.lines.append(f"line {reads['n']}")
        if reads["n"] == 4:
            logs.lines.append("Traceback: boom")
            repo.mutate_run(run["id"], lambda d: {**d, "status": "failed"})

    logs.on_read = grow
    code, out = run_cli("runs", "logs", run["id"], "-f", "--page-size", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[:4] == ["[Train] line 1", "[Train] line 2", "[Train] line 3", "[Train] line 4"]
    assert "[Train] Traceback: boom" in lines and len(lines) == len(set(lines))  # nothing printed twice
    assert lines[-1] == f"[Train] line {reads['n']}"  # the read after the terminal status was printed too
    logs.on_read = None
    code, out = run_cli("--json", "runs", "logs", run["id"])
    assert code == 0 and json.loads(out.splitlines()[0])["message"] == "line 1"


def test_logs_follow_from_where_the_last_page_ended_with_stage_and_severity(api):
    repo, logs = api["repo"], api["logs"]
    run = stored_run(repo, status="running")
    logs.resumes, reads = True, {"n": 0}

    def grow():
        reads["n"] += 1
        logs.lines.append(f"line {reads['n']}")
        if reads["n"] == 3:
            repo.mutate_run(run["id"], lambda d: {**d, "status": "completed"})

    logs.on_read = grow
    code, out = run_cli("runs", "logs", run["id"], "-f", "--stage", "Train", "--severity", "warning")
    assert code == 0 and out.splitlines() == [f"[Train] line {n}" for n in range(1, 5)]  # 4: after the end, once
    assert [a[:2] for a in logs.asked] == [("Train", "WARNING")] * 4
    assert [a[2] for a in logs.asked] == [None, {"o": 1}, {"o": 2}, {"o": 3}]  # each read from where the last ended


def test_completion_script_knows_every_command(tmp_path):
    code, out = run_cli("completion", "bash")
    assert code == 0 and "complete -o default -F _trainyard trainyard" in out
    script = write(tmp_path, "c.bash", out)

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        probe = (f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _trainyard; "
                 "printf '%s\\n' \"${COMPREPLY[@]}\"")
        return subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout.split()

    assert {"runs", "schedules", "catalog", "gpu", "experiments", "admin", "completion"} <= set(complete("trainyard "))
    assert {"retry", "deploy", "push-anyway", "logs", "history", "artifacts", "errors"} <= set(complete("trainyard runs "))
    assert set(complete("trainyard runs lo")) == {"logs"}
    assert "--follow" in complete("trainyard runs logs tr-1 --")
    assert {"datasets", "feature-configs", "model-configs", "experiments"} <= set(complete("trainyard catalog list "))
    assert run_cli("completion", "zsh")[1].startswith("autoload -U +X bashcompinit")


def test_runs_get_and_schedules_get_show_the_estimated_cost(api, tmp_path):
    from shared.domain import cost

    repo = api["repo"]
    done = stored_run(repo, status="completed", stage_details=[
        {"name": name, "status": "completed", "duration_seconds": 600.0} for name in cost.PRICED_STAGES])
    priced = cost.estimate(done, cost.load_table(), "us-central1")
    repo.mutate_run(done["id"], lambda d: {**d, "estimated_cost": priced})
    code, out = run_cli("runs", "get", done["id"])
    assert code == 0 and f"estimated cost: ${priced['total']:,.2f} (us-central1, prices of 2026-12-04)" in out
    assert "Train" in out and "+ 2 x NVIDIA_L4 Spot" in out
    code, out = run_cli("runs", "list")
    assert f"${priced['total']:,.2f}" in out.splitlines()[1]
    file = write(tmp_path, "s.yaml", SCHEDULE_YAML.format(experiment=api["ids"]["experiment"]))
    schedule_id = json.loads(run_cli("--json", "schedules", "create", "-f", file)[1])["schedule"]["id"]
    repo.mutate_schedule(schedule_id, lambda s: {**s, "estimated_cost": {"total": 12.5, "runs": 3, "currency": "USD"}})
    code, out = run_cli("schedules", "get", schedule_id)
    assert code == 0 and "estimated cost: $12.50 over 3 run(s)" in out


def test_runs_create_names_notification_targets(api, capsys):
    code, out = run_cli("--json", "runs", "create", "--name", "told", "--best", "retrieval", "--notify-webhook",
                        "https://hooks.example.com/a", "--notify-secret", "team-hook", "--notify-topic", "ml-alerts")
    assert code == 0
    assert json.loads(out)["training_run"]["notifications"]["webhooks"] == [  # the URL is a secret: its host only
        {"host": "hooks.example.com", "secret": "team-hook"}]
    code, _ = run_cli("runs", "create", "--name", "told", "--best", "retrieval", "--notify-webhook", "ftp://x")
    assert code == 1 and "notifications.webhooks.0.url" in capsys.readouterr().err
    assert run_cli("runs", "create", "--name", "told", "--best", "retrieval", "--notify-secret", "x")[0] == 2


def test_yaml_files_keep_times_of_day_and_dates_as_the_api_reads_them(tmp_path):
    from trainyard_cli.output import read_document

    doc = read_document(write(tmp_path, "s.yaml", "time_of_day: 02:00\nrun_at: 2026-12-05 02:00:00\n"
                                                  "max_concurrent_runs: 2\nthreshold: 0.3\nflag: true\n"))
    assert doc == {"time_of_day": "02:00", "run_at": "2026-12-05T02:00:00", "max_concurrent_runs": 2,
                   "threshold": 0.3, "flag": True}
