"""Endpoints in the browser (issue 26 part 1, spec §5.1 "Manage Endpoint"), through the local stack: a deployed
card's Manage Endpoint opens the endpoint view with both models and the run each came from; the traffic sliders'
total must be 100 before Apply; Apply and Undeploy are carried out by the run-commands consumer (the endpoint file
changes) and land in the view's history; the Endpoints list reaches the same view; the wizard offers the
endpoint to pick."""
from __future__ import annotations

import time

import pytest
expect = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the Python Playwright client (make setup installs it)").expect

from shared.adapters.serving.local import read_endpoint, write_endpoint
from tests.browser.conftest import shot
from tests.browser.test_dashboard import card, open_wizard
from tests.browser.test_lifecycle import firestore, open_deploy_dialog, registered_run
from tests.browser.test_run_cards import NOW

pytestmark = pytest.mark.integration
RUN_ID, ENDPOINT = "tr-ep-new", "ep-browser-prod"


def deployed(stack) -> str:
    """A run whose model serves 30 % beside an older model (the documents and the endpoint file a deploy writes)."""
    endpoints_dir = str(stack.stack.config.local_dir / "endpoints")
    write_endpoint(endpoints_dir, {"endpoint_id": ENDPOINT, "display_name": "browser prod", "labels": {},
                                   "deployed_models": [{"id": "old-v1", "model_version_id": "1"},
                                                       {"id": "new-v2", "model_version_id": "2"}],
                                   "traffic_split": {"old-v1": 70, "new-v2": 30}})
    split = {"old-v1": 70, "new-v2": 30}
    doc = registered_run("ep-new", id=RUN_ID, deployment_status="deployed", is_deployed=True,
                         endpoint_resource_name=f"local/endpoints/{ENDPOINT}", deployment={
                             "id": "dep-ep", "status": "deployed", "endpoint_id": ENDPOINT, "traffic_split": 30,
                             "endpoint_resource_name": f"local/endpoints/{ENDPOINT}", "deployed_model_id": "new-v2",
                             "traffic": split, "previous_traffic": {"old-v1": 100}, "requested_by": "developer@localhost",
                             "requested_at": NOW, "deployed_at": NOW},
                         endpoint_history=[{"at": NOW, "by": "developer@localhost", "action": "deployed",
                                            "endpoint": f"local/endpoints/{ENDPOINT}", "deployed_model_id": "new-v2",
                                            "from": {"old-v1": 100}, "to": split, "reason": "deployed with 30 %"}])
    firestore(stack).collection("training_runs").document(RUN_ID).set(doc)
    return endpoints_dir


def history_until(view, text: str, timeout_s: float = 30) -> None:
    """The view reads the endpoint again a moment after a change; the consumer may take longer: ↻ until it shows."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if view.locator("[data-role=history] tbody tr", has_text=text).count():
            return
        view.locator("[data-endpoint-reload]").click()
        time.sleep(1)
    raise AssertionError(f"no {text!r} row in the endpoint history within {timeout_s:.0f}s")


def share(view, model: str, value: str) -> None:
    box = view.locator(f"input[type=number][data-share='{model}']")
    box.fill(value)
    box.dispatch_event("input")


def test_manage_endpoint_changes_traffic_and_undeploys(page, stack):
    endpoints_dir = deployed(stack)
    page.locator(".chapter-tab[data-chapter=training]").click()
    page.locator("#filter-search").fill("ep-new")
    card(page, RUN_ID).locator("[data-action=manage-endpoint]").click()
    view = page.locator("#endpoint-view")
    expect(view).to_have_attribute("data-endpoint-id", ENDPOINT)
    models = view.locator("[data-role=models] tbody tr")
    expect(models).to_have_count(2)
    expect(view.locator("tr[data-model=new-v2]")).to_contain_text("ep-new")
    expect(view.locator("[data-role=traffic-total]")).to_have_text("Total: 100%")

    share(view, "new-v2", "50")  # 70 + 50: Apply waits for 100
    expect(view.locator("[data-role=traffic-total]")).to_have_text("Total: 120%")
    expect(view.locator("[data-traffic-apply]")).to_be_disabled()
    expect(view.locator("input[type=range][data-share=new-v2]")).to_have_value("50")  # the slider follows
    share(view, "old-v1", "50")
    expect(view.locator("[data-traffic-apply]")).to_be_enabled()
    view.locator("[data-role=traffic-reason]").fill("A/B from the browser")
    view.locator("[data-traffic-apply]").click()
    history_until(view, "Traffic changed")
    assert read_endpoint(endpoints_dir, ENDPOINT)["traffic_split"] == {"old-v1": 50, "new-v2": 50}
    expect(view.locator("[data-role=history] tbody tr", has_text="Traffic changed")).to_contain_text("A/B from the browser")
    shot(page, "endpoint-view-traffic")

    view.locator("[data-undeploy=old-v1]").click()  # the page's fixture accepts the confirm
    history_until(view, "Undeployed")
    assert [m["id"] for m in read_endpoint(endpoints_dir, ENDPOINT)["deployed_models"]] == ["new-v2"]
    expect(models).to_have_count(1)
    shot(page, "endpoint-view-undeployed")
    page.keyboard.press("Escape")

    page.locator("#chapter-training [data-endpoints]").click()
    listed = page.locator("#endpoint-list [data-role=endpoint-list] tr[data-endpoint]", has_text=ENDPOINT)
    expect(listed).to_contain_text("ep-new 100%")
    listed.locator("[data-manage-endpoint]").click()
    expect(page.locator("#endpoint-view")).to_have_attribute("data-endpoint-id", ENDPOINT)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")

    wizard = open_wizard(page)
    wizard.locator("#wiz-name").fill("ep-wizard")
    wizard.locator("[data-wiz=next]").click()
    wizard.locator("[data-wiz=next]").click()
    expect(wizard.locator(f"#endpoint-choices option[value='{ENDPOINT}']")).to_have_count(1)


def test_the_run_view_manages_its_endpoint_and_the_deploy_dialog_picks_one(page, stack):
    """The run view's deployment has Manage Endpoint (spec §5.1), and the card's Deploy dialog offers your
    endpoints for "an existing endpoint", as the wizard does."""
    deployed(stack)
    page.locator(".chapter-tab[data-chapter=training]").click()
    page.locator("#filter-search").fill("ep-new")
    card(page, RUN_ID).locator("[data-action=view]").click()
    page.locator("#run-view [data-role=deployment] [data-action=manage-endpoint]").click()
    expect(page.locator("#endpoint-view")).to_have_attribute("data-endpoint-id", ENDPOINT)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")

    dialog = open_deploy_dialog(page, stack, "tr-ep-dialog", "ep-dialog", "")
    expect(dialog.locator(f"#endpoint-choices option[value='{ENDPOINT}']")).to_have_count(1)
    dialog.locator("[data-role=endpoint-picker]").fill(ENDPOINT)
    dialog.locator("[data-role=endpoint-picker]").press("Tab")  # the dialog reads its fields on change
    expect(dialog.locator("[data-role=deploy-summary]")).to_contain_text(f"endpoint {ENDPOINT}")
