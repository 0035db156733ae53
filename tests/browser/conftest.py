"""Browser tests of the Training dashboard: Debian's Chromium driven by Playwright against the local
stack (both emulators, every function under functions-framework; a scripted pipeline service and
compiler so no TFX runs — tests drive runs through stages with sink-shaped events)."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import LocalStack
from tests.integration.scripted_pipeline_service import ScriptedPipelineService

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TRAINYARD_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "test-output" / "screenshots"
# Without the background-networking flags Chromium keeps calling Google's hosts, which this network refuses.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def _missing() -> list[str]:
    missing = []
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing.append("chromium (Debian package; `make tools` installs it)")
    if not shutil.which("node"):
        missing.append("node")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the Python playwright package (`make setup`)")
    if not (REPO / "dashboard" / "dist" / "index.html").is_file():
        missing.append("the built dashboard (dashboard/dist; `make setup` runs scripts/setup_dashboard.sh)")
    missing += [tool for tool in ("gcloud", "java") if not shutil.which(tool)]
    return missing


MISSING = _missing()


def pytest_collection_modifyitems(config, items):
    if MISSING:
        skip = pytest.mark.skip(reason=f"browser tests need: {', '.join(MISSING)}")
        for item in items:
            if "tests/browser" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    from scripts.stack import Stack, StackConfig

    pipeline = ScriptedPipelineService().start()
    config = StackConfig.ephemeral(tmp_path_factory.mktemp("browser-stack"), services=(), extra_env={
        "TRAINYARD_LOCAL_PIPELINE_URL": pipeline.url,
        "TRAINYARD_COMPILER": "tests.integration.scripted_compiler:compile_run",
        # An import goes in parts of one run each (no time left after the first): the dialog must put them together.
        "TRAINYARD_IMPORT_REQUEST_S": "0",
    })
    local = Stack(config)
    local.up()
    os.environ.update(config.emulator_env())
    try:
        yield LocalStack(local, pipeline)
    finally:
        local.down()
        pipeline.stop()


@pytest.fixture(scope="session")
def catalog(stack):
    return seed_experiments(stack)


def seed_experiments(stack) -> dict:
    """A dataset, configs and seven experiments, made through the API (six retrieval, one ranking)."""
    from tests.builders import dataset_body, feature_config_body, model_config_body

    post = stack.post
    dataset = post("/api/datasets", dataset_body(stats={"rows": 2_450_000, "users": 98_000, "items": 36_000})).json()["item"]
    features = post("/api/feature-configs", feature_config_body()).json()["item"]
    model = post("/api/model-configs", model_config_body()).json()["item"]
    ranking_model = post("/api/model-configs", model_config_body("ranking")).json()["item"]
    experiments = []
    for i, (recall, lr, batch) in enumerate([(0.61, 0.05, 1024), (0.58, 0.1, 2048), (0.55, 0.1, 4096),
                                             (0.52, 0.02, 1024), (0.49, 0.05, 512), (0.44, 0.1, 8192)]):
        response = post("/api/experiments", {
            "name": f"quick test {i + 1}", "model_type": "retrieval", "dataset_id": dataset["id"],
            "feature_config_id": features["id"], "model_config_id": model["id"],
            "params": {"batch_size": batch, "learning_rate": lr, "epochs": 20},
            "metrics": {"recall_at_5": recall / 5, "recall_at_10": recall / 3, "recall_at_100": recall}})
        assert response.status_code == 201, response.text
        experiments.append(response.json()["item"])
    response = post("/api/experiments", {
        "name": "ranking quick test", "model_type": "ranking", "dataset_id": dataset["id"],
        "feature_config_id": features["id"], "model_config_id": ranking_model["id"],
        "params": {"batch_size": 1024, "learning_rate": 0.05}, "metrics": {"test_rmse": 0.81, "test_mae": 0.6}})
    assert response.status_code == 201, response.text
    return {"dataset": dataset, "experiments": experiments, "best": experiments[0]}


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # The machine's two cores are shared: a cold emulator's first snapshot can take seconds. Budgets
    # that matter (live updates within a second, first render) are asserted with their own timeouts.
    expect.set_options(timeout=10_000)

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture()
def page(browser, stack, catalog):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Chromium reports what the page's Content-Security-Policy refused on the console ("Refused to …
    # because it violates the following Content Security Policy directive"): none may happen.
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(stack.api + "/training#training")
    # Ready and live: the run list's first snapshot arrived (the first page after the stack starts
    # waits for the emulator's JVM to warm up, which on a busy machine takes several seconds).
    # A function, not an expression: Playwright evaluates a function once and polls it, where it would eval an
    # expression on every poll, which the page's CSP (no unsafe-eval) refuses (microsoft/playwright#36986).
    page.wait_for_function("() => window.__trainyard && window.__trainyard.firstRunsRenderMs != null", timeout=30_000)
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def shot(page, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
