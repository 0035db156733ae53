"""The run view's Logs tab as a user reads it (issue 26 part 5), in Chromium through the local stack. The run's job
log is seeded in the local pipeline service (the lines a local run writes: stage_marks' structured "Component X is
running." marks, then each component's own output: shared/adapters/run_logs.py LocalPipelineLogs), so no pipeline
runs. The tab labels every line with its stage; a stage chip narrows to that stage's lines; the severity filter
keeps only what is that bad or worse; Follow appends what the job writes after the tab opened."""
from __future__ import annotations

import json

import pytest
expect = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the Python Playwright client (make setup installs it)").expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import card

pytestmark = pytest.mark.integration


def mark(node: str, stage: str, t: float) -> str:
    """A stage mark as pipeline_compiler/stage_marks.py prints it (shared/log.py's structured line)."""
    return json.dumps({"severity": "INFO", "message": f"Component {node} is running.", "stage": stage, "node": node,
                       "time": t})


LINES = [
    mark("CsvExampleGen", "Examples", 1_765_000_000.0),
    "INFO:absl:Reading gs://recs-data/transactions.csv",
    "WARNING:absl:2 rows had an empty customer_id and were dropped",
    mark("Transform", "Transform", 1_765_000_060.0),
    "INFO:absl:Analyzing 3 features",
    mark("Trainer", "Train", 1_765_000_120.0),
    "INFO:root:epoch 1/3 loss=0.91",
    "ERROR:root:NaN loss at step 412: lowering the learning rate may help",
    "INFO:root:epoch 2/3 loss=0.62",
]


def shown(logs) -> list[tuple[str, str]]:
    """(stage label, message) of every line the tab shows."""
    return [(line.locator(".log-stage").inner_text(), line.locator(".log-msg").inner_text())
            for line in logs.locator(".log-line").all()]


def test_the_logs_tab_labels_filters_and_follows_a_runs_lines(page, stack, catalog):
    response = stack.post("/api/training-runs", {"name": "browser-logs", "base_experiment_id": catalog["best"]["id"],
                                                 "training_params": {"epochs": 3}})
    assert response.status_code == 201, response.text
    run_id = response.json()["training_run"]["id"]
    c = card(page, run_id)
    expect(c).to_have_attribute("data-status", "running", timeout=30_000)
    job_log = stack.pipeline.logs.setdefault(f"{run_id}-a1", [])
    job_log.extend(LINES)

    c.locator("[data-action=view]").click()
    view = page.locator("#run-view")
    view.locator("[data-tab=logs]").click()
    logs = view.locator("[data-role=logs]")
    expect(logs.locator(".log-line")).to_have_count(len(LINES))
    lines = shown(logs)
    assert ("[Examples]", "WARNING:absl:2 rows had an empty customer_id and were dropped") in lines
    assert ("[Transform]", "INFO:absl:Analyzing 3 features") in lines
    assert lines[-1] == ("[Train]", "INFO:root:epoch 2/3 loss=0.62")
    assert [stage for stage, _ in lines] == ["[Examples]"] * 3 + ["[Transform]"] * 2 + ["[Train]"] * 4
    shot(page, "run-view-logs-every-stage")

    # One stage's lines: the chip asks the server for that stage alone.
    view.locator('[data-log-stage="Train"]').click()
    expect(logs.locator(".log-line")).to_have_count(4)
    assert {stage for stage, _ in shown(logs)} == {"[Train]"}
    expect(view.locator('[data-log-stage="Train"]')).to_have_class("chip active")

    # Errors only, across every stage.
    view.locator('[data-log-stage=""]').click()
    expect(logs.locator(".log-line")).to_have_count(len(LINES))
    view.locator("[data-role=log-severity]").select_option("ERROR")
    expect(logs.locator(".log-line")).to_have_count(1)
    assert shown(logs) == [("[Train]", "ERROR:root:NaN loss at step 412: lowering the learning rate may help")]
    expect(logs.locator(".log-line").first).to_have_class("log-line sev-error")
    view.locator("[data-role=log-severity]").select_option("WARNING")  # warnings and worse
    expect(logs.locator(".log-line")).to_have_count(2)

    # Follow: what the job writes after the tab opened is appended, below what was there, in its stage.
    view.locator("[data-role=log-severity]").select_option("")
    expect(logs.locator(".log-line")).to_have_count(len(LINES))
    view.locator("[data-role=log-follow]").check()
    job_log.extend(["INFO:root:epoch 3/3 loss=0.48", mark("Evaluator", "Evaluate", 1_765_000_300.0),
                    "WARNING:absl:no champion yet: the threshold alone decides"])
    expect(logs.locator(".log-line")).to_have_count(len(LINES) + 3, timeout=10_000)
    assert shown(logs)[-3:] == [("[Train]", "INFO:root:epoch 3/3 loss=0.48"),
                                ("[Evaluate]", job_log[-2]),  # a mark shows as the runner wrote it
                                ("[Evaluate]", "WARNING:absl:no champion yet: the threshold alone decides")]
    assert shown(logs)[:len(LINES)] == lines  # appended, nothing redrawn or repeated
    shot(page, "run-view-logs-followed")
    view.locator("[data-close]").first.click()
