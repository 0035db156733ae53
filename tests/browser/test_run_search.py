"""Lists at any size in Chromium (issue 26 part 4): 2,000 runs in Firestore, the oldest found by the
search box (the API searches; shared/services/listing.py), the pages read from the server, and a run
that matches the search arriving live while it is typed."""
from __future__ import annotations

import pytest

expect = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the Python Playwright client (make setup installs it)").expect

from tests.browser.conftest import shot
from tests.browser.test_dashboard import card
from tests.browser.test_run_cards import run_doc

pytestmark = pytest.mark.integration
COUNT = 2000


@pytest.fixture(scope="module")
def many(stack):
    """2,000 runs, one a minute back from a week ago: older than anything the other tests make."""
    from google.cloud import firestore

    client = firestore.Client(project=stack.stack.config.project)
    for start in range(0, COUNT, 500):  # Firestore's most writes per batch
        batch = client.batch()
        for n in range(start, start + 500):
            batch.set(client.collection("training_runs").document(f"tr-many-{n:05d}"),
                      run_doc(f"many-run-{n:05d}", ["completed", "failed"][n % 2], 10_080 + COUNT - n, run_number=n + 1))
        batch.commit()
    return client


def test_the_oldest_of_2000_runs_is_found_by_search(page, stack, many):
    expect(page.locator("#pagination")).to_contain_text("Page 1 of")
    expect(card(page, "tr-many-00000")).to_have_count(0)
    page.locator("#filter-search").fill("many-run-00000")
    expect(card(page, "tr-many-00000")).to_be_visible()
    expect(page.locator(".training-run-card")).to_have_count(1)
    shot(page, "run-search-oldest-of-2000")

    page.locator("#filter-search").fill("many-run")  # every one of them: read page by page from the server
    expect(page.locator(".training-run-card")).to_have_count(20)
    expect(card(page, f"tr-many-{COUNT - 1:05d}")).to_be_visible()
    page.locator("[data-page=next]").click()
    expect(page.locator("#pagination")).to_contain_text("Page 2")
    expect(card(page, f"tr-many-{COUNT - 21:05d}")).to_be_visible()
    expect(card(page, f"tr-many-{COUNT - 1:05d}")).to_have_count(0)


def test_a_new_run_matching_the_search_arrives_live(page, stack, many):
    page.locator("#filter-search").fill("many-late")
    expect(page.locator("[data-empty=filtered]")).to_be_visible()
    many.collection("training_runs").document("tr-many-late").set(run_doc("many-late-arrival", "running", 0))
    expect(card(page, "tr-many-late")).to_be_visible(timeout=5_000)
