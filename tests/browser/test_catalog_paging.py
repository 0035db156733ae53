"""Lists at any size in Chromium (issue 26 part 4), past the run list: 600 datasets and 150 schedules in
Firestore, more than a page of each. The oldest schedule is found by the schedules' search box, and the oldest
dataset in the wizard's dataset picker and in the run list's dataset filter (both search the server past one
page: dashboard/src/picker.js, shared/services/listing.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

expect = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the Python Playwright client (make setup installs it)").expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import open_wizard

pytestmark = pytest.mark.integration
DATASETS, SCHEDULES = 600, 150
WEEK_AGO = datetime.now(timezone.utc) - timedelta(days=7)


def _write(client, collection: str, docs: list[dict]) -> None:
    for start in range(0, len(docs), 500):  # Firestore's most writes per batch
        batch = client.batch()
        for doc in docs[start:start + 500]:
            batch.set(client.collection(collection).document(doc["id"]), doc)
        batch.commit()


@pytest.fixture(scope="module")
def seeded(stack):
    """600 datasets and 150 paused schedules of the demo team, one a minute back from a week ago (older than
    anything the other tests make: the oldest is n=0). Paused, so the local scheduler never fires them."""
    from google.cloud import firestore

    from shared.domain import schedules
    from tests.builders import dataset_body

    client = firestore.Client(project=stack.stack.config.project)
    made = lambda n, count: WEEK_AGO - timedelta(minutes=count - n)  # noqa: E731 — n=0 the oldest
    _write(client, "datasets", [{**dataset_body(name=f"paged-dataset-{n:03d}", stats={"rows": 1000 + n}),
                                 "id": f"ds-paged-{n:03d}", "team": "demo", "created_by": "developer@localhost",
                                 "created_at": made(n, DATASETS)} for n in range(DATASETS)])
    docs = []
    for n in range(SCHEDULES):
        request = schedules.parse_request({"name": f"paged-schedule-{n:03d}", "schedule_type": "daily",
                                           "time_of_day": "03:30", "timezone": "UTC",
                                           "run_template": {"name": "paged"}}, WEEK_AGO)
        doc = schedules.new_schedule(request, {"name": "paged", "model_type": "retrieval"}, f"ts-paged-{n:03d}",
                                     "developer@localhost", made(n, SCHEDULES), "demo")
        docs.append({**doc, "status": schedules.PAUSED, "next_run_at": None, "paused_at": WEEK_AGO,
                     "version": 1, "updated_at": WEEK_AGO})
    _write(client, "training_schedules", docs)
    return client


def test_the_oldest_of_150_schedules_is_found_by_search(page, stack, seeded):
    oldest = page.locator(".schedule-card", has_text="paged-schedule-000")
    expect(page.locator("[data-schedules-more]")).to_be_visible()  # a page, not all 150
    assert page.locator(".schedule-card").count() < SCHEDULES
    expect(oldest).to_have_count(0)
    page.locator("#schedule-search").fill("paged-schedule-000")
    expect(oldest).to_be_visible()
    expect(page.locator(".schedule-card")).to_have_count(1)
    expect(page.locator("[data-schedules-more]")).to_have_count(0)
    shot(page, "schedule-search-oldest-of-150")

    page.locator("#schedule-search").fill("paged-schedule")  # every one of them, read on with "Load more"
    expect(page.locator(".schedule-card")).to_have_count(24)
    page.locator("[data-schedules-more]").click()
    expect(page.locator(".schedule-card")).to_have_count(48)
    expect(page.locator(".schedule-card", has_text=f"paged-schedule-{SCHEDULES - 48:03d}")).to_be_visible()


def test_the_oldest_of_600_datasets_is_picked_in_the_wizard(page, stack, seeded):
    wizard = open_wizard(page)
    wizard.locator("#wiz-name").fill("browser-dataset-picker")
    wizard.locator("[data-wiz=next]").click()
    expect(wizard).to_have_attribute("data-step", "2")
    wizard.locator("[data-change=dataset]").click()
    modal = page.locator("#config-modal")
    expect(modal.locator("[data-config-more]")).to_be_visible()  # one page of the 600, and a way to the next
    expect(modal.locator(".config-option")).to_have_count(100)
    modal.locator("[data-role=config-search]").fill("paged-dataset-000")  # not on the page: the server finds it
    expect(modal.locator(".config-option")).to_have_count(1)
    expect(modal.locator("[data-role=config-details] h3")).to_have_text("paged-dataset-000")
    shot(page, "dataset-picker-oldest-of-600")
    page.keyboard.press("Enter")
    expect(modal).to_have_count(0)
    expect(wizard.locator("[data-config=dataset] b")).to_have_text("paged-dataset-000")


def test_the_run_list_is_filtered_by_the_oldest_of_600_datasets(page, stack, seeded):
    page.locator("#filter-dataset").click()
    modal = page.locator("#config-modal")
    expect(modal.locator("h2")).to_have_text("Filter runs by dataset")
    modal.locator("[data-role=config-search]").fill("paged-dataset-000")
    expect(modal.locator(".config-option")).to_have_count(1)
    modal.locator("[data-config-select]").click()
    expect(page.locator("#filter-dataset")).to_have_text("Dataset: paged-dataset-000 ▾")
    expect(page.locator("[data-empty=filtered]")).to_be_visible()  # no run was made from it
    page.locator("[data-clear-dataset]").click()
    expect(page.locator("#filter-dataset")).to_have_text("Dataset: All ▾")
