"""Data triggers (issue 27, part 3) under the teams of test_ownership.py: a schedule may watch only data its
team may read (a trigger on another team's bucket would tell mallory when alice's data lands, and spend her
team's budget on alice's rhythm), creating one needs trainer on the team, and another team's notifications
start none of its runs."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.domain.data_triggers import DataEvent
from shared.services import data_triggers
from shared.services.ports import Effects
from tests.security.test_ownership import refused, world  # noqa: F401 (world is a fixture)
from tests.unit.test_schedules import NoJobs


def data_schedule(world, who, bucket, prefix="landing/", team=None):
    body = {"name": "on new data", "schedule_type": "data",
            "data_trigger": {"source": "gcs", "bucket": bucket, "prefix": prefix},
            "run_template": {"name": "recs-fresh" if bucket.startswith("recs") else "ads-fresh",
                             "base_experiment_id": world.recs_exp if bucket.startswith("recs") else world.ads_exp}}
    if team:
        body["team"] = team
    return world.call(who, "POST", "/api/training/schedules", body)


@pytest.mark.parametrize("trigger, field", [
    ({"source": "gcs", "bucket": "recs-data", "prefix": ""}, "data_trigger.bucket"),
    ({"source": "bigquery", "table": "recs-project.recs_events.interactions"}, "data_trigger.table"),
    ({"source": "folder", "path": "/srv/recs"}, "data_trigger.path"),
])
def test_mallory_cannot_watch_alices_data(world, trigger, field):
    made = world.call("mallory@example.com", "POST", "/api/training/schedules", {
        "name": "spy", "schedule_type": "data", "data_trigger": trigger,
        "run_template": {"name": "ads-spy", "base_experiment_id": world.ads_exp}})
    assert made.status_code == 400 and [e["field"] for e in made.get_json()["errors"]] == [field], made.get_json()
    assert not world.repo.schedules


def test_a_viewer_cannot_make_a_data_schedule_and_a_trainer_can(world):
    refused(data_schedule(world, "vic@example.com", "recs-data", team="recs"), needed="trainer")
    made = data_schedule(world, "tom@example.com", "recs-data")
    assert made.status_code == 201, made.get_json()
    schedule_id = made.get_json()["schedule"]["id"]
    refused(world.call("mallory@example.com", "POST", f"/api/training/schedules/{schedule_id}/pause", {}),
            needed="trainer")


def test_another_teams_new_data_starts_none_of_recs_runs(world):
    made = data_schedule(world, "tom@example.com", "recs-data")
    schedule_id = made.get_json()["schedule"]["id"]
    effects = Effects(world.publisher, NoJobs())
    at = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
    for foreign in ("gs://ads-data/landing/x.csv", "gs://recs-data-copy/landing/x.csv", "gs://recs-data/other/x.csv"):
        assert data_triggers.on_data_event(world.repo, effects, DataEvent("gcs", foreign, "1", at), at) == {}
    assert not world.repo.runs
    outcome = data_triggers.on_data_event(world.repo, effects, DataEvent("gcs", "gs://recs-data/landing/x.csv", "1", at),
                                          at)
    assert outcome == {schedule_id: "fired"}
    (run,) = world.repo.runs.values()
    assert run["team"] == "recs" and run["created_by"] == "tom@example.com"
