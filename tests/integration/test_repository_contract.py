"""The repository contract (shared/adapters/repository.py `Repository`), run against the in-memory
fake every unit test uses (tests/fakes.py) and against FirestoreRepository on the official Firestore
emulator: each test states one semantic and both must keep it, so the fake cannot drift from the
store the services really run on (cosmicpython's tests/integration/test_repository.py, over both)."""
from __future__ import annotations

import inspect
import os
import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests
from google.api_core.exceptions import AlreadyExists

from shared.adapters.repository import IN_LIMIT, TEAMS_KEY, FirestoreRepository, Repository
from shared.domain.audit import Query
from shared.errors import NotFound
from tests.fakes import InMemoryRepository
from tests.rules_emulator import PROJECT, emulator

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def firestore_host(tmp_path_factory):
    """One Firestore emulator for the module (rules do not apply to the server client)."""
    with emulator(tmp_path_factory.mktemp("contract"), "example.com") as host:
        before = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = host
        try:
            yield host
        finally:
            if before is None:
                os.environ.pop("FIRESTORE_EMULATOR_HOST")
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = before


class Store:
    """A repository under test, and `another()`: a second handle onto the same data (a second function
    instance for Firestore; the fake has one)."""

    def __init__(self, kind: str, host: str | None = None):
        self.kind, self.host = kind, host
        if kind == "firestore":  # every test starts from an empty database
            requests.delete(f"http://{host}/emulator/v1/projects/{PROJECT}/databases/(default)/documents",
                            timeout=30).raise_for_status()
        self.repo = self.another() if kind == "firestore" else InMemoryRepository()

    def another(self):
        if self.kind == "memory":
            return self.repo
        from google.cloud import firestore

        return FirestoreRepository(PROJECT, firestore.Client(project=PROJECT))


@pytest.fixture(params=["memory", "firestore"])
def store(request) -> Store:
    if request.param == "firestore":
        return Store("firestore", request.getfixturevalue("firestore_host"))
    return Store("memory")


@pytest.fixture
def repo(store):
    return store.repo


def run(n: int, **fields) -> dict:
    """A run document made n seconds after T0."""
    return {"name": f"run {n}", "status": "pending", "model_type": "retrieval", "team": "demo",
            "created_at": T0 + timedelta(seconds=n), **fields}


def ids(docs) -> list[str]:
    return [d["id"] for d in docs]


# ----------------------------------------------------------------------------- the interface


def test_both_implement_every_method_of_the_protocol_with_its_parameters():
    wanted = {name: list(inspect.signature(fn).parameters) for name, fn in vars(Repository).items()
              if inspect.isfunction(fn) and not name.startswith("_")}
    assert {"put_access", "get_access", "mutate_ledger"} <= set(wanted)
    for implementation in (InMemoryRepository, FirestoreRepository):
        for name, parameters in wanted.items():
            assert list(inspect.signature(getattr(implementation, name)).parameters) == parameters, \
                f"{implementation.__name__}.{name}"


# ----------------------------------------------------------------------------- runs


def test_create_run_numbers_runs_per_counter_and_an_explicit_id_is_created_once(repo):
    first, made = repo.create_run(run(1), "demo")
    assert made and first["id"] == f"demo-r{first['run_number']}" and first["version"] == 1
    assert first["updated_at"] is not None and first["name"] == "run 1"
    second, _ = repo.create_run(run(2), "demo")
    other, _ = repo.create_run(run(3), "other")
    assert second["run_number"] > first["run_number"] and other["run_number"] == 1
    explicit, made = repo.create_run(run(4), "demo", run_id="tr-00000000000000aa")
    assert made and explicit["id"] == "tr-00000000000000aa"
    again, made = repo.create_run(run(5, name="a duplicate trigger"), "demo", run_id="tr-00000000000000aa")
    assert not made and again["name"] == "run 4" and repo.get_run("tr-00000000000000aa")["name"] == "run 4"
    # Numbers are unique and increase; a refused duplicate may leave a gap (Firestore's increment is
    # not rolled back), so no test relies on consecutive numbers.
    later, _ = repo.create_run(run(6), "demo")
    assert later["run_number"] > explicit["run_number"] > second["run_number"]


def test_get_run_of_a_missing_or_impossible_id_is_none(repo):
    assert repo.get_run("tr-0000000000000000") is None
    assert repo.get_run("a/b") is None and repo.get_run("") is None and repo.get_run("__x__") is None


