"""Schedule routes over HTTP (in-memory fakes), the Cloud Scheduler adapter's requests at its
boundary (a fake scheduler_v1 client), the adapter choice from settings, and the ticker."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from google.api_core import exceptions
from google.cloud import scheduler_v1

from scripts.ticker import Ticker
from shared import schedules, topics
from shared.artifact_store import ArtifactStore
from shared.errors import TransientError
from shared.http_api import Dependencies, create_app
from shared.composition import schedule_jobs as jobs_from_settings
from shared.scheduler_jobs import CloudSchedulerJobs, LocalTickerJobs
from shared.settings import get_settings
from tests.builders import seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository
from tests.unit.test_schedules import NoJobs

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
UTC = timezone.utc


@pytest.fixture
def api():
    repo, publisher, jobs = InMemoryRepository(), FakePublisher(), NoJobs()
    settings = replace(get_settings(), auth_mode="local", dev_token=TOKEN, dev_identity="dev@example.com")
    deps = Dependencies(repo=repo, publisher=publisher, store=ArtifactStore(), settings=settings)
    deps.scheduler_jobs = jobs
    client = create_app(deps).test_client()
    return {"client": client, "repo": repo, "publisher": publisher, "jobs": jobs, "ids": seed_catalog(repo)}


def post(api, path, body=None):
    return api["client"].post(path, data=json.dumps(body or {}), headers=AUTH)


def get(api, path):
    return api["client"].get(path, headers=AUTH)


def schedule_body(ids, **overrides):
    body = {"name": "weekly retrain", "schedule_type": "weekly", "day_of_week": 0, "time_of_day": "03:00",
            "timezone": "Europe/Kyiv", "catch_up": "latest",
            "run_template": {"name": "weekly-recs", "base_experiment_id": ids["experiment"]}}
    body.update(overrides)
    return body


def test_create_list_get_pause_resume_trigger_cancel(api):
    response = post(api, "/api/training/schedules", schedule_body(api["ids"]))
    assert response.status_code == 201, response.get_json()
    schedule = response.get_json()["schedule"]
    assert schedule["status"] == "active" and schedule["cron_expression"] == "0 3 * * 1"
    assert schedule["next_run_at"].endswith("Z") and schedule["cloud_scheduler_job_name"] == f"jobs/{schedule['id']}"
    assert schedule["day_of_week_name"] == "monday" and schedule["active_run_ids"] == []
    sid = schedule["id"]

    listed = get(api, "/api/training/schedules?status=active").get_json()["schedules"]
    assert [s["id"] for s in listed] == [sid]
    assert get(api, "/api/training/schedules?status=paused").get_json()["schedules"] == []

    assert post(api, f"/api/training/schedules/{sid}/pause").get_json()["schedule"]["status"] == "paused"
    assert post(api, f"/api/training/schedules/{sid}/pause").status_code == 200  # idempotent
    resumed = post(api, f"/api/training/schedules/{sid}/resume").get_json()
    assert resumed["schedule"]["status"] == "active" and resumed["caught_up"] == []

    triggered = post(api, f"/api/training/schedules/{sid}/trigger")
    assert triggered.status_code == 201 and triggered.get_json()["outcome"] == "active"
    run = triggered.get_json()["training_run"]
    assert run["status"] == "pending" and run["schedule_id"] == sid
    assert api["publisher"].messages[-1][:2] == (topics.RUN_SUBMIT, {"run_id": run["id"], "attempt": 1})

    detail = get(api, f"/api/training/schedules/{sid}").get_json()
    assert [r["id"] for r in detail["runs"]] == [run["id"]] and detail["schedule"]["total_runs"] == 1
    assert detail["schedule"]["active_run_ids"] == [run["id"]]

    cancelled = post(api, f"/api/training/schedules/{sid}/cancel").get_json()
    assert cancelled["schedule"]["status"] == "cancelled"
    assert post(api, f"/api/training/schedules/{sid}/resume").status_code == 409
    assert post(api, f"/api/training/schedules/{sid}/trigger").status_code == 409
    assert api["jobs"].calls == [("create", sid), ("pause", sid), ("pause", sid), ("resume", sid), ("delete", sid)]


@pytest.mark.parametrize("overrides, field", [
    ({"schedule_type": "cron", "cron_expression": "every day"}, "cron_expression"),
    ({"timezone": "Europe/Atlantis"}, "timezone"),
    ({"schedule_type": "once", "run_at": "2001-01-01T00:00:00Z"}, "run_at"),
    ({"day_of_week": None}, "day_of_week"),
    ({"start_at": "2031-01-02T00:00:00Z", "end_at": "2031-01-01T00:00:00Z"}, "end_at"),
    ({"run_template": {"name": "Bad Name", "base_experiment_id": "x"}}, "run_template.name"),
    ({"unknown": 1}, "unknown"),
])
def test_bad_schedules_are_400_naming_the_field(api, overrides, field):
    response = post(api, "/api/training/schedules", schedule_body(api["ids"], **overrides))
    assert response.status_code == 400
    assert field in [e["field"] for e in response.get_json()["errors"]], response.get_json()
    assert api["jobs"].calls == [] and api["repo"].schedules == {}


def test_unknown_schedule_is_404(api):
    assert get(api, "/api/training/schedules/ts-nope").status_code == 404
    assert post(api, "/api/training/schedules/ts-nope/pause").status_code == 404


def test_scheduled_run_then_run_now_over_http(api):
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = post(api, "/api/training-runs", {"name": "later-recs", "base_experiment_id": api["ids"]["experiment"],
                                                "scheduled_at": later})
    assert response.status_code == 201, response.get_json()
    run = response.get_json()["training_run"]
    assert run["status"] == "scheduled" and run["schedule_id"] and not api["publisher"].messages
    started = post(api, f"/api/training-runs/{run['id']}/run-now")
    assert started.status_code == 202 and started.get_json()["training_run"]["status"] == "pending"
    assert api["publisher"].messages[-1][1] == {"run_id": run["id"], "attempt": 1}
    assert post(api, f"/api/training-runs/{run['id']}/run-now").status_code == 409
    schedule = get(api, f"/api/training/schedules/{run['schedule_id']}").get_json()["schedule"]
    assert schedule["status"] == "completed" and schedule["total_runs"] == 1


# ----------------------------------------------------------------------------- Cloud Scheduler adapter


class FakeSchedulerClient:
    """scheduler_v1.CloudSchedulerClient's surface the adapter uses; records each request."""

    def __init__(self):
        self.requests: list[tuple[str, object]] = []
        self.fail: dict[str, Exception] = {}

    def _do(self, method, value):
        self.requests.append((method, value))
        if method in self.fail:
            raise self.fail.pop(method)
        return value

    def create_job(self, parent, job):
        return self._do("create_job", (parent, job))

    def update_job(self, job):
        return self._do("update_job", job)

    def pause_job(self, name):
        return self._do("pause_job", name)

    def resume_job(self, name):
        return self._do("resume_job", name)

    def delete_job(self, name):
        return self._do("delete_job", name)


