"""Cloud Scheduler's CloudScheduler service over its real gRPC protocol, keeping jobs and enforcing
the documented rules (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs):
names `projects/P/locations/L/jobs/ID` (ID: letters, digits, '-' and '_', up to 500), a unix-cron
schedule and an IANA time zone, a Pub/Sub target on `projects/P/topics/T`; "a job must be in
Job.State.ENABLED to be paused" and "in Job.State.PAUSED to be resumed" (FAILED_PRECONDITION otherwise);
ALREADY_EXISTS, NOT_FOUND (UpdateJob too: "If the job does not exist, NOT_FOUND is returned").
PubsubTarget: "The topic must be in the same project as the Cloud Scheduler job" and "Pubsub message must
contain either non-empty data, or at least one attribute"; RetryConfig.retry_count: "Values greater than
5 and negative values are not allowed" (https://cloud.google.com/python/docs/reference/cloudscheduler/latest/
google.cloud.scheduler_v1.types.PubsubTarget and ...types.RetryConfig).

What a test plays: `fire(name, publish)` (the service agent publishing a job's message),
`set_state(name, "DISABLED")` (the system disabling a job), and `fail(method, code)` (the next call of
`method` answers that status, e.g. UNAVAILABLE or PERMISSION_DENIED)."""
from __future__ import annotations

import functools
import re
import threading
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc
from google.cloud import scheduler_v1
from google.protobuf import empty_pb2

JOB_NAME = re.compile(r"(projects/[^/]+/locations/[^/]+)/jobs/([A-Za-z0-9_-]{1,500})")
TOPIC = re.compile(r"projects/([^/]+)/topics/[A-Za-z][A-Za-z0-9._~%+-]{2,254}")
MAX_RETRY_COUNT = 5
CRON_FIELD = re.compile(r"[0-9*,/-]+|[A-Za-z]{3}(-[A-Za-z]{3})?")


def _cron_problem(expression: str) -> str | None:
    fields = expression.split()
    if len(fields) != 5 or not all(CRON_FIELD.fullmatch(f) for f in fields):
        return f"schedule {expression!r} is not a unix-cron expression (5 fields)"
    return None


def _injectable(method):
    """A call answers the status `fail(...)` queued for its method, before doing anything."""
    @functools.wraps(method)
    def call(self, request, context):
        with self.lock:
            queued = self.failures.get(method.__name__)
            failure = queued.pop(0) if queued else None
        if failure is not None:
            context.abort(*failure)
        return method(self, request, context)
    return call


