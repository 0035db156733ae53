"""Issue 26 parts 2 and 3 in Chromium through the local stack: a run whose Trainer ran out of memory is retried
from its card with the suggested "More GPU memory" preset (the GPU pre-flight answering beside the form), and the
wizard's config change modal (spec §4.5) is used by keyboard alone."""
from __future__ import annotations

import re

import pytest
expect = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the Python Playwright client (make setup installs it)").expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import card, open_wizard
from tests.builders import feature_config_body
from tests.integration.test_control_plane_flow import deliver
from tests.unit.scenario import job_timeline

pytestmark = pytest.mark.integration


def failed_out_of_memory(page, stack, catalog, name):
    """A run created through the API whose Trainer fails out of memory, as Vertex's events would say it."""
    response = stack.post("/api/training-runs", {"name": name, "base_experiment_id": catalog["best"]["id"],
                                                 "training_params": {"epochs": 3},
                                                 "gpu_config": {"gpu_type": "NVIDIA_L4", "gpu_count": 2}})
    assert response.status_code == 201, response.text
    run_id = response.json()["training_run"]["id"]
    c = card(page, run_id)
    expect(c).to_have_attribute("data-status", "running", timeout=30_000)
    deliver(stack, job_timeline(f"{run_id}-a1", fail_at="Trainer"), f"{run_id}-a1")  # "Trainer crashed: out of memory"
    expect(c).to_have_attribute("data-status", "failed", timeout=10_000)
    return run_id, c


def test_an_out_of_memory_run_is_retried_with_more_gpu_memory(page, stack, catalog):
    run_id, c = failed_out_of_memory(page, stack, catalog, "browser-oom")
    retry = c.locator("[data-action=retry]")
    expect(retry).to_have_text("Retry with more GPU memory")
    retry.click()

    form = page.locator("#retry-form")
    expect(form).to_be_visible()
    # pre-filled from the run, the preset suggested and not yet applied, the pre-flight's answer beside it
    expect(form.locator("[data-bind=gpu_type]")).to_have_value("NVIDIA_L4")
    expect(form.locator("[data-bind=gpu_count]")).to_have_value("2")
    expect(form.locator("[data-bind=epochs]")).to_have_value("3")
    expect(form.locator("[data-role=root-cause]")).to_contain_text("out of memory")
    preset = form.locator("[data-role=preset]")
    expect(preset).to_contain_text("More GPU memory")
    expect(preset).to_contain_text("A100 (40 GB each, was 24 GB) × 2")
    availability = form.locator("[data-role=gpu-availability]")
    expect(availability).not_to_have_text("Checking GPU quota…")
    expect(form.locator("[data-role=retry-changes]")).to_have_text("Retries as it last ran.")
    shot(page, "retry-form-oom")

    preset.locator("[data-preset]").click()
    expect(form.locator("[data-bind=gpu_type]")).to_have_value("NVIDIA_TESLA_A100")
    expect(preset.locator("[data-preset]")).to_have_text("Applied")
    expect(form.locator("[data-role=retry-changes]")).to_contain_text("GPU: 2x A100")
    expect(availability).not_to_have_text("Checking GPU quota…")  # asked again for the new shape

    # a field the API refuses is named beside it; nothing is retried
    form.locator("[data-bind=epochs]").fill("0")
    form.locator("[data-retry-submit]").click()
    expect(form.locator('[data-error-for="training_params.epochs"]')).to_contain_text("greater than or equal to 1")
    assert stack.run(run_id)["attempt"] == 1

    form.locator("[data-bind=epochs]").fill("2")
    form.locator("[data-retry-submit]").click()
    expect(form).to_have_count(0)
    expect(page.locator(".toast").last).to_contain_text(re.compile(r"attempt 2 queued with .*gpu_config\.gpu_type NVIDIA_TESLA_A100"))
    expect(c).to_have_attribute("data-status", re.compile("pending|submitting|running"), timeout=15_000)
    run = stack.run(run_id)
    assert run["attempt"] == 2 and run["gpu_config"]["gpu_type"] == "NVIDIA_TESLA_A100"
    assert run["gpu_config"]["machine_type"] == "a2-highgpu-2g" and run["training_params"]["epochs"] == 2
    assert run["last_retry"]["changes"]["gpu_config"]["gpu_type"] == "NVIDIA_TESLA_A100"
    assert run["attempts"][0]["error_message"] and run["attempts"][0]["shape"]["gpu_type"] == "NVIDIA_L4"
    expect(c.locator("[data-role=attempts]")).to_contain_text("NVIDIA_TESLA_A100")  # the new run shows the change


