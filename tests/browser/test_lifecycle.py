"""The retraining loop in the browser (issue 27 through the dashboard): the wizard's canary, GPU fallback and
champion fields reach the API in its shape and its 400s land under them; the run view's batch predictions form;
what triggered a run on its card and in its run view; Roll back on a canary, carried out by the run-commands
consumer and recorded as an endpoint history row."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
expect = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the Python Playwright client (make setup installs it)").expect

from shared.adapters.serving.local import read_endpoint, write_endpoint
from shared.domain import deployments
from tests.browser.conftest import shot
from tests.browser.test_dashboard import card, open_wizard, run_id_by_name
from tests.browser.test_run_cards import NOW, run_doc

pytestmark = pytest.mark.integration


def firestore(stack):
    from google.cloud import firestore as fs

    return fs.Client(project=stack.stack.config.project)


def set_field(locator, value: str) -> None:
    """Fill a wizard field and commit it as a person leaving it would (the step redraws on change)."""
    locator.fill(value)
    locator.dispatch_event("change")


def open_run_view(page, run_id, search):
    page.locator(".chapter-tab[data-chapter=training]").click()
    page.locator("#filter-search").fill(search)
    card(page, run_id).locator("[data-action=view]").click()
    view = page.locator("#run-view")
    expect(view).to_have_attribute("data-run-id", run_id)
    return view


def test_the_wizard_sends_canary_fallbacks_and_the_champion_gate_and_shows_their_errors(page, stack):
    wizard = open_wizard(page)
    wizard.locator("#wiz-name").fill("lc-wizard-canary")
    wizard.locator("[data-wiz=next]").click()
    wizard.locator("[data-wiz=next]").click()
    expect(wizard).to_have_attribute("data-step", "3")
    # GPU fallbacks: two shapes, the second moved first.
    wizard.locator("[data-fallback-add]").click()
    wizard.locator("[data-fallback-add]").click()
    wizard.locator("[data-bind='gpu.fallbacks.1.gpu_type']").select_option("NVIDIA_TESLA_T4")
    wizard.locator("[data-bind='gpu.fallbacks.1.gpu_count']").select_option("4")
    set_field(wizard.locator("[data-bind='gpu.fallbacks.1.region']"), "Europe West")  # not a region: the API says so
    wizard.locator("[data-fallback-move='-1'][data-index='1']").click()
    expect(wizard.locator("[data-bind='gpu.fallbacks.0.gpu_type']")).to_have_value("NVIDIA_TESLA_T4")
    # The champion gate: 2 % tolerance.
    set_field(wizard.locator("[data-bind='champion.tolerance_pct']"), "2")
    # A staged deploy on an existing endpoint, its percent left empty: the API names it.
    wizard.locator("input[name=deploy][value=deploy_existing]").check()
    set_field(wizard.locator("[data-bind='deployment.existing_endpoint_id']"), "lc-prod")
    wizard.locator("[data-bind='deployment.canary.enabled']").check()
    expect(wizard.locator("[data-bind='deployment.traffic_split']")).to_have_count(0)  # the canary's percent is the traffic
    set_field(wizard.locator("[data-bind='deployment.canary.percent']"), "")
    set_field(wizard.locator("[data-bind='deployment.canary.max_p95_latency_ms']"), "250")
    wizard.locator("input[name=schedule][value=draft]").check()
    summary = wizard.locator("[data-role=summary]")
    expect(summary.locator("[data-role=summary-fallbacks]")).to_contain_text(
        "1. 4 × NVIDIA_TESLA_T4 on n1-standard-32 in Europe West (on-demand); 2. 2 × NVIDIA_L4 on g2-standard-24 (on-demand)")
    expect(summary.locator("[data-role=summary-evaluator]")).to_contain_text("and ≥ champion × 0.98")
    expect(summary.locator("[data-role=summary-deploy]")).to_contain_text("existing endpoint lc-prod: canary ?% for 30 min")
    shot(page, "wizard-step3-lifecycle")
    wizard.locator("[data-wiz=submit]").click()
    expect(wizard.locator("[data-error-for='deployment_config.canary.percent']")).to_contain_text("required")
    expect(wizard.locator("[data-error-for='gpu_config.fallbacks.0.region']")).to_contain_text("pattern")
    expect(wizard.locator("[data-role=general-error]")).to_have_text("")  # every error found its field
    shot(page, "wizard-step3-lifecycle-errors")

    set_field(wizard.locator("[data-bind='deployment.canary.percent']"), "5")
    set_field(wizard.locator("[data-bind='gpu.fallbacks.0.region']"), "us-central1")
    expect(summary.locator("[data-role=summary-deploy]")).to_contain_text(
        "canary 5% for 30 min, rolled back above 1% errors or p95 250 ms (over ≥ 20 requests), then 100%")
    wizard.locator("[data-wiz=submit]").click()
    expect(page.locator("#wizard")).to_have_count(0)
    run = stack.run(run_id_by_name(stack, "lc-wizard-canary"))
    assert run["deployment_config"]["canary"] == {"percent": 5, "watch_minutes": 30, "max_error_rate": 0.01,
                                                  "max_p95_latency_ms": 250, "min_requests": 20}
    assert run["deployment_config"]["traffic_split"] == 5
    assert [(f["gpu_type"], f["gpu_count"], f["region"], f["preemptible"]) for f in run["gpu_config"]["fallbacks"]] == [
        ("NVIDIA_TESLA_T4", 4, "us-central1", False), ("NVIDIA_L4", 2, None, False)]
    assert run["evaluator_config"]["compare_to_champion"] is True
    assert run["evaluator_config"]["champion_tolerance"] == pytest.approx(0.02)


def registered_run(name: str, **extra) -> dict:
    return run_doc(name, "completed", 5, metrics={"recall_at_100": 0.47}, duration_seconds=600, progress_percent=100,
                   vertex_model_resource_name=f"local/models/{name}", vertex_model_name=name, vertex_model_version="2",
                   is_blessed=True, completed_at=NOW - timedelta(minutes=3), version=1, **extra)


def test_batch_predictions_are_requested_from_the_run_view(page, stack, catalog, tmp_path):
    run_id = "tr-lc-batch"
    firestore(stack).collection("training_runs").document(run_id).set(registered_run(
        "lc-batch", id=run_id, dataset_id=catalog["dataset"]["id"], gcs_artifacts_path=str(tmp_path / "artifacts")))
    view = open_run_view(page, run_id, "lc-batch")
    view.locator("[data-batch-request]").click()
    dialog = page.locator("#batch-request")
    dialog.locator("[data-batch=ids]").fill("c-1\nc-2, c-3\nc-1")
    dialog.locator("[data-batch=k]").fill("500")
    dialog.locator("[data-batch-submit]").click()
    # the API's 400s under their fields: k above the model's K; then no output given
    expect(dialog.locator("[data-error-for=k]")).to_contain_text("less than or equal to 100")
    shot(page, "run-view-batch-form-errors")
    dialog.locator("[data-batch=k]").fill("5")
    dialog.locator("[data-batch-submit]").click()
    expect(dialog.locator("[data-error-for=body]")).to_contain_text("give gcs_output and/or bigquery_output")
    expect(dialog.locator("[data-error-for=k]")).to_have_text("")
    out = tmp_path / "predictions"
    dialog.locator("[data-batch=gcs_output]").fill(str(out))
    dialog.locator("[data-batch-submit]").click()
    expect(dialog).to_have_count(0)
    section = view.locator("[data-role=batch-predictions]")
    expect(section).to_contain_text("top-5 for 3 users")
    expect(section.locator("[data-output=gcs]")).to_contain_text(str(out))
    batch = stack.run(run_id)["batch_prediction"]
    assert (batch["users"], batch["k"], batch["outputs"]["gcs"]["destination"]) == (3, 5, str(out))
    instances = (tmp_path / "artifacts" / "batch_predictions" / batch["id"] / "instances.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in instances] == [{"customer_id": u} for u in ("c-1", "c-2", "c-3")]
    shot(page, "run-view-batch-requested")


def test_the_card_and_the_run_view_say_what_triggered_the_run(page, stack):
    client = firestore(stack)
    landed = {"source": "gcs", "location": "gs://lc-landing/events/2026-12-06.csv", "version": "1733450400",
              "occurred_at": NOW, "received_at": NOW}
    client.collection("training_runs").document("tr-lc-data").set(run_doc(
        "lc-trigger-data", "pending", 2, schedule_id="ts-lc", triggered_by="data", data_trigger=landed))
    client.collection("training_runs").document("tr-lc-fallback").set(run_doc(
        "lc-trigger-fallback", "running", 3, attempt=2, current_stage="Train",
        trigger={"kind": "gpu_fallback", "by": "trainyard (gpu fallback)", "at": NOW, "attempt": 2}))
    page.locator("#filter-search").fill("lc-trigger-")
    expect(card(page, "tr-lc-data").locator("[data-role=trigger]")).to_have_text(
        "📥 New data gs://lc-landing/events/2026-12-06.csv")
    expect(card(page, "tr-lc-fallback").locator("[data-role=trigger]")).to_have_text("🔀 GPU fallback")
    shot(page, "card-triggers")
    view = open_run_view(page, "tr-lc-data", "lc-trigger-data")
    expect(view.locator("dd[data-role=trigger]")).to_contain_text(
        "📥 New data · object gs://lc-landing/events/2026-12-06.csv (generation 1733450400)")


LIMITS = {"percent": 10, "watch_minutes": 60, "max_error_rate": 0.01, "max_p95_latency_ms": 250, "min_requests": 20}


def test_roll_back_a_canary_from_the_run_view(page, stack):
    """A canary serving 10 % on an endpoint (the document and endpoint file the deploy command would have
    written); Roll back → POST …/rollback → the run-commands consumer restores the endpoint's split → the open
    run view shows the rolled_back row of the endpoint history, live."""
    run_id, endpoint = "tr-lc-canary", "lc-canary-prod"
    endpoints_dir = str(stack.stack.config.local_dir / "endpoints")
    write_endpoint(endpoints_dir, {"endpoint_id": endpoint, "display_name": endpoint, "labels": {},
                                   "deployed_models": [{"id": "old-v1"}, {"id": "new-v2"}],
                                   "traffic_split": {"old-v1": 90, "new-v2": 10}})
    doc = registered_run("lc-canary", id=run_id, deployment_config={
        "action": "deploy_existing", "existing_endpoint_id": endpoint, "traffic_split": 10, "canary": LIMITS})
    asked = {"endpoint_id": endpoint, "endpoint_name": None, "traffic_split": None, "canary": LIMITS}
    doc = deployments.request(doc, asked, "dep-lc", "developer@localhost", NOW, automatic=False)
    doc = deployments.deployed(doc, "dep-lc", {
        "endpoint_resource_name": f"local/endpoints/{endpoint}", "deployed_model_id": "new-v2",
        "traffic_split": {"old-v1": 90, "new-v2": 10}, "previous_traffic_split": {"old-v1": 100},
        "predict_url": f"http://127.0.0.1/v1/endpoints/{endpoint}:predict"}, NOW)
    firestore(stack).collection("training_runs").document(run_id).set(doc)

    page.locator("#filter-search").fill("lc-canary")
    expect(card(page, run_id).locator("[data-role=deployment]")).to_contain_text(
        "🐤 Canary: 10% on local/endpoints/lc-canary-prod, watched until")
    view = open_run_view(page, run_id, "lc-canary")
    expect(view.locator("[data-role=deployment-status]")).to_contain_text("canary on local/endpoints/lc-canary-prod")
    rows = view.locator("[data-role=endpoint-history] tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("canary_started")
    shot(page, "run-view-canary")
    view.locator("[data-deployment-action=rollback]").click()  # the page's fixture accepts the confirm
    expect(rows).to_have_count(2, timeout=20_000)
    expect(rows.nth(1)).to_contain_text("rolled_back")
    expect(rows.nth(1)).to_contain_text("old-v1 90%, new-v2 10% → old-v1 100%, new-v2 0%")
    expect(view.locator("[data-role=deployment-status]")).to_contain_text("rolled_back")
    expect(view.locator("[data-role=rollback]")).to_contain_text("by developer@localhost")
    expect(view.locator("[data-deployment-action=rollback]")).to_have_count(0)
    assert read_endpoint(endpoints_dir, endpoint)["traffic_split"] == {"old-v1": 100, "new-v2": 0}
    shot(page, "run-view-rolled-back")
    page.keyboard.press("Escape")
    expect(card(page, run_id).locator("[data-role=deployment]")).to_contain_text(
        "↩️ Rolled back on local/endpoints/lc-canary-prod (by developer@localhost")


def test_a_schedule_on_new_data_made_in_the_wizard_starts_a_run_when_a_file_lands(page, stack, tmp_path):
    """When new data lands: the wizard's schedule, its card saying where it watches, then a file in the folder
    (the local watcher stands in for the bucket notification) starts a run whose card says so, and the
    schedule card names the event and the run it started."""
    landing = tmp_path / "landing"
    landing.mkdir()
    wizard = open_wizard(page)
    wizard.locator("#wiz-name").fill("lc-on-data")
    wizard.locator("[data-wiz=next]").click()
    wizard.locator("#wiz-epochs").fill("3")
    wizard.locator("[data-wiz=next]").click()
    wizard.locator("input[name=schedule][value=data]").check()
    set_field(wizard.locator("[data-bind='schedule.data_where']"), str(landing))
    wizard.locator("[data-wiz=submit]").click()
    expect(page.locator("#wizard")).to_have_count(0)
    sched = page.locator(".schedule-card", has_text="lc-on-data")
    expect(sched.locator("[data-role=schedule-when]")).to_have_text(
        f"when new data lands in folder {landing} (at most one run per 60 min)")
    expect(sched.locator("[data-role=schedule-data]")).to_have_text("no new data seen yet")

    (landing / "interactions.csv").write_text("customer_id,product_id,ts\nc1,p1,1\n")
    expect(sched.locator("[data-role=schedule-data]")).to_contain_text(
        f"last new data: file {landing / 'interactions.csv'}", timeout=30_000)
    expect(sched.locator("[data-role=schedule-data]")).to_contain_text("→ started ")
    page.locator("#filter-search").fill("lc-on-data")
    run_card = page.locator(".training-run-card", has_text="lc-on-data")
    expect(run_card.locator("[data-role=trigger]")).to_contain_text("📥 New data")
    expect(run_card.locator("[data-role=trigger]")).to_contain_text("interactions.csv")
    shot(page, "schedule-on-new-data")
    sched.locator("[data-sched-action=cancel]").click()
    expect(sched).to_have_count(0)


def open_deploy_dialog(page, stack, run_id: str, name: str, endpoint_id: str):
    """A registered run whose deployment_config targets `endpoint_id` (10 %), its card's Deploy dialog opened."""
    firestore(stack).collection("training_runs").document(run_id).set(registered_run(
        name, id=run_id, deployment_config={"action": "deploy_existing", "existing_endpoint_id": endpoint_id,
                                            "traffic_split": 10}))
    page.locator("#filter-search").fill(name)
    card(page, run_id).locator("[data-action=deploy]").click()
    return page.locator("#deploy-dialog")