def test_mutate_run_writes_the_new_document_and_none_means_no_change(repo):
    created, _ = repo.create_run(run(1), "demo")
    updated = repo.mutate_run(created["id"], lambda doc: {**doc, "status": "running"})
    assert updated["status"] == "running" and updated["version"] == 2 and updated["updated_at"] >= created["updated_at"]
    assert repo.get_run(created["id"]) == updated

    def in_place_then_none(doc):
        doc["status"] = "lost"  # the mutator's copy: changing it without returning it writes nothing
        return None

    assert repo.mutate_run(created["id"], in_place_then_none) is None
    assert repo.get_run(created["id"]) == updated
    with pytest.raises(NotFound):
        repo.mutate_run("tr-0000000000000000", lambda doc: doc)
    with pytest.raises(NotFound):
        repo.mutate_run("a/b", lambda doc: doc)


def test_a_mutator_that_raises_writes_nothing(repo):
    created, _ = repo.create_run(run(1), "demo")

    def refuse(doc):
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        repo.mutate_run(created["id"], refuse)
    assert repo.get_run(created["id"]) == created


def test_mutate_run_is_a_transaction_no_concurrent_write_is_lost(store):
    created, _ = store.repo.create_run(run(1, current_epoch=0), "demo")
    handles = [store.repo, store.another()]  # two instances contend through Firestore itself

    def bump(handle):
        for _ in range(3):
            handle.mutate_run(created["id"], lambda doc: {**doc, "current_epoch": doc["current_epoch"] + 1})

    threads = [threading.Thread(target=bump, args=(handles[n % 2],)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = store.repo.get_run(created["id"])
    assert final["current_epoch"] == 18 and final["version"] == 19


def test_delete_run_checks_first_and_takes_its_history(repo):
    created, _ = repo.create_run(run(1), "demo")
    repo.put_epoch(created["id"], 1, {"epoch": 1, "loss": 0.5})

    def refuse(doc):
        raise PermissionError(f"not {doc['name']}")

    with pytest.raises(PermissionError, match="not run 1"):
        repo.delete_run(created["id"], refuse)
    assert repo.get_run(created["id"]) is not None and len(repo.list_epochs(created["id"], 1)) == 1
    deleted = repo.delete_run(created["id"], lambda doc: None)
    assert deleted["id"] == created["id"]
    assert repo.get_run(created["id"]) is None and repo.list_epochs(created["id"], 1) == []
    with pytest.raises(NotFound):
        repo.delete_run(created["id"], lambda doc: None)


def test_list_runs_newest_first_filtered_limited_and_paged(repo):
    made = [repo.create_run(run(n, status="running" if n % 2 else "pending", model_type="ranking" if n == 3
                                else "retrieval"), "demo")[0] for n in range(1, 8)]
    newest_first = ids(reversed(made))
    assert ids(repo.list_runs({}, 100)) == newest_first
    assert ids(repo.list_runs({"status": "running"}, 100)) == [r for r in newest_first if r in ids(made[0::2])]
    assert ids(repo.list_runs({"status": "running", "model_type": "ranking"}, 100)) == [made[2]["id"]]
    assert ids(repo.list_runs({"status": None, "model_type": ""}, 100)) == newest_first  # falsy: no filter
    page = repo.list_runs({}, 3)
    assert ids(page) == newest_first[:3]
    cursor = (page[-1]["created_at"], page[-1]["id"])
    assert ids(repo.list_runs({}, 3, after=cursor)) == newest_first[3:6]
    assert repo.count_runs({}) == 7 and repo.count_runs({"status": "running"}) == 4
    assert repo.count_runs({"status": "failed"}) == 0


def test_runs_made_at_the_same_instant_are_ordered_by_id_and_paged_without_loss(repo):
    for run_id in ("tr-000000000000000b", "tr-000000000000000a", "tr-000000000000000c"):
        repo.create_run(run(1), "demo", run_id=run_id)
    listed = repo.list_runs({}, 2)
    assert ids(listed) == ["tr-000000000000000c", "tr-000000000000000b"]
    rest = repo.list_runs({}, 2, after=(listed[-1]["created_at"], listed[-1]["id"]))
    assert ids(rest) == ["tr-000000000000000a"]


def test_soft_deleted_runs_are_listed_and_counted_apart(repo):
    kept, _ = repo.create_run(run(1), "demo")
    gone, _ = repo.create_run(run(2), "demo")
    repo.mutate_run(gone["id"], lambda doc: {**doc, "deleted": True, "deleted_at": T0})
    assert ids(repo.list_runs({"deleted": True}, 10)) == [gone["id"]]
    assert repo.count_runs({"deleted": True}) == 1 and repo.count_runs({}) == 2
    # {"deleted": False} is falsy: no filter (shared/services/run_data.py drops deleted runs itself).
    assert ids(repo.list_runs({"deleted": False}, 10)) == [gone["id"], kept["id"]]
    assert repo.get_run(gone["id"])["deleted"] is True  # still readable, for restore


def test_the_team_filter_is_any_of_a_list_chunked_past_firestores_in_limit(repo):
    teams = [f"team-{n:02d}" for n in range(IN_LIMIT + 5)]  # two `in` queries on Firestore
    made = {team: repo.create_run(run(n, team=team), "demo")[0]
            for n, team in enumerate([teams[0], teams[IN_LIMIT - 1], teams[IN_LIMIT], teams[-1], "outsider"])}
    everyone_but_outsider = [made[t]["id"] for t in reversed([teams[0], teams[IN_LIMIT - 1], teams[IN_LIMIT],
                                                              teams[-1]])]
    assert ids(repo.list_runs({TEAMS_KEY: teams}, 10)) == everyone_but_outsider
    assert repo.count_runs({TEAMS_KEY: teams}) == 4 and repo.count_runs({TEAMS_KEY: teams[:1]}) == 1
    page = repo.list_runs({TEAMS_KEY: teams}, 2)  # the newest two across both chunks
    assert ids(page) == everyone_but_outsider[:2]
    assert ids(repo.list_runs({TEAMS_KEY: teams}, 2, after=(page[-1]["created_at"], page[-1]["id"]))) \
        == everyone_but_outsider[2:]
    assert repo.list_runs({TEAMS_KEY: []}, 10) == [] and repo.count_runs({TEAMS_KEY: []}) == 0
    assert len(repo.list_runs({TEAMS_KEY: None}, 10)) == 5  # None: no team filter


def test_epochs_are_kept_per_attempt_in_order_and_a_redelivery_replaces(repo):
    created, _ = repo.create_run(run(1), "demo")
    for attempt, epoch, loss in ((1, 2, 0.4), (1, 1, 0.5), (2, 1, 0.9), (1, 2, 0.3)):
        repo.put_epoch(created["id"], attempt, {"epoch": epoch, "loss": loss})
    assert repo.list_epochs(created["id"], 1) == [{"epoch": 1, "loss": 0.5, "attempt": 1},
                                                  {"epoch": 2, "loss": 0.3, "attempt": 1}]
    assert [e["loss"] for e in repo.list_epochs(created["id"], 2)] == [0.9]
    assert repo.list_epochs(created["id"], 3) == [] and repo.list_epochs("tr-0000000000000000", 1) == []


# ----------------------------------------------------------------------------- catalog


def test_catalog_entries_get_an_id_experiments_a_number_and_are_read_in_the_order_asked(repo):
    dataset = repo.create_catalog("datasets", {"name": "d", "team": "demo", "created_at": T0})
    assert dataset["id"] and repo.get_catalog("datasets", dataset["id"]) == dataset
    named = repo.create_catalog("datasets", {"id": "ds-named", "name": "n", "created_at": T0})
    first = repo.create_catalog("experiments", {"name": "e1", "created_at": T0})
    second = repo.create_catalog("experiments", {"name": "e2", "created_at": T0})
    given = repo.create_catalog("experiments", {"name": "e3", "number": 7, "created_at": T0})
    assert named["id"] == "ds-named" and second["number"] > first["number"] >= 1 and given["number"] == 7
    assert repo.get_catalog_many([("experiments", second["id"]), ("datasets", "missing"), ("datasets", "a/b"),
                                  ("datasets", named["id"])]) == [second, None, None, named]
    assert repo.get_catalog("model_configs", dataset["id"]) is None  # ids are per kind


def test_a_catalog_entry_or_schedule_or_audit_record_is_created_once(repo):
    repo.create_catalog("datasets", {"id": "ds-1", "name": "first", "created_at": T0})
    with pytest.raises(AlreadyExists):
        repo.create_catalog("datasets", {"id": "ds-1", "name": "second", "created_at": T0})
    assert repo.get_catalog("datasets", "ds-1")["name"] == "first"
    repo.create_schedule({"id": "ts-000000000001", "status": "active", "created_at": T0})
    with pytest.raises(AlreadyExists):
        repo.create_schedule({"id": "ts-000000000001", "status": "paused", "created_at": T0})
    assert repo.get_schedule("ts-000000000001")["status"] == "active"
    repo.add_audit({"id": "au-1", "at": T0, "actor": "a@example.com"})
    with pytest.raises(AlreadyExists):
        repo.add_audit({"id": "au-1", "at": T0, "actor": "b@example.com"})


def test_list_catalog_newest_first_by_team_and_by_equality(repo):
    for n, team in enumerate(["a", "b", "a", None]):
        repo.create_catalog("datasets", {"id": f"ds-{n}", "team": team, "kind": "csv" if n < 2 else "bq",
                                         "created_at": T0 + timedelta(minutes=n)})
    assert ids(repo.list_catalog("datasets", 10)) == ["ds-3", "ds-2", "ds-1", "ds-0"]
    assert ids(repo.list_catalog("datasets", 2)) == ["ds-3", "ds-2"]
    assert ids(repo.list_catalog("datasets", 10, {TEAMS_KEY: ["a"]})) == ["ds-2", "ds-0"]
    assert ids(repo.list_catalog("datasets", 10, {TEAMS_KEY: ["a", "b"]})) == ["ds-2", "ds-1", "ds-0"]
    assert repo.list_catalog("datasets", 10, {TEAMS_KEY: []}) == []
    # With an equality filter Firestore has no (field, created_at) index to order by: the order is not
    # part of the contract, only the set.
    assert sorted(ids(repo.list_catalog("datasets", 10, {"kind": "csv"}))) == ["ds-0", "ds-1"]
    assert ids(repo.list_catalog("datasets", 10, {"kind": "bq", TEAMS_KEY: ["a"]})) == ["ds-2"]


def test_top_experiments_best_first_of_a_model_type_and_teams(repo):
    for n, (model_type, recall, team) in enumerate([("retrieval", 0.3, "a"), ("retrieval", 0.5, "b"),
                                                    ("ranking", 0.9, "a"), ("retrieval", 0.4, "a")]):
        repo.create_catalog("experiments", {"id": f"ex-{n}", "model_type": model_type, "team": team,
                                            "metrics": {"recall_at_100": recall}, "created_at": T0})
    repo.create_catalog("experiments", {"id": "ex-none", "model_type": "retrieval", "team": "a", "metrics": {},
                                        "created_at": T0})  # no such metric: not ranked
    assert ids(repo.top_experiments("retrieval", "recall_at_100", True, 10)) == ["ex-1", "ex-3", "ex-0"]
    assert ids(repo.top_experiments("retrieval", "recall_at_100", False, 2)) == ["ex-0", "ex-3"]
    assert ids(repo.top_experiments("retrieval", "recall_at_100", True, 10, teams=["a"])) == ["ex-3", "ex-0"]
    many = [f"t{n}" for n in range(IN_LIMIT)] + ["b"]  # "b" in the second chunk
    assert ids(repo.top_experiments("retrieval", "recall_at_100", True, 1, teams=many)) == ["ex-1"]


def test_a_catalog_entry_made_before_teams_takes_a_team(store):
    repo = store.repo
    repo.create_catalog("datasets", {"id": "ds-old", "name": "old", "created_at": T0})
    assert repo.get_catalog("datasets", "ds-old").get("team") is None  # read (and cached) before
    assert repo.set_catalog_team("datasets", "ds-old", "demo")["team"] == "demo"
    assert repo.get_catalog("datasets", "ds-old")["team"] == "demo"
    assert ids(repo.list_catalog("datasets", 10, {TEAMS_KEY: ["demo"]})) == ["ds-old"]


# ----------------------------------------------------------------------------- schedules


def schedule(n: int, **fields) -> dict:
    return {"id": f"ts-{n:012x}", "status": "active", "team": "demo", "created_at": T0 + timedelta(seconds=n),
            "next_run_at": T0 + timedelta(hours=n), **fields}


def test_schedules_are_created_at_version_one_and_mutated_like_runs(repo):
    created = repo.create_schedule(schedule(1))
    assert created["version"] == 1 and repo.get_schedule(created["id"]) == created
    paused = repo.mutate_schedule(created["id"], lambda doc: {**doc, "status": "paused"})
    assert paused["status"] == "paused" and paused["version"] == 2
    assert repo.mutate_schedule(created["id"], lambda doc: None) is None
    assert repo.get_schedule(created["id"]) == paused
    with pytest.raises(NotFound):
        repo.mutate_schedule("ts-ffffffffffff", lambda doc: doc)
    assert repo.get_schedule("ts-ffffffffffff") is None and repo.get_schedule("a/b") is None


def test_list_schedules_newest_first_by_status_and_team(repo):
    for n, status, team in ((1, "active", "a"), (2, "paused", "a"), (3, "active", "b"), (4, "active", "a")):
        repo.create_schedule(schedule(n, status=status, team=team))
    assert ids(repo.list_schedules(None, 10)) == [schedule(n)["id"] for n in (4, 3, 2, 1)]
    assert ids(repo.list_schedules("active", 2)) == [schedule(n)["id"] for n in (4, 3)]
    assert ids(repo.list_schedules("active", 10, teams=["a"])) == [schedule(n)["id"] for n in (4, 1)]
    assert ids(repo.list_schedules(None, 10, teams=[f"x{n}" for n in range(IN_LIMIT)] + ["b"])) \
        == [schedule(3)["id"]]
    assert repo.list_schedules(None, 10, teams=[]) == []


def test_due_schedules_are_the_active_ones_due_soonest_first(repo):
    repo.create_schedule(schedule(3))
    repo.create_schedule(schedule(1))
    repo.create_schedule(schedule(2, status="paused"))
    repo.create_schedule(schedule(4, next_run_at=None))  # a finished "once" schedule
    repo.create_schedule(schedule(9))  # not yet due
    due = repo.due_schedules(T0 + timedelta(hours=3), 10)
    assert ids(due) == [schedule(1)["id"], schedule(3)["id"]]  # at `before` is due
    assert ids(repo.due_schedules(T0 + timedelta(hours=3), 1)) == [schedule(1)["id"]]


# ----------------------------------------------------------------------------- status, ledgers, audit, access


def test_a_status_document_is_folded_in_one_transaction(repo):
    assert repo.get_status("reconciler") is None
    seen = []

    def fold(current):
        seen.append(current)
        return {"passes": (current or {}).get("passes", 0) + 1}

    assert repo.mutate_status("reconciler", fold) == {"passes": 1}
    assert repo.mutate_status("reconciler", fold) == {"passes": 2}
    assert seen == [None, {"passes": 1}] and repo.get_status("reconciler") == {"passes": 2}


def test_a_ledger_fold_stores_refuses_or_leaves_it_alone_and_serialises_writers(store):
    repo = store.repo
    assert repo.mutate_ledger("demo", "2026-05", lambda ledger: None) is None
    assert repo.get_ledger("demo", "2026-05") is None  # None: nothing written

    def admit(ledger):
        spent = (ledger or {"spent": 0})["spent"]
        if spent >= 10:
            raise PermissionError("over budget")
        return {"team": "demo", "spent": spent + 1}

    handles = [repo, store.another()]
    errors = []

    def spend(handle):
        for _ in range(4):
            try:
                handle.mutate_ledger("demo", "2026-05", admit)
            except PermissionError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=spend, args=(handles[n % 2],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert repo.get_ledger("demo", "2026-05") == {"team": "demo", "spent": 10} and len(errors) == 6
    assert repo.get_ledger("demo", "2026-06") is None and repo.get_ledger("other", "2026-05") is None


def test_audit_records_newest_first_filtered_by_field_time_and_cursor(repo):
    for n in range(6):
        repo.add_audit({"id": f"au-{n}", "at": T0 + timedelta(minutes=n // 2), "actor": "a@x" if n % 3 else "b@x",
                        "outcome": "allowed"})

    def query(limit=10, **kwargs):
        return ids(repo.list_audit(Query(**{"filters": {}, "since": None, "until": None, "after": None,
                                            "limit": limit, **kwargs}), limit))

    assert query() == ["au-5", "au-4", "au-3", "au-2", "au-1", "au-0"]  # ties on `at`: by id, descending
    assert query(filters={"actor": "b@x"}) == ["au-3", "au-0"]
    assert query(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2)) == ["au-3", "au-2"]
    assert query(limit=3) == ["au-5", "au-4", "au-3"]
    assert query(after=(T0 + timedelta(minutes=1), "au-3")) == ["au-2", "au-1", "au-0"]


def test_an_access_document_is_replaced_whole(repo):
    assert repo.get_access("a@example.com") is None
    repo.put_access("a@example.com", {"teams": ["a", "b"], "admin": True})
    repo.put_access("a@example.com", {"teams": ["b"]})
    assert repo.get_access("a@example.com") == {"teams": ["b"]}
