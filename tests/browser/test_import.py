"""Issue 26 part 7 through the page, in Chromium: "Import experiments" in the experiments chapter reads a REAL
MLflow tracking server (SQLite backend, started from its own venv as tests/integration/test_import_mlflow.py
does, and seeded with MLflow's own client) through POST /api/experiments:import-from. A host the deployment
does not read from is named beside the tracking URI; a dry run checks every run; the import answers per run
(created, skipped, failed with the field at fault); the imported experiments appear in the chapter's table;
a second import answers unchanged and adds nothing.

Runs after test_dashboard.py (which counts the seeded experiments) in the session's one stack."""
from __future__ import annotations

import pytest
expect = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the Python Playwright client (make setup installs it)").expect

from tests.browser.conftest import shot
from tests.integration.test_import_mlflow import EXPERIMENT, MLFLOW, mlflow_server  # noqa: F401 — the fixture

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def mlflow_venv():
    if not (MLFLOW / "mlflow").exists():
        pytest.skip("no MLflow venv at .local/mlflow-venv: run scripts/setup_mlflow.sh (make tools does)")


def open_dialog(page):
    page.locator(".chapter-tab[data-chapter=experiments]").click()
    page.locator("[data-import-experiments]").click()
    dialog = page.locator("#import-dialog")
    expect(dialog).to_be_visible()
    return dialog


def test_experiments_are_imported_through_the_dialog_and_a_re_import_is_unchanged(page, stack, mlflow_server):
    url, runs = mlflow_server
    dialog = open_dialog(page)
    expect(dialog.locator("[data-bind=team]")).to_have_value("demo")

    # a host this deployment does not read from is refused before anything is read, named beside its field
    dialog.locator("[data-bind=tracking_uri]").fill("http://169.254.169.254/computeMetadata/v1")
    dialog.locator("[data-bind=experiment]").fill(EXPERIMENT)
    dialog.locator("[data-import-submit]").click()
    expect(dialog.locator('[data-error-for="tracking_uri"]')).to_contain_text("not a tracking server this deployment reads")

    # Check: every run read and validated, nothing written
    dialog.locator("[data-bind=tracking_uri]").fill(url)
    dialog.locator("[data-import-check]").click()
    counts = dialog.locator("[data-role=import-counts]")
    expect(counts).to_contain_text("Checked MLflow experiment", timeout=30_000)
    expect(counts).to_contain_text("3 valid, 1 skipped, 1 failed")
    assert not [e for e in stack.get("/api/experiments", limit=500).json()["items"]
                if (e.get("origin") or {}).get("location") == url]

    parts = []  # the stack answers one run a request (TRAINYARD_IMPORT_REQUEST_S=0): the dialog asks again
    page.on("request", lambda r: parts.append((r.post_data_json or {}).get("after"))
            if r.url.endswith("/api/experiments:import-from") and r.method == "POST" else None)
    dialog.locator("[data-import-submit]").click()
    expect(counts).to_contain_text("Imported MLflow experiment", timeout=30_000)
    expect(counts).to_contain_text("3 created, 1 skipped, 1 failed")
    assert len(parts) == 5 and parts[0] is None and None not in parts[1:], parts  # one part per run, each from the last
    expect(dialog.locator(f"tr[data-run-id='{runs['lucky-fox']}']")).to_have_attribute("data-result", "created")
    expect(dialog.locator(f"tr[data-run-id='{runs['still-going']}']")).to_contain_text("skipped (running)")
    failed = dialog.locator(f"tr[data-run-id='{runs['no-features']}']")
    expect(failed).to_have_attribute("data-result", "failed")
    expect(failed.locator("[data-role=run-error]")).to_contain_text("feature_configs.artifact")
    shot(page, "import-experiments-created")

    # the imported experiments appear in the chapter, live
    dialog.locator(".modal-foot [data-close]").click()
    table = page.locator("#top-configs")
    for name in ("lucky-fox", "brave-owl", "wide-elk"):
        expect(table).to_contain_text(name, timeout=20_000)
    imported = [e for e in stack.get("/api/experiments", limit=500).json()["items"]
                if (e.get("origin") or {}).get("location") == url]
    assert sorted(e["name"] for e in imported) == ["brave-owl", "lucky-fox", "wide-elk"]

    # again: unchanged, nothing added
    dialog = open_dialog(page)
    dialog.locator("[data-bind=tracking_uri]").fill(url)
    dialog.locator("[data-bind=experiment]").fill(EXPERIMENT)
    dialog.locator("[data-import-submit]").click()
    expect(dialog.locator("[data-role=import-counts]")).to_contain_text("3 unchanged, 1 skipped, 1 failed", timeout=30_000)
    expect(dialog.locator(f"tr[data-run-id='{runs['lucky-fox']}']")).to_have_attribute("data-result", "unchanged")
    shot(page, "import-experiments-unchanged")
    again = [e for e in stack.get("/api/experiments", limit=500).json()["items"]
             if (e.get("origin") or {}).get("location") == url]
    assert sorted(e["id"] for e in again) == sorted(e["id"] for e in imported)


def test_an_unreachable_tracking_server_is_said_not_a_server_error(page):
    dialog = open_dialog(page)
    dialog.locator("[data-bind=tracking_uri]").fill("http://127.0.0.1:9")  # discard: nothing listens
    dialog.locator("[data-bind=experiment]").fill(EXPERIMENT)
    dialog.locator("[data-import-submit]").click()
    expect(dialog.locator("[data-role=general-error]")).to_contain_text("MLflow at http://127.0.0.1:9")
