"""Lists at any size against the Firestore emulator (and the in-memory fake, which must agree): 2,100
runs read page by page through shared/services/listing.py while new runs keep arriving — every one of
them once, in order, none missed; the search finds the oldest; filters the query serves and filters
checked on the scan give the same rows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import run_document, runs
from shared.services import listing, search_index
from tests.builders import demo_member
from tests.integration.test_repository_contract import firestore_host, repo, store  # noqa: F401 (fixtures)

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
COUNT = 2100
KEY = b"integration-cursor-key-0123456789"


def doc(n: int, **fields) -> dict:
    """Run n, made n minutes after T0, as the repository stores it (checked, with its search tokens)."""
    return run_document.check({
        "id": f"tr-{n:05d}", "run_number": n, "name": f"recs-{n:05d}", "description": "nightly" if n % 7 == 0 else "",
        "status": runs.FAILED if n % 3 == 0 else runs.COMPLETED, "model_type": "retrieval", "team": "demo",
        "schedule_id": "sch-1" if n % 10 == 0 else None, "created_at": T0 + timedelta(minutes=n),
        "created_by": "dev@example.com", "version": 1, **fields})


def seed(store, docs: list[dict]) -> None:
    """Written in batches of 500 (Firestore's most per batch write) rather than one create a run."""
    if store.kind == "memory":
        store.repo.runs.update({d["id"]: d for d in docs})
        return
    db = store.repo.db
    for start in range(0, len(docs), 500):
        batch = db.batch()
        for d in docs[start:start + 500]:
            batch.set(db.collection("training_runs").document(d["id"]), d)
        batch.commit()


def pages(repo, args: dict, arriving=None) -> list[str]:
    who, _ = demo_member()
    seen, token, turns = [], None, 0
    while True:
        page = listing.list_runs(repo, {**args, **({"page_token": token} if token else {})}, who, KEY)
        seen += [r["id"] for r in page["training_runs"]]
        token, turns = page["next_page_token"], turns + 1
        if arriving:
            arriving(turns)
        if not token:
            return seen
        assert turns < 10 * COUNT


@pytest.fixture
def many(store):
    seed(store, [doc(n) for n in range(COUNT)])
    return store


def test_every_page_of_2100_runs_while_new_ones_arrive_has_each_run_once_in_order(many):
    newer = []

    def arrive(turn: int) -> None:  # between pages, a run newer than all: it must shift nothing
        newer.append(doc(COUNT + turn, name=f"late-{turn}"))
        seed(many, newer[-1:])

    seen = pages(many.repo, {"page_size": "100"}, arrive)
    assert seen == [f"tr-{n:05d}" for n in range(COUNT - 1, -1, -1)]
    assert len(newer) == COUNT // 100  # one a page read
    first = listing.list_runs(many.repo, {"page_size": "5"}, demo_member()[0], KEY)
    assert [r["id"] for r in first["training_runs"]] == [d["id"] for d in newer[::-1][:5]]
    assert first["total"] == COUNT + len(newer)


def test_the_oldest_is_found_by_search_and_filters_agree_between_query_and_scan(many):
    assert pages(many.repo, {"search": "RECS-00000"}) == ["tr-00000"]
    assert pages(many.repo, {"search": "00001"}) == ["tr-00001"]
    nightly_failed = pages(many.repo, {"search": "nightly", "status": "failed", "page_size": "50"})
    assert nightly_failed == [f"tr-{n:05d}" for n in range(COUNT - 1, -1, -1) if n % 21 == 0]
    window = pages(many.repo, {"since": (T0 + timedelta(minutes=1000)).isoformat(),
                               "until": (T0 + timedelta(minutes=1010)).isoformat()})
    assert window == [f"tr-{n:05d}" for n in range(1009, 999, -1)]
    by_schedule = pages(many.repo, {"schedule_id": "sch-1", "status": "failed,completed", "page_size": "40"})
    assert by_schedule == [f"tr-{n:05d}" for n in range(COUNT - 1, -1, -1) if n % 10 == 0]
    failed = listing.list_runs(many.repo, {"status": "failed"}, demo_member()[0], KEY)
    assert failed["total"] == len(range(0, COUNT, 3))


def test_runs_written_before_search_tokens_are_found_after_the_backfill(store):
    seed(store, [{k: v for k, v in doc(n).items() if k != "search_tokens"} for n in range(1200)])
    assert pages(store.repo, {"search": "recs-00003"}) == []
    swept = 0
    while (step := search_index.backfill(store.repo)) or not store.repo.get_status(search_index.STATUS)["done_at"]:
        swept += step
    assert swept == 1200
    assert pages(store.repo, {"search": "recs-00003"}) == ["tr-00003"]


def test_schedules_and_the_catalog_page_newest_first_across_team_groups(store):
    from shared.adapters.repository import IN_LIMIT

    teams = [f"team-{n:02d}" for n in range(IN_LIMIT + 5)]  # two `in` queries, merged
    for n in range(60):
        at = T0 + timedelta(minutes=n)
        store.repo.create_schedule({"id": f"ts-{n:03d}", "name": f"s {n}", "status": ("active", "paused")[n % 2],
                                    "team": teams[n % len(teams)], "created_at": at})
        store.repo.create_catalog("experiments", {"id": f"ex-{n:03d}", "name": f"e {n}", "team": teams[n % len(teams)],
                                                  "model_type": ("retrieval", "ranking")[n % 2], "created_at": at})

    def every(read) -> list[str]:
        seen, after = [], None
        while page := read(7, after):
            seen += [d["id"] for d in page]
            after = (page[-1]["created_at"], page[-1]["id"])
        return seen

    assert every(lambda limit, after: store.repo.page_schedules({"team": teams}, limit, after)) == \
        [f"ts-{n:03d}" for n in range(59, -1, -1)]
    assert every(lambda limit, after: store.repo.page_schedules({"team": teams, "status": "paused"}, limit, after)) == \
        [f"ts-{n:03d}" for n in range(59, -1, -2)]
    assert every(lambda limit, after: store.repo.page_catalog("experiments", {"team": teams, "model_type": "retrieval"},
                                                              limit, after)) == [f"ex-{n:03d}" for n in range(58, -1, -2)]
    assert store.repo.page_catalog("experiments", {"team": []}, 5) == []


def test_a_run_written_without_its_id_field_is_listed_and_paged_by_its_document_name(store):
    """A seed or a console edit may leave out the `id` the API writes: the page's cursor is the name."""
    if store.kind == "memory":
        pytest.skip("the fake holds documents by id only; a document without one is Firestore's case")
    docs = [doc(n) for n in range(5)]
    seed(store, docs)
    bare = {k: v for k, v in docs[2].items() if k != "id"}
    store.repo.db.collection("training_runs").document("tr-00002").set(bare)
    assert pages(store.repo, {"page_size": "2"}) == [f"tr-{n:05d}" for n in range(4, -1, -1)]