def a_schedule(**overrides):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    body = {"name": "nightly", "schedule_type": "daily", "time_of_day": "02:30", "timezone": "Europe/Berlin",
            "run_template": {}}
    body.update(overrides)
    return schedules.new_schedule(schedules.parse_request(body, at), {}, "ts-abc123", "dev@example.com", at)


def test_cloud_scheduler_create_request():
    client = FakeSchedulerClient()
    jobs = CloudSchedulerJobs("proj", "europe-west4", client=client)
    jobs.create(a_schedule())
    [(method, (parent, job))] = client.requests
    assert method == "create_job" and parent == "projects/proj/locations/europe-west4"
    assert isinstance(job, scheduler_v1.Job)
    assert job.name == "projects/proj/locations/europe-west4/jobs/trainyard-ts-abc123"
    assert job.schedule == "30 2 * * *" and job.time_zone == "Europe/Berlin"
    assert job.pubsub_target.topic_name == "projects/proj/topics/schedule-trigger"
    assert json.loads(job.pubsub_target.data) == {"schedule_id": "ts-abc123"}
    assert dict(job.pubsub_target.attributes) == {"schedule_id": "ts-abc123"}
    assert job.retry_config.retry_count == 3 and job.retry_config.max_doublings == 3
    assert job.retry_config.min_backoff_duration.total_seconds() == 10
    assert job.retry_config.max_retry_duration.total_seconds() <= schedules.MISFIRE_GRACE.total_seconds()


def test_cloud_scheduler_weekly_cron_and_one_time_job():
    client = FakeSchedulerClient()
    jobs = CloudSchedulerJobs("proj", "us-central1", client=client)
    jobs.create(a_schedule(schedule_type="weekly", day_of_week="saturday", time_of_day="23:45",
                           timezone="America/New_York"))
    jobs.create(a_schedule(schedule_type="once", run_at="2026-07-04T09:15:00", timezone="Asia/Tokyo"))
    jobs.create(a_schedule(schedule_type="cron", cron_expression="0 */6 * * 1-5"))
    crons = [(job.schedule, job.time_zone) for _, (_, job) in client.requests]
    assert crons == [("45 23 * * 6", "America/New_York"), ("15 9 4 7 *", "Asia/Tokyo"),
                     ("0 */6 * * 1-5", "Europe/Berlin")]