def test_deploy_from_the_card_staged_as_a_canary(page, stack):
    """Deploy opens a dialog at the run's deployment_config (an existing endpoint, 10 %); staged as a canary it
    posts the API's canary without traffic_split, its 400s under the canary's fields."""
    run_id = "tr-lc-deploy"
    dialog = open_deploy_dialog(page, stack, run_id, "lc-deploy-dialog", "lc-dlg-prod")
    expect(dialog.locator("[data-bind=endpoint_id]")).to_have_value("lc-dlg-prod")
    expect(dialog.locator("[data-role=deploy-summary]")).to_have_text("Deploys to endpoint lc-dlg-prod: 10% of the traffic at once.")
    dialog.locator("[data-bind='canary.enabled']").check()
    expect(dialog.locator("[data-bind=traffic_split]")).to_have_count(0)
    set_field(dialog.locator("[data-bind='canary.percent']"), "")
    dialog.locator("[data-deploy-submit]").click()
    expect(dialog.locator("[data-error-for='canary.percent']")).to_contain_text("required")
    set_field(dialog.locator("[data-bind='canary.percent']"), "20")
    set_field(dialog.locator("[data-bind='canary.watch_minutes']"), "45")
    expect(dialog.locator("[data-role=deploy-summary]")).to_have_text(
        "Deploys to endpoint lc-dlg-prod: canary 20% for 45 min, rolled back above 1% errors (over ≥ 20 requests), then 100%.")
    shot(page, "deploy-dialog-canary")
    dialog.locator("[data-deploy-submit]").click()
    expect(dialog).to_have_count(0)
    deployment = stack.run(run_id)["deployment"]
    assert deployment["endpoint_id"] == "lc-dlg-prod" and deployment["traffic_split"] == 20
    assert {k: deployment["canary"][k] for k in LIMITS} == {
        "percent": 20, "watch_minutes": 45, "max_error_rate": 0.01, "max_p95_latency_ms": None, "min_requests": 20}
    assert deployment["requested_by"] == "developer@localhost"
    expect(card(page, run_id).locator("[data-role=deployment]")).not_to_have_count(0)
