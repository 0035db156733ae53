"""Schedule routes over HTTP (in-memory fakes), the Cloud Scheduler adapter through Google's own
CloudSchedulerClient against the gRPC fake of Cloud Scheduler (tests/protocol_fakes/scheduler.py), the
service on that adapter (auto-pause then resume, a spent one-time schedule's job), the adapter choice
from settings, and the ticker."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import scheduler_v1

from scripts.ticker import Ticker
from shared.domain import schedules
from shared.contract import topics
from shared.adapters.artifact_store import ArtifactStore
from shared.contract.messages import ScheduleTrigger
from shared.errors import TransientError
from shared.http.app import Dependencies, create_app
from shared.composition import scheduler_jobs as jobs_from_settings
from shared.adapters.scheduler_jobs import CloudSchedulerJobs, LocalTickerJobs
from shared.services import scheduling
from shared.services.ports import Effects
from shared.settings import get_settings
from tests.builders import demo_member, local_settings, seed_catalog

from tests.events import envelope
from tests.fakes import FakePublisher, InMemoryRepository
from tests.unit.test_schedules import NoJobs

DEV = demo_member()[0]  # the demo team's admin

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
UTC = timezone.utc


@pytest.fixture
def api():
    repo, publisher, jobs = InMemoryRepository(), FakePublisher(), NoJobs()
    settings = local_settings("dev@example.com", TOKEN)
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
    ({"schedule_type": "data"}, "data_trigger"),
    ({"data_trigger": {"source": "gcs", "bucket": "gs://x"}}, "data_trigger.bucket"),
    ({"data_trigger": {"source": "bigquery", "table": "t"}}, "data_trigger.table"),
    ({"data_trigger": {"source": "folder", "path": "/x", "min_interval_minutes": 0}}, "data_trigger.min_interval_minutes"),
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
# CloudSchedulerJobs through Google's own CloudSchedulerClient, over gRPC, to the fake of the service
# (tests/protocol_fakes/scheduler.py): requests are serialized by the real transport, and errors come
# back as status codes that google-api-core turns into its exceptions, as they would from Google.

PROJECT, LOCATION = "proj", "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
JOB = f"{PARENT}/jobs/trainyard-ts-abc123"


@pytest.fixture
def cloud_scheduler():
    """The gRPC fake of Cloud Scheduler (started here, stopped after the test) and adapters on it."""
    from types import SimpleNamespace

    from tests.protocol_fakes import scheduler as scheduler_fake

    server, fake = scheduler_fake.start(LOCATION)
    clients: list[CloudSchedulerJobs] = []

    def adapter(project=PROJECT, location=LOCATION) -> CloudSchedulerJobs:
        jobs = CloudSchedulerJobs(project, location, emulator_host=server.address)
        clients.append(jobs)
        return jobs

    def methods() -> list[str]:
        return [name for name, _ in server.calls]

    env = SimpleNamespace(server=server, fake=fake, jobs=adapter(), adapter=adapter, methods=methods,
                          clients=clients)
    try:
        yield env
    finally:
        for jobs in clients:
            if jobs._client.made is not None:
                jobs._client.made.transport.close()
        server.stop()


def a_schedule(schedule_id="ts-abc123", **overrides):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    body = {"name": "nightly", "schedule_type": "daily", "time_of_day": "02:30", "timezone": "Europe/Berlin",
            "run_template": {}}
    body.update(overrides)
    return schedules.new_schedule(schedules.parse_request(body, at), {}, schedule_id, "dev@example.com", at, "demo")


def test_cloud_scheduler_create_request(cloud_scheduler):
    cloud_scheduler.jobs.create(a_schedule())
    [request] = cloud_scheduler.server.requests("create_job")
    assert isinstance(request, scheduler_v1.CreateJobRequest) and request.parent == PARENT
    assert request.job.name == JOB == cloud_scheduler.jobs.job_name("ts-abc123")
    job = cloud_scheduler.fake.jobs[JOB]  # what the service stored: the request passed its rules
    assert job.state == scheduler_v1.Job.State.ENABLED
    assert job.schedule == "30 2 * * *" and job.time_zone == "Europe/Berlin"
    assert job.pubsub_target.topic_name == f"projects/{PROJECT}/topics/schedule-trigger"
    assert json.loads(job.pubsub_target.data) == {"schedule_id": "ts-abc123"}
    assert dict(job.pubsub_target.attributes) == {"schedule_id": "ts-abc123"}
    assert job.retry_config.retry_count == 3 and job.retry_config.max_doublings == 3
    assert job.retry_config.min_backoff_duration.total_seconds() == 10
    assert job.retry_config.max_backoff_duration.total_seconds() == 300
    assert job.retry_config.max_retry_duration.total_seconds() <= schedules.MISFIRE_GRACE.total_seconds()
    # Read back through the client: the same job, state included.
    read = cloud_scheduler.jobs.client.get_job(name=JOB)
    assert read.schedule == job.schedule and read.state.name == "ENABLED"
    # What the job publishes is what functions/scheduler reads.
    published = []
    cloud_scheduler.fake.fire(JOB, lambda topic, data, attributes: published.append((topic, data, attributes)) or "1")
    [(topic, data, attributes)] = published
    assert topic.endswith("/topics/" + topics.SCHEDULE_TRIGGER)
    assert ScheduleTrigger.model_validate_json(data) == ScheduleTrigger(schedule_id="ts-abc123")
    assert attributes == {"schedule_id": "ts-abc123"}


def test_cloud_scheduler_weekly_cron_and_one_time_job(cloud_scheduler):
    jobs = cloud_scheduler.jobs
    jobs.create(a_schedule("ts-weekly", schedule_type="weekly", day_of_week="saturday", time_of_day="23:45",
                           timezone="America/New_York"))
    jobs.create(a_schedule("ts-once", schedule_type="once", run_at="2026-07-04T09:15:00", timezone="Asia/Tokyo"))
    jobs.create(a_schedule("ts-cron", schedule_type="cron", cron_expression="0 */6 * * 1-5"))
    stored = {name.rsplit("/", 1)[1]: (job.schedule, job.time_zone) for name, job in cloud_scheduler.fake.jobs.items()}
    assert stored == {"trainyard-ts-weekly": ("45 23 * * 6", "America/New_York"),
                      "trainyard-ts-once": ("15 9 4 7 *", "Asia/Tokyo"),  # yearly: on_trigger deletes it once spent
                      "trainyard-ts-cron": ("0 */6 * * 1-5", "Europe/Berlin")}
    listed = jobs.client.list_jobs(parent=PARENT)
    assert sorted(j.name for j in listed) == sorted(cloud_scheduler.fake.jobs)


def test_cloud_scheduler_pause_resume_delete(cloud_scheduler):
    jobs, fake = cloud_scheduler.jobs, cloud_scheduler.fake
    schedule = a_schedule()
    jobs.create(schedule)
    jobs.pause(schedule)
    assert fake.state(JOB) == "PAUSED"
    jobs.resume(schedule)
    assert fake.state(JOB) == "ENABLED"
    jobs.delete(schedule)
    assert fake.state(JOB) is None
    assert cloud_scheduler.methods() == ["create_job", "pause_job", "resume_job", "delete_job"]
    assert [r.name for r in cloud_scheduler.server.requests("pause_job")] == [JOB]


def test_cloud_scheduler_pause_of_a_paused_job_and_resume_of_an_enabled_one_are_done(cloud_scheduler):
    """Review B3: Cloud Scheduler answers FAILED_PRECONDITION ("a job must be in Job.State.ENABLED to
    be paused" / "PAUSED to be resumed"); the adapter reads the job and finds it already there."""
    jobs, fake = cloud_scheduler.jobs, cloud_scheduler.fake
    schedule = a_schedule()
    jobs.create(schedule)
    jobs.resume(schedule)  # ENABLED already: e.g. a schedule auto-paused while its job kept running
    assert fake.state(JOB) == "ENABLED"
    jobs.pause(schedule)
    jobs.pause(schedule)  # PAUSED already: a repeated pause
    assert fake.state(JOB) == "PAUSED"
    assert cloud_scheduler.methods() == ["create_job", "resume_job", "get_job", "pause_job", "pause_job", "get_job"]
    # A precondition failure for any other reason still raises: the system DISABLED the job.
    fake.set_state(JOB, "DISABLED")
    with pytest.raises(exceptions.FailedPrecondition):
        jobs.pause(schedule)
    with pytest.raises(exceptions.FailedPrecondition):
        jobs.resume(schedule)
    assert fake.state(JOB) == "DISABLED"


def test_cloud_scheduler_missing_jobs_and_retried_creates(cloud_scheduler):
    jobs, fake = cloud_scheduler.jobs, cloud_scheduler.fake
    schedule = a_schedule()
    jobs.delete(schedule)  # NOT_FOUND: already gone is fine
    jobs.pause(schedule)  # NOT_FOUND: nothing to pause, logged
    assert fake.jobs == {}
    jobs.resume(schedule)  # NOT_FOUND: deleted behind our back, so made again from the document
    assert fake.state(JOB) == "ENABLED"
    assert cloud_scheduler.methods() == ["delete_job", "pause_job", "resume_job", "create_job"]

    jobs.pause(schedule)
    moved = a_schedule(time_of_day="04:10")
    jobs.create(moved)  # ALREADY_EXISTS (a retried create): updated from the document, its state kept
    assert cloud_scheduler.methods()[-2:] == ["create_job", "update_job"]
    assert fake.jobs[JOB].schedule == "10 4 * * *" and fake.state(JOB) == "PAUSED"
    jobs.delete(moved)
    jobs.delete(moved)  # twice: the second finds nothing, and that is fine
    assert fake.jobs == {}


def test_cloud_scheduler_errors_are_mapped(cloud_scheduler, monkeypatch):
    jobs, fake = cloud_scheduler.jobs, cloud_scheduler.fake
    schedule = a_schedule()
    fake.fail("create_job", grpc.StatusCode.PERMISSION_DENIED, "cloudscheduler.jobs.create denied")
    with pytest.raises(exceptions.PermissionDenied):  # not transient: raised as it is
        jobs.create(schedule)
    assert fake.jobs == {}
    jobs.create(schedule)

    # Every call retries UNAVAILABLE / DEADLINE_EXCEEDED within CALL_BUDGET_S (the client's default
    # would retry some for 600 s, past a consumer's ack deadline, and others not at all).
    fake.fail("pause_job", grpc.StatusCode.UNAVAILABLE)
    jobs.pause(schedule)
    assert fake.state(JOB) == "PAUSED" and cloud_scheduler.methods().count("pause_job") == 2
    fake.fail("resume_job", grpc.StatusCode.RESOURCE_EXHAUSTED)  # a quota: transient, not retried in the call
    with pytest.raises(TransientError) as raised:
        jobs.resume(schedule)
    assert isinstance(raised.value.__cause__, exceptions.TooManyRequests) and fake.state(JOB) == "PAUSED"
    jobs.resume(schedule)

    fake.fail("delete_job", grpc.StatusCode.UNAVAILABLE)
    jobs.delete(schedule)
    assert fake.jobs == {} and cloud_scheduler.methods().count("delete_job") == 2

    from shared.adapters import scheduler_jobs
    jobs.create(schedule)
    with monkeypatch.context() as patch:  # an outage longer than the budget: a TransientError, promptly
        patch.setattr(scheduler_jobs, "CALL_BUDGET_S", 1.0)
        fake.fail("pause_job", grpc.StatusCode.UNAVAILABLE, times=100)
        with pytest.raises(TransientError) as raised:
            jobs.pause(schedule)
        assert isinstance(raised.value.__cause__, exceptions.RetryError) and "UNAVAILABLE" in str(raised.value)
    fake.failures.pop("pause_job", None)
    jobs.delete(schedule)

    elsewhere = cloud_scheduler.adapter(location="us-central1")  # a location this endpoint does not serve
    with pytest.raises(exceptions.InvalidArgument):
        elsewhere.create(schedule)


def test_the_adapter_is_chosen_from_settings(cloud_scheduler):
    base = get_settings()
    assert isinstance(jobs_from_settings(replace(base, scheduler_backend="local")), LocalTickerJobs)
    cloud = jobs_from_settings(replace(base, scheduler_backend="cloud-scheduler", project="p",
                                       scheduler_location="asia-east1"))
    assert isinstance(cloud, CloudSchedulerJobs)
    assert cloud.job_name("x") == "projects/p/locations/asia-east1/jobs/trainyard-x"
    with pytest.raises(ValueError):
        jobs_from_settings(replace(base, scheduler_backend="cron"))
    # TRAINYARD_SCHEDULER_EMULATOR_HOST: the adapter the composition root builds talks to the stand-in.
    built = jobs_from_settings(replace(base, scheduler_backend="cloud-scheduler", project=PROJECT,
                                       scheduler_location=LOCATION,
                                       scheduler_emulator_host=cloud_scheduler.server.address))
    cloud_scheduler.clients.append(built)
    built.create(a_schedule())
    assert cloud_scheduler.fake.state(JOB) == "ENABLED"


# ----------------------------------------------------------------------------- the service on Cloud Scheduler


@pytest.fixture
def cloud_api(cloud_scheduler):
    """The API in-process, its schedule jobs built by the composition root from settings
    (scheduler_backend=cloud-scheduler, the emulator host = the gRPC fake)."""
    repo, publisher = InMemoryRepository(), FakePublisher()
    settings = local_settings("dev@example.com", TOKEN,
                       project=PROJECT, scheduler_backend="cloud-scheduler", scheduler_location=LOCATION,
                       scheduler_emulator_host=cloud_scheduler.server.address)
    deps = Dependencies(repo=repo, publisher=publisher, store=ArtifactStore(), settings=settings)
    assert isinstance(deps.scheduler_jobs, CloudSchedulerJobs)
    cloud_scheduler.clients.append(deps.scheduler_jobs)
    return {"client": create_app(deps).test_client(), "repo": repo, "publisher": publisher,
            "jobs": deps.scheduler_jobs, "fake": cloud_scheduler.fake, "ids": seed_catalog(repo)}


def job_of(api, schedule) -> str:
    return api["jobs"].job_name(schedule["id"])


def test_the_job_mirrors_the_schedule_over_http(cloud_api):
    created = post(cloud_api, "/api/training/schedules", schedule_body(cloud_api["ids"]))
    assert created.status_code == 201, created.get_json()
    schedule = created.get_json()["schedule"]
    name = job_of(cloud_api, schedule)
    assert schedule["cloud_scheduler_job_name"] == name == f"{PARENT}/jobs/trainyard-{schedule['id']}"
    job = cloud_api["fake"].jobs[name]
    assert (job.schedule, job.time_zone, job.state.name) == ("0 3 * * 1", "Europe/Kyiv", "ENABLED")
    sid = schedule["id"]
    assert post(cloud_api, f"/api/training/schedules/{sid}/pause").status_code == 200
    assert cloud_api["fake"].state(name) == "PAUSED"
    assert post(cloud_api, f"/api/training/schedules/{sid}/pause").status_code == 200  # its job is PAUSED already
    assert post(cloud_api, f"/api/training/schedules/{sid}/resume").status_code == 200
    assert cloud_api["fake"].state(name) == "ENABLED"
    assert post(cloud_api, f"/api/training/schedules/{sid}/resume").status_code == 200  # ENABLED already
    assert post(cloud_api, f"/api/training/schedules/{sid}/cancel").status_code == 200
    assert cloud_api["fake"].state(name) is None


def deliver(api, name, published_at):
    """The job fires (the fake publishes its target's message) and functions/scheduler's service
    consumes it, with the schedules' jobs as functions/scheduler/main.py passes them."""
    outcomes = []

    def publish(topic, data, attributes):
        assert topic == f"projects/{PROJECT}/topics/{topics.SCHEDULE_TRIGGER}"
        trigger = ScheduleTrigger.model_validate_json(data)
        outcomes.append(scheduling.on_trigger(api["repo"], Effects(api["publisher"], api["jobs"]), trigger, published_at,
                                              at=published_at))
        return str(len(outcomes))

    api["fake"].fire(name, publish)
    return outcomes[0]


def fired_daily_schedule(api) -> tuple[dict, str, datetime]:
    """A daily schedule that auto-pauses after one failed run, its ENABLED job, and the slot (about 12 hours
    ago) whose run the job's trigger has just made."""
    now = datetime.now(UTC)
    body = schedule_body(api["ids"], schedule_type="daily", timezone="UTC", auto_pause_after_failures=1,
                         time_of_day=(now + timedelta(hours=12)).strftime("%H:%M"))
    created = post(api, "/api/training/schedules", body)
    assert created.status_code == 201, created.get_json()
    schedule = created.get_json()["schedule"]
    name = job_of(api, schedule)
    assert api["fake"].state(name) == "ENABLED"
    slot = schedules.slots_up_to(api["repo"].get_schedule(schedule["id"]), now)[-1]
    assert deliver(api, name, slot + timedelta(seconds=2)) == "active"
    return schedule, name, slot


@pytest.mark.parametrize("job_paused_on_auto_pause", [True, False], ids=["job-paused", "job-left-enabled"])
def test_resume_after_auto_pause_is_200_and_the_job_runs(cloud_api, job_paused_on_auto_pause):
    """Review B3. Auto-pause (the progress path, after N failed runs) pauses the job too; where it
    could not (the job left ENABLED: an older pipeline_events, or its pause failed), resuming over HTTP
    must still answer 200, not 500."""
    from shared.services import progress
    from tests.unit.scenario import job_timeline

    schedule, name, slot = fired_daily_schedule(cloud_api)
    run_id = schedules.slot_run_id(schedule["id"], slot)
    cloud_api["repo"].mutate_run(run_id, lambda d: {**d, "status": "running", "gcs_artifacts_path": "/nonexistent"})
    failed = job_timeline(f"{run_id}-a1", fail_at="Trainer")[-1]
    if job_paused_on_auto_pause:
        assert progress.apply_job(run_id, failed, cloud_api["repo"], None, "/nonexistent",
                                  Effects(cloud_api["publisher"], cloud_api["jobs"])) == "updated"
    else:  # a pipeline_events whose scheduler jobs are not these (an older one): the job is left alone
        progress.apply_job(run_id, failed, cloud_api["repo"], None, "/nonexistent", Effects(cloud_api["publisher"], NoJobs()))
    paused = cloud_api["repo"].get_schedule(schedule["id"])
    assert paused["status"] == "paused" and paused["paused_reason"].startswith("auto-paused after 1")
    assert cloud_api["fake"].state(name) == ("PAUSED" if job_paused_on_auto_pause else "ENABLED")

    resumed = post(cloud_api, f"/api/training/schedules/{schedule['id']}/resume")
    assert resumed.status_code == 200, resumed.get_json()
    view = resumed.get_json()["schedule"]
    assert view["status"] == "active" and view["paused_reason"] is None and resumed.get_json()["caught_up"] == []
    assert cloud_api["fake"].state(name) == "ENABLED"


def test_an_auto_pause_whose_job_pause_fails_still_settles_and_the_next_trigger_pauses_the_job(cloud_api):
    """The job's pause is refused during auto-pause: the run's event still succeeds (a redelivery
    would find the run finished and pause nothing), and the job's next trigger pauses it."""
    from shared.services import progress
    from tests.unit.scenario import job_timeline

    schedule, name, slot = fired_daily_schedule(cloud_api)
    run_id = schedules.slot_run_id(schedule["id"], slot)
    cloud_api["repo"].mutate_run(run_id, lambda d: {**d, "status": "running", "gcs_artifacts_path": "/nonexistent"})
    cloud_api["fake"].fail("pause_job", grpc.StatusCode.PERMISSION_DENIED)
    failed = job_timeline(f"{run_id}-a1", fail_at="Trainer")[-1]
    assert progress.apply_job(run_id, failed, cloud_api["repo"], None, "/nonexistent",
                              Effects(cloud_api["publisher"], cloud_api["jobs"])) == "updated"
    assert cloud_api["repo"].get_schedule(schedule["id"])["status"] == "paused"
    assert cloud_api["fake"].state(name) == "ENABLED"
    assert deliver(cloud_api, name, slot + timedelta(days=1, seconds=2)) == "ignored"
    assert cloud_api["fake"].state(name) == "PAUSED"


def test_a_schedule_auto_paused_where_cloud_scheduler_is_not_granted_has_its_job_paused_on_the_next_trigger(
        cloud_api, tmp_path):
    """The submitter and run-commands hold no Cloud Scheduler role, so their scheduler jobs are
    JobsMirroredOnTrigger: a run failing there auto-pauses its schedule and leaves the job ENABLED; the
    job's next trigger finds the schedule paused and pauses the job (scheduling.on_trigger)."""
    from shared.adapters.scheduler_jobs import JobsMirroredOnTrigger
    from shared.composition import scheduler_jobs_not_granted
    from shared.errors import PermanentError
    from shared.services import submission
    from tests.fakes import FakeBackend, FakeCompiler

    schedule, name, slot = fired_daily_schedule(cloud_api)
    settings = replace(get_settings(), artifacts_root=str(tmp_path / "a"), pipeline_root=str(tmp_path / "r"))
    submitters = scheduler_jobs_not_granted(settings)  # as functions/submitter/main.py builds them
    assert isinstance(submitters, JobsMirroredOnTrigger)
    compiler = FakeCompiler(fail=PermanentError("the pipeline does not compile", stage="Compile"))
    run_id = schedules.slot_run_id(schedule["id"], slot)
    assert submission.submit(submission.RunSubmit(run_id=run_id, attempt=1), cloud_api["repo"], FakeBackend(),
                             ArtifactStore(), submission.Compiler(compiler.compile_run, compiler.module_files),
                             settings, effects=Effects(cloud_api["publisher"], submitters)) == "failed"
    paused = cloud_api["repo"].get_schedule(schedule["id"])
    assert paused["status"] == "paused" and paused["paused_reason"].startswith("auto-paused after 1")
    assert cloud_api["fake"].state(name) == "ENABLED"  # the submitter could not pause it

    assert deliver(cloud_api, name, slot + timedelta(days=1, seconds=2)) == "ignored"
    assert cloud_api["fake"].state(name) == "PAUSED"
    assert cloud_api["repo"].get_run(schedules.slot_run_id(schedule["id"], slot + timedelta(days=1))) is None


def test_a_spent_one_time_schedule_has_its_job_deleted(cloud_api):
    """Review B4: Cloud Scheduler has no one-shot jobs (the ONCE job's cron repeats yearly); once its
    slot fired and the schedule completed, on_trigger deletes the job."""
    run_at = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    created = post(cloud_api, "/api/training/schedules", schedule_body(
        cloud_api["ids"], schedule_type="once", run_at=run_at.isoformat(), timezone="Asia/Tokyo"))
    assert created.status_code == 201, created.get_json()
    schedule = created.get_json()["schedule"]
    name = job_of(cloud_api, schedule)
    local = run_at.astimezone(schedules.zone("Asia/Tokyo"))
    job = cloud_api["fake"].jobs[name]
    assert (job.schedule, job.state.name) == (f"{local.minute} {local.hour} {local.day} {local.month} *", "ENABLED")

    assert deliver(cloud_api, name, run_at + timedelta(seconds=3)) == "active"
    stored = cloud_api["repo"].get_schedule(schedule["id"])
    assert stored["status"] == "completed" and stored["total_runs"] == 1
    assert cloud_api["publisher"].messages[-1][1]["run_id"] == schedules.slot_run_id(schedule["id"], run_at)
    assert cloud_api["fake"].state(name) is None  # deleted once spent

    # Had the delete failed (the job left behind), its next (yearly) trigger is ignored and deletes it.
    cloud_api["jobs"].create(stored)
    assert cloud_api["fake"].state(name) == "ENABLED"
    assert deliver(cloud_api, name, run_at.replace(year=run_at.year + 1) + timedelta(seconds=3)) == "ignored"
    assert cloud_api["fake"].state(name) is None and len(cloud_api["repo"].runs) == 1


def test_a_one_time_schedule_whose_job_delete_fails_is_cleaned_on_redelivery(cloud_api):
    """The delete after the slot fired is refused (the scheduler's role lacks cloudscheduler.jobs.delete,
    say): the trigger fails and is redelivered; the redelivery is ignored and deletes the job, no second run."""
    run_at = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    created = post(cloud_api, "/api/training/schedules", schedule_body(
        cloud_api["ids"], schedule_type="once", run_at=run_at.isoformat(), timezone="UTC"))
    schedule = created.get_json()["schedule"]
    name = job_of(cloud_api, schedule)
    cloud_api["fake"].fail("delete_job", grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(exceptions.PermissionDenied):
        deliver(cloud_api, name, run_at + timedelta(seconds=3))
    assert cloud_api["repo"].get_schedule(schedule["id"])["status"] == "completed"
    assert cloud_api["fake"].state(name) == "ENABLED"
    assert deliver(cloud_api, name, run_at + timedelta(seconds=3)) == "ignored"
    assert cloud_api["fake"].state(name) is None and len(cloud_api["repo"].runs) == 1


def test_run_now_of_a_scheduled_run_deletes_its_job(cloud_api):
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = post(cloud_api, "/api/training-runs", {"name": "later-recs", "scheduled_at": later,
                                                      "base_experiment_id": cloud_api["ids"]["experiment"]})
    assert response.status_code == 201, response.get_json()
    run = response.get_json()["training_run"]
    name = f"{PARENT}/jobs/trainyard-{run['schedule_id']}"
    assert cloud_api["fake"].state(name) == "ENABLED"
    assert post(cloud_api, f"/api/training-runs/{run['id']}/run-now").status_code == 202
    assert cloud_api["fake"].state(name) is None


# ----------------------------------------------------------------------------- the local ticker


def test_ticker_publishes_each_due_slot_once_and_skips_paused(api):
    from shared.services import scheduling

    at = datetime(2026, 5, 1, tzinfo=UTC)
    body = schedule_body(api["ids"], schedule_type="daily", timezone="UTC")
    first = scheduling.create_schedule(api["repo"], body, *demo_member("dev@example.com"), api["jobs"], at=at)
    paused = scheduling.create_schedule(api["repo"], body, *demo_member("dev@example.com"), api["jobs"], at=at)
    scheduling.pause_schedule(api["repo"], paused["id"], DEV, api["jobs"], at=at)
    publisher = FakePublisher()
    ticker = Ticker(api["repo"], publisher)
    slot = first["next_run_at"]
    assert ticker.tick(slot - timedelta(seconds=1)) == []
    assert ticker.tick(slot) == [(first["id"], slot)]
    assert ticker.tick(slot + timedelta(seconds=1)) == []  # not yet consumed: not published again
    assert publisher.messages == [(topics.SCHEDULE_TRIGGER, {"schedule_id": first["id"]}, {"schedule_id": first["id"]})]
    # The consumer handles it (publish time = the tick): next_run_at moves on, and so does the ticker.
    trigger = ScheduleTrigger.model_validate(publisher.messages[0][1])
    assert scheduling.on_trigger(api["repo"], Effects(api["publisher"], api["jobs"]), trigger, slot, at=slot) == "active"
    assert ticker.tick(slot + timedelta(days=1)) == [(first["id"], slot + timedelta(days=1))]


# ----------------------------------------------------------------------------- functions/scheduler entry point


@pytest.fixture
def composition_root():
    from shared.composition import root

    yield root
    root.reset()


def test_scheduler_function_reads_the_slot_from_the_publish_time(api, composition_root):
    import importlib.util

    from shared.services import scheduling

    spec = importlib.util.spec_from_file_location("scheduler_main", "functions/scheduler/main.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    composition_root.provide(repo=api["repo"], publisher=api["publisher"])
    created = scheduling.create_schedule(api["repo"], schedule_body(api["ids"], schedule_type="cron",
                                                                 cron_expression="*/5 * * * *", timezone="UTC"),
                                      *demo_member("dev@example.com"), api["jobs"], at=datetime.now(UTC) - timedelta(hours=1))
    now = datetime.now(UTC)
    slot = schedules.slots_up_to(api["repo"].get_schedule(created["id"]), now)[-1]

    published = (slot + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    for message_id in ("1", "2"):  # a redelivery
        main.on_schedule_trigger(envelope({"schedule_id": created["id"]}, message_id, published))
    runs_made = [r["id"] for r in api["repo"].runs.values() if r.get("schedule_id") == created["id"]]
    assert runs_made == [schedules.slot_run_id(created["id"], slot)]
    main.on_schedule_trigger(envelope(b"not json", "3", published))  # acknowledged as malformed, not raised
    main.on_schedule_trigger(envelope({"no": "id"}, "4", published))
    assert len(api["repo"].runs) == 1


def test_openapi_documents_the_schedule_routes(api):
    doc = get(api, "/api/openapi.json").get_json()
    assert "/api/training/schedules/{schedule_id}/resume" in doc["paths"]
    assert "/api/training-runs/{run_id}/run-now" in doc["paths"]
    assert doc["components"]["schemas"]["ScheduleRequest"]["properties"]["schedule_type"]["enum"] == [
        "once", "daily", "weekly", "cron", "data"]
    assert doc["components"]["schemas"]["DataTriggerRequest"]["properties"]["source"]["enum"] == [
        "gcs", "bigquery", "folder"]
