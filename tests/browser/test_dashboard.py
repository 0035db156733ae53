"""The Training page in a real browser (Debian's Chromium + Playwright) against the local stack.

Runs move through their stages because the tests publish the same sink-shaped events the pipeline
service would (tests/integration's scripted pipeline service); the page must follow them live,
through its Firestore listeners."""
from __future__ import annotations

import re
import time

import pytest
import requests
expect = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the Python Playwright client (make setup installs it)").expect

from shared.adapters.artifact_store import ArtifactStore
from tests.browser.conftest import shot
from tests.integration.test_control_plane_flow import deliver
from tests.unit.scenario import job_timeline, write_results

pytestmark = pytest.mark.integration

LIVE_MS = 1000  # a Firestore change reaches the open page within a second


def card(page, run_id):
    return page.locator(f'.training-run-card[data-run-id="{run_id}"]')


def open_wizard(page):
    page.locator(".chapter-tab[data-chapter=training]").click()
    page.locator("[data-new-run]").first.click()
    wizard = page.locator("#wizard")
    expect(wizard).to_be_visible()
    expect(wizard.locator(".exp-row.selected")).to_have_count(1)  # the best experiment is preselected
    return wizard


def walk_wizard(page, name, screenshots=False, schedule=None, epochs="3", timezone=None, day=None, change_config=False,
                machines=None):
    wizard = open_wizard(page)
    wizard.locator("#wiz-name").fill(name)
    if screenshots:
        shot(page, "wizard-step1")
    wizard.locator("[data-wiz=next]").click()
    expect(wizard).to_have_attribute("data-step", "2")
    wizard.locator("#wiz-epochs").fill(epochs)
    if change_config:  # [Change] opens a picker over the API's catalog; Select closes it
        wizard.locator("[data-change=dataset]").click()
        picker = page.locator(".modal", has_text="Select dataset")
        expect(picker.locator("[data-pick]")).not_to_have_count(0)
        picker.locator("[data-pick]").first.click()
        picker.locator("[data-config-select]").click()
        expect(picker).to_have_count(0)
    wizard.locator("[data-role=advanced] summary").click()
    if screenshots:
        shot(page, "wizard-step2")
    wizard.locator("[data-wiz=next]").click()
    expect(wizard).to_have_attribute("data-step", "3")
    if schedule == "draft":
        wizard.locator("input[name=schedule][value=draft]").check()
    elif schedule:
        wizard.locator(f"input[name=schedule][value={schedule}]").check()
        wizard.locator("[data-bind='schedule.time']").fill("03:30")
        if timezone:
            wizard.locator("[data-bind='schedule.timezone']").select_option(timezone)
        if day is not None:
            wizard.locator("[data-bind='schedule.day_of_week']").select_option(str(day))
    if machines:
        wizard.locator("[data-bind='gpu.machine_count']").select_option(machines)
    expect(wizard.locator("[data-role=gpu-availability]")).not_to_have_text("Checking GPU quota…")
    if screenshots:
        shot(page, "wizard-step3")
    wizard.locator("[data-wiz=submit]").click()
    return wizard


def run_id_by_name(stack, name, timeout_s=10):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = [r for r in stack.get("/api/training-runs", search=name, page_size=100).json()["training_runs"]
                 if r["name"] == name]
        if found:
            return found[0]["id"]
        time.sleep(0.1)
    raise AssertionError(f"no run named {name}")


