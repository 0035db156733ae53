"""Lists at any size (shared/services/listing.py): search, filters and signed cursor pages behind
GET /api/training-runs, the schedules and the catalog, on the in-memory repository."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import run_search, runs
from shared.http.app import Dependencies, create_app
from shared.services import listing, search_index
from tests.builders import local_settings, run_body

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def client(repo, publisher, store):
    settings = local_settings("dev@example.com", TOKEN)
    return create_app(Dependencies(repo=repo, publisher=publisher, store=store, settings=settings)).test_client()


def seed_runs(repo, ids, count: int, **extra) -> list[str]:
    """`count` runs made an hour apart (oldest first), named run-0000…, some failed, two schedules."""
    from shared.services import intake
    from tests.builders import demo_member

    made = []
    for n in range(count):
        run = intake.create_run(repo, _Effects(), run_body(ids["experiment"], name=f"run-{n:04d}",
                                                           description="nightly" if n % 3 == 0 else "adhoc"),
                                demo_member()[0], demo_member()[1], at=T0 + timedelta(hours=n))
        change = {"status": runs.FAILED} if n % 4 == 0 else {}
        if n % 5 == 0:
            change["schedule_id"] = "sch-a"
        if change or extra:
            repo.mutate_run(run["id"], lambda d, c=change: {**d, **c, **extra})
        made.append(run["id"])
    return made


class _Effects:
    def __init__(self):
        from tests.fakes import FakePublisher

        self.publisher, self.scheduler_jobs = FakePublisher(), None


def every_page(client, query: str, size: int = 7, token: str = None) -> list[dict]:
    rows = []
    for _ in range(1000):
        url = f"/api/training-runs?page_size={size}{query}" + (f"&page_token={token}" if token else "")
        response = client.get(url, headers=AUTH)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["training_runs"]) <= size
        rows += body["training_runs"]
        token = body["next_page_token"]
        if not token:
            return rows
    raise AssertionError("the pages never ended")


# ----------------------------------------------------------------------------- the tokens


def test_tokens_are_prefixes_of_each_value_and_word_and_a_search_matches_every_term():
    doc = {"id": "tr-42", "name": "Movie-Recs weekly", "description": "the big one", "created_by": "ann@x.io",
           "run_number": 12, "dataset": {"id": "d", "name": "clicks-2026"}}
    have = set(run_search.tokens(doc))
    assert {"movie-recs weekly", "movie-r", "recs", "recs w", "week", "tr-4", "42", "ann@x", "io", "#12", "clicks"} <= have
    assert "ecs" not in have and all(t == t.lower() and len(t) <= run_search.MAX_PREFIX for t in have)
    assert run_search.matches(doc, run_search.terms("RECS week"))
    assert not run_search.matches(doc, run_search.terms("recs monthly"))
    assert run_search.query_token(run_search.terms("a recs weekly")) == "weekly"
    described = {"name": "x", "description": "Weekly refresh, all regions " + "filler " * 60 + "lastword"}
    assert run_search.matches(described, ["refr", "region"]) and not run_search.matches(described, ["weekly-refresh"])
    assert not run_search.matches(described, ["lastword"])  # past the first MAX_WORDS words of a description
    assert len(run_search.tokens(described)) < 60


def test_a_term_longer_than_a_stored_prefix_must_appear_in_full():
    doc = {"name": "a" * 30 + "-end"}
    assert run_search.matches(doc, ["a" * 30 + "-e"])
    assert not run_search.matches(doc, ["a" * 30 + "-x"])


def test_every_write_stores_the_tokens_of_the_fields_as_they_are(repo, ids):
    run_id = seed_runs(repo, ids, 1)[0]
    assert "run-0000" in repo.get_run(run_id)["search_tokens"] and run_id in repo.get_run(run_id)["search_tokens"]
    repo.mutate_run(run_id, lambda d: {**d, "description": "renamed thing"})
    assert "renamed" in repo.get_run(run_id)["search_tokens"] and "nightly" not in repo.get_run(run_id)["search_tokens"]


# ----------------------------------------------------------------------------- runs


def test_every_page_of_250_runs_newest_first_without_a_duplicate_or_a_hole(client, repo, ids):
    made = seed_runs(repo, ids, 250)
    rows = every_page(client, "", 13)
    assert [r["id"] for r in rows] == made[::-1]
    assert "search_tokens" not in rows[0]  # bookkeeping, not part of the run's view


def test_search_finds_the_oldest_run_and_filters_combine_server_side(client, repo, ids):
    made = seed_runs(repo, ids, 120)
    oldest = every_page(client, "&search=RUN-0000")
    assert [r["id"] for r in oldest] == [made[0]]
    nightly_failed = every_page(client, "&search=nightly&status=failed", 5)
    assert [r["id"] for r in nightly_failed] == [made[n] for n in range(119, -1, -1) if n % 12 == 0]
    window = every_page(client, f"&since={(T0 + timedelta(hours=10)).isoformat()}"
                                f"&until={(T0 + timedelta(hours=20)).isoformat()}".replace("+", "%2B"))
    assert [r["id"] for r in window] == [made[n] for n in range(19, 9, -1)]
    scheduled = every_page(client, "&schedule_id=sch-a&status=failed,completed")
    assert [r["id"] for r in scheduled] == [made[n] for n in range(119, -1, -1) if n % 20 == 0]
    assert every_page(client, "&search=run-01 nightly") == [r for r in every_page(client, "&search=nightly")
                                                            if r["name"].startswith("run-01")]


def test_the_total_counts_the_matches_where_the_query_alone_decides(client, repo, ids):
    seed_runs(repo, ids, 40)
    assert client.get("/api/training-runs?status=failed", headers=AUTH).get_json()["total"] == 10
    assert client.get("/api/training-runs?search=nightly", headers=AUTH).get_json()["total"] is None


def test_a_rare_filter_reads_a_bounded_number_of_rows_per_page_and_still_finds_everything(repo, ids, monkeypatch):
    made = seed_runs(repo, ids, 90)
    monkeypatch.setattr(listing, "MAX_SCAN", 20)
    reads = []
    real = repo.list_runs
    monkeypatch.setattr(repo, "list_runs", lambda f, limit, after=None: reads.append(limit) or real(f, limit, after))
    who = _member()
    found, args = [], {"search": "nightly", "status": "failed", "page_size": "2"}
    while True:
        page = listing.list_runs(repo, args, who, b"k" * 32)
        found += [r["id"] for r in page["training_runs"]]
        if not page["next_page_token"]:
            break
        args = {**args, "page_token": page["next_page_token"]}
    assert found == [made[n] for n in range(89, -1, -1) if n % 12 == 0]
    assert max(reads) <= 50  # a batch; the scan stops past MAX_SCAN rows and the token resumes it


def _member():
    from tests.builders import demo_member

    return demo_member()[0]


@pytest.mark.parametrize("query, field", [
    ("page_size=0", "page_size"), ("page_size=101", "page_size"), ("page_size=ten", "page_size"),
    ("status=sleeping", "status"), ("status=failed,sleeping", "status"), ("since=yesterday", "since"),
    ("since=2026-02-01&until=2026-01-01", "until"), ("deleted=true&status=failed", "deleted"),
    ("page_token=garbage", "page_token"), ("model_type=sequential", "model_type")])
def test_a_bad_list_parameter_is_a_400_naming_it(client, repo, ids, query, field):
    response = client.get(f"/api/training-runs?{query}", headers=AUTH)
    assert response.status_code == 400, response.get_json()
    assert [e["field"] for e in response.get_json()["errors"]] == [field]


def test_a_page_token_is_good_only_for_the_list_and_filters_it_was_issued_for(client, repo, ids):
    seed_runs(repo, ids, 30)
    token = client.get("/api/training-runs?page_size=5&status=failed", headers=AUTH).get_json()["next_page_token"]
    assert client.get(f"/api/training-runs?page_size=5&status=failed&page_token={token}", headers=AUTH).status_code == 200
    for other in ("status=completed", "search=run", "", "team=other"):
        response = client.get(f"/api/training-runs?page_size=5&{other}&page_token={token}", headers=AUTH)
        assert response.status_code == 400 and response.get_json()["errors"][0]["field"] == "page_token"
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/api/training-runs?status=failed&page_token={forged}", headers=AUTH).status_code == 400
    assert client.get(f"/api/datasets?page_token={token}", headers=AUTH).status_code == 400


def test_the_registry_lists_registered_versions_only(client, repo, ids):
    made = seed_runs(repo, ids, 12)
    for n in (2, 5, 7):
        repo.mutate_run(made[n], lambda d: {**d, "status": runs.COMPLETED, "vertex_model_resource_name": "m/1"})
    repo.mutate_run(made[9], lambda d: {**d, "status": runs.COMPLETED})
    rows = every_page(client, "&status=completed,not_blessed&registered=true", 2)
    assert [r["id"] for r in rows] == [made[7], made[5], made[2]]


def test_a_run_written_before_search_tokens_is_found_once_the_backfill_has_swept(client, repo, ids):
    made = seed_runs(repo, ids, 7)
    for run_id in made:  # as Firestore holds runs written before the tokens existed
        repo.runs[run_id].pop("search_tokens")
    assert every_page(client, "&search=run-0003") == []
    assert search_index.backfill(repo, batch=3) == 3 and repo.get_status(search_index.STATUS)["after"]
    assert search_index.backfill(repo, batch=3) == 3 and search_index.backfill(repo, batch=3) == 1
    assert repo.get_status(search_index.STATUS)["done_at"] and search_index.backfill(repo, batch=3) == 0
    assert [r["id"] for r in every_page(client, "&search=run-0003")] == [made[3]]
    assert [r["id"] for r in every_page(client, "")] == made[::-1]


def test_the_backfill_sweeps_again_when_the_tokens_change(repo, ids, monkeypatch):
    seed_runs(repo, ids, 3)
    assert search_index.backfill(repo) == 0  # current already: nothing written
    monkeypatch.setattr(run_search, "VERSION", run_search.VERSION + 1)
    monkeypatch.setattr(run_search, "MAX_PREFIX", 4)
    writes = repo.writes
    assert search_index.backfill(repo) == 3 and repo.writes == writes + 3
    assert all(max(map(len, r["search_tokens"])) <= 4 for r in repo.runs.values())


def test_new_runs_arriving_between_pages_shift_nothing_already_read(client, repo, ids):
    made = seed_runs(repo, ids, 30)
    first = client.get("/api/training-runs?page_size=10", headers=AUTH).get_json()
    newer = seed_runs(repo, ids, 5, created_at=T0 + timedelta(days=30))
    rest = every_page(client, "", 10, token=first["next_page_token"])
    assert [r["id"] for r in first["training_runs"] + rest] == made[::-1]
    assert {r["id"] for r in every_page(client, "", 10)} == set(made) | set(newer)


# ----------------------------------------------------------------------------- schedules and the catalog


def test_the_catalog_pages_and_searches(client, repo, ids):
    from shared.services import catalog_entries
    from tests.builders import dataset_body, demo_member

    for n in range(23):
        catalog_entries.create(repo, "datasets", dataset_body(name=f"clicks-{n:02d}"), *demo_member())
    names, token = [], None
    while True:
        body = client.get("/api/datasets?page_size=4" + (f"&page_token={token}" if token else ""),
                          headers=AUTH).get_json()
        names += [d["name"] for d in body["items"]]
        token = body["next_page_token"]
        if not token:
            break
    assert len(names) == len(set(names)) == 24  # with seed_catalog's own dataset
    found = client.get("/api/datasets?search=CLICKS-07", headers=AUTH).get_json()
    assert [d["name"] for d in found["items"]] == ["clicks-07"] and found["next_page_token"] is None
    assert client.get("/api/datasets?page_size=500", headers=AUTH).status_code == 400
    assert client.get("/api/datasets?limit=3", headers=AUTH).get_json()["page_size"] == 3  # the older name
    assert client.get("/api/datasets?limit=200", headers=AUTH).status_code == 200  # with its older bound
    assert client.get("/api/datasets?limit=501", headers=AUTH).get_json()["errors"][0]["field"] == "limit"
    assert client.get("/api/datasets?model_type=ranking", headers=AUTH).get_json()["errors"][0]["field"] == \
        "model_type"  # datasets have no model type (and no index to filter by one)
    typed = client.get("/api/model-configs?model_type=retrieval&limit=200", headers=AUTH).get_json()["items"]
    assert typed and all(m["model_type"] == "retrieval" for m in typed)


def test_schedules_page_filter_by_several_statuses_and_search(client, repo):
    for n in range(9):
        repo.create_schedule({"id": f"sch-{n}", "name": f"nightly {n}" if n % 2 else f"weekly {n}",
                              "status": ("active", "paused", "cancelled")[n % 3], "team": "demo",
                              "created_at": T0 + timedelta(hours=n)})
    body = client.get("/api/training/schedules?status=active,paused&page_size=2", headers=AUTH).get_json()
    ids, token = [s["id"] for s in body["schedules"]], body["next_page_token"]
    while token:
        body = client.get(f"/api/training/schedules?status=active,paused&page_size=2&page_token={token}",
                          headers=AUTH).get_json()
        ids, token = ids + [s["id"] for s in body["schedules"]], body["next_page_token"]
    assert ids == [f"sch-{n}" for n in (7, 6, 4, 3, 1, 0)]
    weekly = client.get("/api/training/schedules?search=weekly&status=active", headers=AUTH).get_json()
    assert [s["id"] for s in weekly["schedules"]] == ["sch-6", "sch-0"]
    assert json.loads(client.get("/api/training/schedules?status=later", headers=AUTH).get_data())["errors"][0][
        "field"] == "status"


def test_an_experiment_is_found_by_what_it_was_made_from_and_by_its_number_exactly(client, repo, ids):
    """The wizard's experiment picker searches the server: "Exp #65" or "#65" is that experiment, not #650;
    the dataset's and configs' names find the experiments made from them."""
    for number in (6, 65, 650):
        repo.create_catalog("experiments", {"id": f"exp-{number}", "number": number, "name": f"sweep {number}",
                                            "model_type": "retrieval", "dataset_name": "clicks-q4",
                                            "feature_config_name": "wide-embeddings", "team": "demo",
                                            "created_at": T0 + timedelta(minutes=number)})

    def found(search):
        body = client.get(f"/api/experiments?model_type=retrieval&search={search}", headers=AUTH).get_json()
        return [e["id"] for e in body["items"]]
    assert found("Exp %2365") == found("%2365") == ["exp-65"]
    assert found("%236") == ["exp-6"]
    assert found("clicks-q4 wide") == ["exp-650", "exp-65", "exp-6"]
    assert found("sweep 65") == ["exp-650", "exp-65"]  # a name is searched as a substring, as before
    assert found("%2366") == []
