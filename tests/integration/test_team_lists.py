"""Lists filtered by team against the Firestore emulator (shared/adapters/repository.py): a caller on
more teams than one `in` filter may hold (30) still sees every one of them, newest or best first."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from shared.adapters.repository import IN_LIMIT, FirestoreRepository

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)


def test_team_filters_beyond_one_in_query_are_asked_in_chunks_and_merged(local_stack):
    repo = FirestoreRepository(local_stack.stack.config.project)
    tag = uuid.uuid4().hex[:8]  # this test's documents only: the emulator is shared by the session
    names = [f"t{tag}-{n}" for n in range(IN_LIMIT + 5)]
    runs = []
    for n, team in enumerate(names):
        run_id = f"tr-{tag}-{n:02d}"
        repo.create_run({"name": f"r-{n}", "status": "pending", "team": team, "created_at": T0 + timedelta(minutes=n),
                         "model_type": "retrieval"}, counter_key=f"model-{tag}", run_id=run_id)
        runs.append(run_id)
        repo.create_catalog("experiments", {"name": f"e-{n}", "model_type": "retrieval", "team": team,
                                            "created_at": T0 + timedelta(minutes=n),
                                            "metrics": {"recall_at_100": n / 100}})
        repo.create_schedule({"id": f"ts-{tag}-{n:02d}", "name": f"s-{n}", "status": "active", "team": team,
                              "created_at": T0 + timedelta(minutes=n)})
    wanted = names[:2] + names[-3:]  # teams in the first and the second chunk of 30
    newest = [runs[n] for n in (34, 33, 32, 1, 0)]

    assert [r["id"] for r in repo.list_runs({"team": names}, 5)] == [runs[n] for n in (34, 33, 32, 31, 30)]
    assert [r["id"] for r in repo.list_runs({"team": wanted}, 10)] == newest
    page = repo.list_runs({"team": wanted}, 2)
    assert [r["id"] for r in repo.list_runs({"team": wanted}, 10, (page[-1]["created_at"], page[-1]["id"]))] == newest[2:]
    assert repo.count_runs({"team": names}) == IN_LIMIT + 5 and repo.count_runs({"team": wanted}) == 5
    assert repo.list_runs({"team": []}, 10) == [] and repo.count_runs({"team": []}) == 0

    best = repo.top_experiments("retrieval", "recall_at_100", True, 3, names)
    assert [e["team"] for e in best] == [names[34], names[33], names[32]]
    assert [e["team"] for e in repo.list_catalog("experiments", 3, {"team": wanted})] == [names[n] for n in (34, 33, 32)]
    assert [s["team"] for s in repo.list_schedules(None, 50, wanted)] == [names[n] for n in (34, 33, 32, 1, 0)]
    assert [s["team"] for s in repo.list_schedules("active", 2, wanted)] == [names[34], names[33]]


def test_a_catalog_entry_made_before_teams_takes_a_team_and_this_instance_forgets_its_cached_copy(local_stack):
    repo = FirestoreRepository(local_stack.stack.config.project)
    made = repo.create_catalog("datasets", {"name": "legacy", "created_at": T0})
    assert repo.get_catalog("datasets", made["id"]).get("team") is None  # now cached
    assert repo.set_catalog_team("datasets", made["id"], "recs")["team"] == "recs"
    assert repo.get_catalog("datasets", made["id"])["team"] == "recs"