class CloudSchedulerFake:
    def __init__(self, location: str | None = None):
        self.location = location
        self.jobs: dict[str, scheduler_v1.Job] = {}
        self.failures: dict[str, list[tuple[grpc.StatusCode, str]]] = {}
        self.lock = threading.Lock()

    def _job(self, name: str, context) -> scheduler_v1.Job:
        job = self.jobs.get(name)
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Job not found: {name}")
        return job

    def _check(self, job: scheduler_v1.Job, context) -> None:
        m = JOB_NAME.fullmatch(job.name)
        if not m:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"job name {job.name!r} is not projects/P/locations/L/jobs/ID")
        problem = _cron_problem(job.schedule)
        if problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        try:
            ZoneInfo(job.time_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"time_zone {job.time_zone!r} is not an IANA time zone")
        target = job.pubsub_target
        topic = TOPIC.fullmatch(target.topic_name)
        if not topic:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"pubsub_target.topic_name {target.topic_name!r}")
        if topic.group(1) != job.name.split("/")[1]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"topic {target.topic_name} is not in the job's project (the same project is required)")
        if not target.data and not target.attributes:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "pubsub_target: the message must contain either non-empty data, or at least one attribute")
        if not 0 <= job.retry_config.retry_count <= MAX_RETRY_COUNT:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"retry_config.retry_count {job.retry_config.retry_count}: 0 to {MAX_RETRY_COUNT}")

    @_injectable
    def create_job(self, request: scheduler_v1.CreateJobRequest, context):
        job = scheduler_v1.Job(request.job)
        self._check(job, context)
        if not job.name.startswith(request.parent + "/jobs/"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"job {job.name} is not under {request.parent}")
        if self.location and f"/locations/{self.location}/" not in job.name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"location of {job.name} is not {self.location}")
        with self.lock:
            if job.name in self.jobs:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Job {job.name} already exists")
            job.state = scheduler_v1.Job.State.ENABLED
            job.user_update_time = datetime.now(timezone.utc)
            self.jobs[job.name] = job
            return scheduler_v1.Job(job)

    @_injectable
    def get_job(self, request: scheduler_v1.GetJobRequest, context):
        with self.lock:
            return scheduler_v1.Job(self._job(request.name, context))

    @_injectable
    def list_jobs(self, request: scheduler_v1.ListJobsRequest, context):
        with self.lock:
            jobs = [scheduler_v1.Job(j) for n, j in self.jobs.items() if n.startswith(request.parent + "/jobs/")]
        return scheduler_v1.ListJobsResponse(jobs=jobs)

    @_injectable
    def update_job(self, request: scheduler_v1.UpdateJobRequest, context):
        job = scheduler_v1.Job(request.job)
        self._check(job, context)
        with self.lock:
            current = self._job(job.name, context)
            job.state = current.state
            job.user_update_time = datetime.now(timezone.utc)
            self.jobs[job.name] = job
            return scheduler_v1.Job(job)

    @_injectable
    def delete_job(self, request: scheduler_v1.DeleteJobRequest, context):
        with self.lock:
            self._job(request.name, context)
            del self.jobs[request.name]
        return empty_pb2.Empty()

    def _move(self, name: str, context, want: str, to: str) -> scheduler_v1.Job:
        with self.lock:
            job = self._job(name, context)
            if job.state.name != want:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"Job {name} is {job.state.name}: it must be {want} to be {'paused' if to == 'PAUSED' else 'resumed'}")
            job.state = scheduler_v1.Job.State[to]
            return scheduler_v1.Job(job)

    @_injectable
    def pause_job(self, request: scheduler_v1.PauseJobRequest, context):
        return self._move(request.name, context, "ENABLED", "PAUSED")

    @_injectable
    def resume_job(self, request: scheduler_v1.ResumeJobRequest, context):
        return self._move(request.name, context, "PAUSED", "ENABLED")

    # ------------------------------------------------------------------ what a test plays

    def state(self, name: str) -> str | None:
        with self.lock:
            job = self.jobs.get(name)
            return job.state.name if job else None

    def set_state(self, name: str, state: str) -> None:
        """What the system does to a job (DISABLED "due to error", UPDATE_FAILED); a user cannot."""
        with self.lock:
            self.jobs[name].state = scheduler_v1.Job.State[state]

    def fail(self, method: str, code: grpc.StatusCode, message: str = "", times: int = 1) -> None:
        """The next `times` calls of `method` (create_job, pause_job, ...) answer `code`."""
        with self.lock:
            self.failures.setdefault(method, []).extend([(code, message or f"injected {code.name}")] * times)

    def fire(self, name: str, publish) -> str:
        """What the Cloud Scheduler service agent does at a job's time: publish its target's message.
        `publish(topic_path, data, attributes)` returns the message id."""
        with self.lock:
            target = self.jobs[name].pubsub_target
            topic, data, attributes = target.topic_name, bytes(target.data), dict(target.attributes)
        return publish(topic, data, attributes)


def start(location: str):
    """(server, fake): a server speaking CloudScheduler."""
    from google.cloud.scheduler_v1.services.cloud_scheduler.transports.grpc import CloudSchedulerGrpcTransport

    from tests.protocol_fakes.grpc_service import FakeServer

    fake = CloudSchedulerFake(location)
    return FakeServer().add(CloudSchedulerGrpcTransport, fake).start(), fake