def test_the_config_change_modal_by_keyboard(page, stack, catalog):
    for name in ("config-050: Wide embeddings", "config-035: Minimal embeddings"):
        assert stack.post("/api/feature-configs", feature_config_body(name=name)).status_code == 201
    wizard = open_wizard(page)
    wizard.locator("#wiz-name").fill("browser-config-modal")
    wizard.locator("[data-wiz=next]").click()
    expect(wizard).to_have_attribute("data-step", "2")
    inherited = wizard.locator("[data-config=feature_config]")
    current = inherited.locator("b").inner_text()

    change = wizard.locator("[data-change=feature_config]")
    change.focus()
    page.keyboard.press("Enter")
    modal = page.locator("#config-modal")
    expect(modal).to_be_visible()
    search = modal.locator("[data-role=config-search]")
    expect(search).to_be_focused()
    expect(modal.locator("h2")).to_have_text("Select Feature Config")
    highlighted = modal.locator(".config-option[aria-selected=true]")
    expect(highlighted).to_contain_text(current)  # the current config, highlighted, its fields beside it
    expect(highlighted).to_contain_text("★ Current")
    expect(modal.locator("[data-role=config-details]")).to_contain_text("Query side")
    expect(highlighted).to_contain_text("customer_id: 32d")

    # Escape cancels: nothing changes, and the focus is back on [Change]
    page.keyboard.press("Escape")
    expect(modal).to_have_count(0)
    expect(inherited.locator("b")).to_have_text(current)
    expect(change).to_be_focused()

    page.keyboard.press("Enter")
    expect(search).to_be_focused()
    expect(highlighted).to_contain_text(current)
    total = modal.locator(".config-option").count()  # the catalog's configs and the two above, at least
    assert total >= 3
    page.keyboard.type("wide")
    expect(modal.locator(".config-option")).to_have_count(1)
    expect(modal.locator("[data-role=config-details] h3")).to_have_text("config-050: Wide embeddings")
    page.keyboard.press("Backspace")
    for _ in "wid":
        page.keyboard.press("Backspace")
    expect(modal.locator(".config-option")).to_have_count(total)
    names = modal.locator(".config-option b").all_inner_texts()  # in the API's order
    page.keyboard.press("End")
    expect(highlighted).to_contain_text(names[-1])
    page.keyboard.press("Home")
    expect(highlighted).to_contain_text(names[0])
    steps = next(i for i, name in enumerate(names) if name != current)  # the first config not the current one
    for _ in range(steps):
        page.keyboard.press("ArrowDown")
    target = names[steps]
    expect(highlighted).to_contain_text(target)
    expect(modal.locator("[data-role=config-details] h3")).to_have_text(target)
    shot(page, "config-change-modal")

    # Tab goes round the modal's controls and never leaves it
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate("() => Boolean(document.activeElement.closest('#config-modal'))")
    for _ in range(10):  # round to the search box
        if page.evaluate("() => document.activeElement.matches('[data-role=config-search]')"):
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # selects the highlighted config
    expect(modal).to_have_count(0)
    expect(inherited.locator("b")).to_have_text(target)
    expect(wizard.locator("[data-change=feature_config]")).to_be_focused()
