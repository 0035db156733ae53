"""bin/trainyard through the local stack (real HTTP to the API under functions-framework, both
emulators, the run through the submitter and pipeline_events): create, logs -f while the run fails,
watch's exit code, errors, retry; a schedule from YAML; the catalog; the GPU pre-flight."""
from __future__ import annotations

import io
import json
import threading

import pytest

from tests.integration.test_control_plane_flow import catalog, deliver  # noqa: F401 (fixture)
from tests.unit.scenario import job_timeline
from trainyard_cli import run_commands
from trainyard_cli.__main__ import run as cli

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(local_stack, monkeypatch):
    monkeypatch.setenv("TRAINYARD_API_URL", local_stack.api)
    monkeypatch.setenv("TRAINYARD_TOKEN", local_stack.stack.config.dev_token)
    monkeypatch.setattr(run_commands, "LOG_POLL_S", 0.1)
    return local_stack


def call(*argv) -> tuple[int, str]:
    out = io.StringIO()
    return cli(list(argv), out=out), out.getvalue()


def test_a_failing_run_from_the_cli(cli_env, catalog, tmp_path, capsys):  # noqa: F811
    stack = cli_env
    code, out = call("catalog", "list", "experiments")
    assert code == 0 and "winning quick test" in out and "0.61" in out
    code, out = call("--json", "runs", "create", "--name", "cli-flow", "--experiment", catalog["experiment"],
                     "--epochs", "2")
    assert code == 0
    run_id = json.loads(out)["training_run"]["id"]
    job_id = f"{run_id}-a1"
    stack.wait_for(run_id, lambda r: r["status"] == "running", what="submission")
    stack.pipeline.logs[job_id] = ["INFO starting", "INFO reading examples"]

    followed: dict = {}
    follower = threading.Thread(target=lambda: followed.update(zip(("code", "out"), call("runs", "logs", run_id,
                                                                                          "-f"))))
    follower.start()
    stack.pipeline.logs[job_id] += ["INFO epoch 1/2", "ERROR CUDA out of memory"]
    deliver(stack, job_timeline(job_id, fail_at="Trainer"), job_id)
    stack.wait_for(run_id, lambda r: r["status"] == "failed", what="failure")
    follower.join(timeout=60)
    assert not follower.is_alive(), "logs -f did not stop at the terminal state"
    assert followed["code"] == 0
    lines = followed["out"].splitlines()
    assert [line.split("] ")[-1] for line in lines] == ["INFO starting", "INFO reading examples", "INFO epoch 1/2",
                                                         "ERROR CUDA out of memory"]

    code, out = call("runs", "watch", run_id)
    assert code == 1 and "failed at Train" in out
    code, out = call("runs", "errors", run_id)
    assert code == 0 and "attempt 1: failed at Train" in out
    code, out = call("runs", "get", run_id)
    assert code == 0 and "failed at Train" in out and "stages: " in out
    assert "estimated cost: $" in out and "prices of " in out  # priced by pipeline_events when it failed
    code, out = call("runs", "retry", run_id, "--attempt", "1", "--epochs", "3")
    assert code == 0 and "attempt 2 queued" in out
    stack.wait_for(run_id, lambda r: r["attempt"] == 2 and r["status"] == "running", what="attempt 2")
    code, _ = call("runs", "retry", run_id, "--attempt", "7")
    assert code == 1 and "attempt" in capsys.readouterr().err


def test_schedules_and_gpu_from_the_cli(cli_env, catalog, tmp_path):  # noqa: F811
    file = tmp_path / "nightly.yaml"
    file.write_text(f"""
name: cli nightly
schedule_type: cron
cron_expression: "0 3 * * 1-5"
timezone: America/New_York
run_template:
  name: cli-nightly
  base_experiment_id: {catalog['experiment']}
""")
    code, out = call("--json", "schedules", "create", "--file", str(file))
    assert code == 0
    schedule_id = json.loads(out)["schedule"]["id"]
    code, out = call("schedules", "trigger", schedule_id)
    assert code == 0 and "run: " in out
    code, out = call("schedules", "get", schedule_id)
    assert code == 0 and "cron '0 3 * * 1-5' (America/New_York)" in out and "runs: 1 total" in out
    assert call("schedules", "pause", schedule_id)[0] == 0
    code, out = call("schedules", "list", "--status", "paused")
    assert code == 0 and schedule_id in out
    code, out = call("schedules", "cancel", schedule_id)
    assert code == 0 and "cancelled" in out
    code, out = call("gpu", "availability", "--gpu-type", "NVIDIA_TESLA_A100", "--gpu-count", "2")
    assert code == 0 and "2 x NVIDIA_TESLA_A100 (Spot)" in out and "sufficient" in out