def test_cloud_scheduler_pause_resume_delete_and_errors():
    client = FakeSchedulerClient()
    jobs = CloudSchedulerJobs("proj", "europe-west4", client=client)
    schedule = a_schedule()
    name = "projects/proj/locations/europe-west4/jobs/trainyard-ts-abc123"
    jobs.pause(schedule)
    jobs.resume(schedule)
    jobs.delete(schedule)
    assert client.requests == [("pause_job", name), ("resume_job", name), ("delete_job", name)]

    client.requests.clear()
    client.fail["create_job"] = exceptions.AlreadyExists("exists")  # a retried create updates instead
    jobs.create(schedule)
    assert [m for m, _ in client.requests] == ["create_job", "update_job"]

    client.requests.clear()
    client.fail["resume_job"] = exceptions.NotFound("gone")  # deleted behind our back: made again
    jobs.resume(schedule)
    assert [m for m, _ in client.requests] == ["resume_job", "create_job"]

    client.fail["delete_job"] = exceptions.NotFound("gone")
    jobs.delete(schedule)  # already gone is fine
    client.fail["pause_job"] = exceptions.ServiceUnavailable("try later")
    with pytest.raises(TransientError):
        jobs.pause(schedule)
    client.fail["create_job"] = exceptions.PermissionDenied("no role")
    with pytest.raises(exceptions.PermissionDenied):
        jobs.create(schedule)


def test_the_adapter_is_chosen_from_settings():
    base = get_settings()
    assert isinstance(jobs_from_settings(replace(base, scheduler_backend="local")), LocalTickerJobs)
    cloud = jobs_from_settings(replace(base, scheduler_backend="cloud-scheduler", project="p",
                                       scheduler_location="asia-east1"))
    assert isinstance(cloud, CloudSchedulerJobs)
    assert cloud.job_name("x") == "projects/p/locations/asia-east1/jobs/trainyard-x"
    with pytest.raises(ValueError):
        jobs_from_settings(replace(base, scheduler_backend="cron"))


# ----------------------------------------------------------------------------- the local ticker


def test_ticker_publishes_each_due_slot_once_and_skips_paused(api):
    from shared.services import schedules as service

    at = datetime(2026, 5, 1, tzinfo=UTC)
    body = schedule_body(api["ids"], schedule_type="daily", timezone="UTC")
    first = service.create_schedule(api["repo"], body, "dev@example.com", api["jobs"], at=at)
    paused = service.create_schedule(api["repo"], body, "dev@example.com", api["jobs"], at=at)
    service.pause_schedule(api["repo"], paused["id"], "dev@example.com", api["jobs"], at=at)
    publisher = FakePublisher()
    ticker = Ticker(api["repo"], publisher)
    slot = first["next_run_at"]
    assert ticker.tick(slot - timedelta(seconds=1)) == []
    assert ticker.tick(slot) == [(first["id"], slot)]
    assert ticker.tick(slot + timedelta(seconds=1)) == []  # not yet consumed: not published again
    assert publisher.messages == [(topics.SCHEDULE_TRIGGER, {"schedule_id": first["id"]}, {"schedule_id": first["id"]})]
    # The consumer handles it (publish time = the tick): next_run_at moves on, and so does the ticker.
    assert service.on_trigger(api["repo"], api["publisher"], publisher.messages[0][1], slot, at=slot) == "active"
    assert ticker.tick(slot + timedelta(days=1)) == [(first["id"], slot + timedelta(days=1))]


# ----------------------------------------------------------------------------- functions/scheduler entry point


@pytest.fixture
def composition_root():
    from shared.composition import root

    yield root
    root.reset()


def test_scheduler_function_reads_the_slot_from_the_publish_time(api, composition_root):
    import base64
    import importlib.util

    from shared.services import schedules as service

    spec = importlib.util.spec_from_file_location("scheduler_main", "functions/scheduler/main.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    composition_root.provide(repo=api["repo"], publisher=api["publisher"])
    created = service.create_schedule(api["repo"], schedule_body(api["ids"], schedule_type="cron",
                                                                 cron_expression="*/5 * * * *", timezone="UTC"),
                                      "dev@example.com", api["jobs"], at=datetime.now(UTC) - timedelta(hours=1))
    now = datetime.now(UTC)
    slot = schedules.slots_up_to(api["repo"].get_schedule(created["id"]), now)[-1]

    def envelope(data: bytes, message_id: str) -> dict:
        return {"message": {"data": base64.b64encode(data).decode(), "messageId": message_id,
                            "publishTime": (slot + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")},
                "subscription": "projects/p/subscriptions/schedule-trigger-scheduler"}

    payload = json.dumps({"schedule_id": created["id"]}).encode()
    for message_id in ("1", "2"):  # a redelivery
        main.on_schedule_trigger(envelope(payload, message_id))
    runs_made = [r["id"] for r in api["repo"].runs.values() if r.get("schedule_id") == created["id"]]
    assert runs_made == [schedules.slot_run_id(created["id"], slot)]
    main.on_schedule_trigger(envelope(b"not json", "3"))  # acknowledged as malformed, not raised
    main.on_schedule_trigger(envelope(b'{"no": "id"}', "4"))
    assert len(api["repo"].runs) == 1


def test_openapi_documents_the_schedule_routes(api):
    doc = get(api, "/api/openapi.json").get_json()
    assert "/api/training/schedules/{schedule_id}/resume" in doc["paths"]
    assert "/api/training-runs/{run_id}/run-now" in doc["paths"]
    assert doc["components"]["schemas"]["ScheduleRequest"]["properties"]["schedule_type"]["enum"] == [
        "once", "daily", "weekly", "cron"]
