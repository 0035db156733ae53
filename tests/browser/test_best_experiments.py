"""The best-experiments chapter at any size (issue 26 part 4): it ranks what its Firestore listener holds (at
most live.LISTENED_CATALOG experiments) with the server's best of each model type over every experiment
(GET /api/experiments/top-for-training), so the best is on top however many there are. 505 weak experiments
and one strong one the listener cannot hold (its id sorts after every other, and a query without an order
returns documents by id), written to the emulator and removed afterwards (other modules count experiments)."""
from __future__ import annotations

import re

import pytest

expect = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the Python Playwright client (make setup installs it)").expect

from tests.browser.conftest import shot

pytestmark = pytest.mark.integration
WEAK = 505
BEST_ID = "zzz-best-experiment"


@pytest.fixture(scope="module")
def crowded(stack):
    from google.cloud import firestore

    client = firestore.Client(project=stack.stack.config.project)
    docs = [{"id": f"exp-bulk-{n:03d}", "name": f"bulk experiment {n:03d}", "model_type": "retrieval",
             "team": "demo", "created_by": "developer@localhost", "params": {"epochs": 1},
             "metrics": {"recall_at_100": 0.01 + n / 100_000}} for n in range(WEAK)]
    docs.append({"id": BEST_ID, "name": "best of all, past the listener", "model_type": "retrieval", "team": "demo",
                 "created_by": "developer@localhost", "params": {"epochs": 1}, "metrics": {"recall_at_100": 0.99}})
    for start in range(0, len(docs), 500):  # Firestore's most writes per batch
        batch = client.batch()
        for doc in docs[start:start + 500]:
            batch.set(client.collection("experiments").document(doc["id"]), doc)
        batch.commit()
    yield docs
    for start in range(0, len(docs), 500):
        batch = client.batch()
        for doc in docs[start:start + 500]:
            batch.delete(client.collection("experiments").document(doc["id"]))
        batch.commit()


def test_the_best_experiment_is_on_top_past_what_the_listener_holds(page, crowded):
    page.locator(".chapter-tab[data-chapter=experiments]").click()
    rows = page.locator("#top-configs tbody tr")
    expect(rows.first).to_contain_text("best of all, past the listener", timeout=20_000)
    expect(rows.first).to_contain_text("0.990")
    # The listener holds 500 of the 512: the count says there are more than it shows.
    expect(page.locator(".kpi-row[data-exp-type=retrieval]")).to_contain_text(re.compile(r"\d{3}\+"))
    assert BEST_ID not in {e["id"] for e in page.evaluate("window.__trainyard.state.experiments")}
    shot(page, "best-experiments-past-the-listener")
    rows.first.click()
    expect(page.locator("#experiment-view")).to_contain_text("best of all, past the listener")