def test_chapters_and_experiment_view(page, catalog):
    page.locator(".chapter-tab[data-chapter=experiments]").click()
    expect(page.locator(".kpi-row")).to_have_count(3)
    rows = page.locator("#top-configs tbody tr")
    expect(rows).to_have_count(len(catalog["experiments"]), timeout=20_000)  # first listener on a cold emulator
    expect(rows.first).to_contain_text("0.610")  # sorted by R@100, best first
    shot(page, "chapter-1-best-experiments")
    rows.first.click()
    view = page.locator("#experiment-view")
    expect(view).to_contain_text("quick test 1")
    shot(page, "experiment-view")
    view.locator("[data-start-training]").click()
    wizard = page.locator("#wizard")
    expect(wizard.locator("[data-role=exp-summary]")).to_contain_text("quick test 1")
    # Step 1's [View] opens the same experiment view over the wizard (without "Start training").
    wizard.locator("[data-view-exp]").nth(1).click()
    expect(page.locator("#experiment-view")).to_contain_text("quick test 2")
    expect(page.locator("#experiment-view [data-start-training]")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(page.locator("#experiment-view")).to_have_count(0)
    expect(wizard).to_be_visible()
    wizard.locator("[data-close]").first.click()
    page.locator(".chapter-tab[data-chapter=registry]").click()
    expect(page.locator("#chapter-registry")).to_contain_text("Models Registry")
    shot(page, "chapter-3-models-registry")


def test_the_wizard_shows_what_the_experiment_brings_and_the_header_names_the_model(page, stack):
    expect(page.locator("#model-name")).to_have_text(f"Model: {stack.stack.config.project}")
    wizard = open_wizard(page)
    summary = wizard.locator("[data-role=exp-summary]")
    expect(summary).to_contain_text("2.45M rows, 98K users, 36K products")
    expect(summary).to_contain_text("query 54d (customer_id: 32d, ts_cyc: 6d, cat_x_city: 16d) · candidate 32d (product_id: 32d)")
    expect(summary).to_contain_text("query 64→32 · candidate 64→32 towers, adagrad optimizer")
    wizard.locator("#wiz-name").fill("details-only")
    wizard.locator("[data-wiz=next]").click()
    expect(wizard.locator('[data-config=model_config] [data-detail]')).to_have_text(
        "query 64→32 · candidate 64→32 towers, adagrad optimizer")
    expect(wizard.locator('[data-config=dataset] [data-detail]')).to_have_text("2.45M rows, 98K users, 36K products")
    shot(page, "wizard-step2-details")


def test_save_as_draft_then_submit_it_from_its_card(page, stack):
    walk_wizard(page, "browser-draft", schedule="draft", machines="2")
    expect(page.locator("#wizard")).to_have_count(0)
    run_id = run_id_by_name(stack, "browser-draft")
    c = card(page, run_id)
    expect(c).to_have_attribute("data-status", "draft")
    assert stack.run(run_id)["status"] == "draft"  # stored, not submitted
    assert stack.run(run_id)["gpu_config"]["machine_count"] == 2  # the wizard's "Machines"
    expect(c).to_contain_text("2 machines × 2x L4")
    expect(c.locator("[data-action=submit]")).to_be_visible()
    expect(c.locator("[data-action=delete]")).to_be_visible()
    page.locator("[data-chip=draft]").click()  # the Drafts filter shows it ...
    expect(c).to_be_visible()
    shot(page, "card-draft")
    page.locator("[data-chip=all]").click()  # ... and All keeps it once it runs
    c.locator("[data-action=submit]").click()
    expect(c).to_have_attribute("data-status", "running", timeout=30_000)  # through the real submitter
    assert stack.run(run_id)["attempt"] == 1


TB_EXPERIMENT = "projects/123/locations/europe-west4/tensorboards/456/experiments/789"


def test_wizard_submit_then_the_card_follows_the_run_live_to_completion(page, stack):
    name = "browser-happy-path"
    walk_wizard(page, name, screenshots=True, change_config=True)
    expect(page.locator("#wizard")).to_have_count(0)
    run_id = run_id_by_name(stack, name)
    c = card(page, run_id)
    expect(c).to_be_visible()
    expect(c).to_have_attribute("data-status", "running", timeout=30_000)  # submitted by the real submitter
    shot(page, "chapter-2-training-running")
    run = stack.run(run_id)
    job_id = f"{run_id}-a1"
    write_results(ArtifactStore(), run["gcs_artifacts_path"], blessed=True, epochs=3)
    timeline = job_timeline(job_id)
    # Examples … Transform, then Train running: each stage shows on the card within a second.
    seen = []
    for snapshot in timeline[:10]:
        deliver(stack, [snapshot], job_id)
        stage = stack.run(run_id)["current_stage"]
        expect(c.locator("[data-role=stage]")).to_have_text(stage, timeout=LIVE_MS)
        seen.append(stage)
    assert "Train" in seen and "Examples" in seen
    for epoch in range(1, 4):
        stack.publish("training-progress", {"run_id": run_id, "attempt": 1, "epoch": epoch, "total_epochs": 3,
                                            "loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "learning_rate": 0.05 / epoch,
                                            "grad_norm": 3.0 / epoch, "tensorboard_experiment": TB_EXPERIMENT,
                                            "metrics": {"recall_at_100": 0.15 * epoch}})
    expect(c.locator("[data-role=progress-label]")).to_contain_text("Epoch 3/3", timeout=10_000)
    # The run view follows the same run live; its charts have one point per epoch.
    c.locator("[data-action=view]").click()
    view = page.locator("#run-view")
    expect(view).to_be_visible()
    shot(page, "run-view-overview")
    view.locator("[data-tab=pipeline]").click()
    expect(view.locator(".dag-node")).to_have_count(8)
    expect(view.locator('.dag-node[data-stage="Train"]')).to_have_attribute("data-stage-status", "running")
    shot(page, "run-view-pipeline-running")
    view.locator("[data-tab=training]").click()
    for chart in ("loss", "val_loss", "gate", "learning_rate", "grad_norm"):
        expect(view.locator(f'canvas[data-chart="{chart}"]')).to_have_attribute("data-points", "3", timeout=5_000)
    expect(view.locator('canvas[data-chart="loss"]')).to_have_attribute("data-epochs", "1,2,3")
    # The Trainer named its Vertex TensorBoard experiment with its epochs: the tab links to it.
    expect(view.locator("[data-role=tensorboard-link]")).to_have_attribute(
        "href", "https://europe-west4.tensorboard.googleusercontent.com/experiment/" + TB_EXPERIMENT.replace("/", "+"))
    shot(page, "run-view-training-charts")
    deliver(stack, timeline[10:], job_id)
    expect(view.locator("[data-role=view-status]")).to_have_text("Completed", timeout=LIVE_MS)  # the open view follows
    view.locator("[data-tab=overview]").click()  # the run's estimated cost, priced when it completed
    expect(view.locator("[data-role=cost]")).to_contain_text("≈ $", timeout=LIVE_MS)
    expect(view.locator("[data-role=cost-breakdown]")).to_contain_text("Train")
    view.locator("[data-tab=pipeline]").click()
    expect(view.locator('.dag-node[data-stage-status="completed"]')).to_have_count(8)
    shot(page, "run-view-pipeline-completed")
    view.locator("[data-tab=artifacts]").click()
    expect(view.locator("[data-role=artifacts]")).to_contain_text("saved_model")
    shot(page, "run-view-artifacts")
    view.locator("[data-tab=logs]").click()
    expect(view.locator("[data-role=logs]")).not_to_have_text("Loading…")
    shot(page, "run-view-logs")
    view.locator("[data-close]").first.click()
    expect(c).to_have_attribute("data-status", "completed")
    expect(c.locator("[data-role=cost]")).to_contain_text("Cost: ≈ $")
    expect(c.locator("[data-action=deploy]")).to_be_visible()
    shot(page, "chapter-2-training-completed")
    c.locator("[data-action=deploy]").click()
    page.locator("#deploy-dialog [data-deploy-submit]").click()  # where the run's deployment_config says
    expect(page.locator(".toast").last).not_to_have_class(re.compile("error"))
    assert stack.run(run_id).get("deployment_status") in ("deploying", "deployed", "failed")
    page.locator(".chapter-tab[data-chapter=registry]").click()
    expect(page.locator(f'[data-registry-run="{run_id}"]')).to_be_visible()
    shot(page, "chapter-3-models-registry-with-model")


def test_an_invalid_name_shows_the_apis_message_next_to_the_field(page, stack, catalog):
    api = stack.post("/api/training-runs", {"name": "Bad Name!", "base_experiment_id": catalog["best"]["id"]})
    assert api.status_code == 400
    message = next(e["message"] for e in api.json()["errors"] if e["field"] == "name")
    wizard = walk_wizard(page, "Bad Name!")
    expect(wizard).to_have_attribute("data-step", "1")  # back to the step that holds the field
    expect(wizard.locator('[data-error-for="name"]')).to_have_text(message)
    shot(page, "wizard-invalid-name")


def test_a_parameter_error_shows_on_step_two_next_to_its_field(page, stack, catalog):
    api = stack.post("/api/training-runs", {"name": "zero-epochs", "base_experiment_id": catalog["best"]["id"],
                                            "training_params": {"epochs": 0}})
    message = next(e["message"] for e in api.json()["errors"] if e["field"] == "training_params.epochs")
    wizard = walk_wizard(page, "zero-epochs", epochs="0")
    expect(wizard).to_have_attribute("data-step", "2")
    expect(wizard.locator('[data-error-for="training_params.epochs"]')).to_have_text(message)
    shot(page, "wizard-invalid-epochs")


def test_cancel_from_a_card(page, stack, catalog):
    response = stack.post("/api/training-runs", {"name": "browser-cancel-me", "base_experiment_id": catalog["best"]["id"],
                                                 "training_params": {"epochs": 3}})
    run_id = response.json()["training_run"]["id"]
    c = card(page, run_id)
    expect(c).to_have_attribute("data-status", "running", timeout=30_000)
    c.locator("[data-action=cancel]").click()  # the confirm dialog is accepted by the fixture
    expect(c).to_have_attribute("data-status", re.compile("cancelling|cancelled"), timeout=5_000)
    snapshot = job_timeline(f"{run_id}-a1")[2]
    from dataclasses import replace

    deliver(stack, [replace(snapshot, state="PIPELINE_STATE_CANCELLED", end_time=snapshot.start_time)], f"{run_id}-a1")
    expect(c).to_have_attribute("data-status", "cancelled", timeout=10_000)
    expect(c.locator("[data-action=retry]")).to_be_visible()
    shot(page, "card-cancelled")
    c.locator("[data-action=retry]").click()  # the retry form, as the run last ran; attempt 2 goes through the real submitter
    page.locator("#retry-form [data-retry-submit]").click()
    expect(c).to_have_attribute("data-status", "running", timeout=30_000)
    assert stack.run(run_id)["attempt"] == 2


def test_a_schedule_created_in_the_wizard_appears_in_active_schedules(page, stack):
    walk_wizard(page, "browser-nightly", schedule="daily")
    expect(page.locator("#wizard")).to_have_count(0)
    sched = page.locator(".schedule-card", has_text="browser-nightly")
    expect(sched).to_be_visible(timeout=LIVE_MS * 3)
    expect(sched).to_contain_text("daily at 03:30 UTC")
    shot(page, "active-schedules")
    sched.locator("[data-sched-action=pause]").click()
    expect(sched.locator(".status-badge")).to_have_text("paused", timeout=5_000)
    sched.locator("[data-sched-action=resume]").click()
    expect(sched.locator(".status-badge")).to_have_text("active", timeout=5_000)
    sched.locator("[data-sched-action=cancel]").click()
    expect(sched).to_have_count(0, timeout=5_000)


def test_a_weekly_schedule_in_a_time_zone(page, stack):
    walk_wizard(page, "browser-weekly", schedule="weekly", timezone="Europe/Berlin", day=2)
    expect(page.locator("#wizard")).to_have_count(0)
    sched = page.locator(".schedule-card", has_text="browser-weekly")
    expect(sched).to_contain_text("weekly on Wednesday at 03:30 Europe/Berlin")
    stored = next(s for s in stack.get("/api/training/schedules").json()["schedules"] if s["name"] == "browser-weekly")
    assert stored["timezone"] == "Europe/Berlin" and stored["schedule_type"] == "weekly"
    assert stored["run_template"]["training_params"]["epochs"] == 3
    sched.locator("[data-sched-action=cancel]").click()
    expect(sched).to_have_count(0)


def test_filters_search_and_empty_state(page, stack):
    page.locator(".chapter-tab[data-chapter=training]").click()
    page.locator("[data-chip=failed]").click()
    expect(page.locator("[data-empty=filtered]")).to_be_visible()
    page.locator("[data-chip=all]").click()
    page.locator("#filter-search").fill("browser-happy")
    expect(page.locator(".training-run-card")).to_have_count(1, timeout=2_000)
    shot(page, "chapter-2-training-search")


def test_page_serves_without_a_token_but_the_api_needs_one(stack):
    assert requests.get(stack.api + "/training", timeout=10).status_code == 200
    assert requests.get(stack.api + "/training/config.json", timeout=10).json()["firestoreEmulatorHost"]
    assert requests.get(stack.api + "/api/training-runs", timeout=10).status_code == 401
