"""`--fallback` on `trainyard runs create` / `runs retry`, and each attempt's shape in `trainyard runs get`."""
from __future__ import annotations

import pytest

from shared.domain import runs
from trainyard_cli import gpu_fallback_option
from trainyard_cli.output import UsageError
from tests.unit.test_cli import api, run_cli  # noqa: F401 — the fixture


def test_fallback_flags_are_stored_in_order_and_a_bad_one_is_named(api):  # noqa: F811
    repo, ids = api
    code, out = run_cli("runs", "create", "--name", "cli-fallback", "--experiment", ids["experiment"],
                        "--fallback", "NVIDIA_TESLA_T4:2,region=us-central1", "--fallback", "NVIDIA_L4:1,on-demand")
    assert code == 0, out
    run = next(iter(repo.runs.values()))
    assert [(f["gpu_type"], f["gpu_count"], f["region"], f["preemptible"]) for f in run["gpu_config"]["fallbacks"]] == [
        ("NVIDIA_TESLA_T4", 2, "us-central1", True), ("NVIDIA_L4", 1, None, False)]
    with pytest.raises(UsageError, match="GPU_TYPE:COUNT"):
        gpu_fallback_option.parse("NVIDIA_L4")
    with pytest.raises(UsageError, match="'zone=a'"):
        gpu_fallback_option.parse("NVIDIA_L4:1,zone=a")


def test_runs_get_shows_each_attempts_shape_and_why_it_ended(api):  # noqa: F811
    repo, ids = api
    run_cli("runs", "create", "--name", "cli-fallback", "--experiment", ids["experiment"],
            "--fallback", "NVIDIA_TESLA_T4:2,region=us-central1")
    run_id = next(iter(repo.runs))
    first = dict(repo.runs[run_id]["gpu_config"])
    repo.mutate_run(run_id, lambda d: {**d, "status": runs.PENDING, "attempt": 2, "attempts": [
        {"attempt": 1, "status": runs.FAILED, "shape": first, "ended_because": "capacity",
         "retried_by": "trainyard (gpu fallback)"}],
        "gpu_config": {**first, "gpu_type": "NVIDIA_TESLA_T4", "machine_type": "n1-standard-16", "region": "us-central1"}})
    code, out = run_cli("runs", "get", run_id)
    assert code == 0, out
    assert "attempt 1 on 2 x NVIDIA_L4 on g2-standard-24 (Spot): capacity, retried by trainyard (gpu fallback)" in out
    assert "attempt 2 on 2 x NVIDIA_TESLA_T4 on n1-standard-16 in us-central1 (Spot): pending" in out
