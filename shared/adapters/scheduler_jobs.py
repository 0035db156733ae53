"""Where schedule triggers come from: one Cloud Scheduler job per schedule (cloud), or nothing to
set up because the local ticker (scripts/ticker.py) reads the schedules from Firestore and
publishes the same messages. Chosen once, from settings (`scheduler_backend`).

Every job publishes {"schedule_id": id} to `schedule-trigger` at the schedule's cron times in its
time zone. The schedule document is the source of truth; the job mirrors it (paused when paused,
deleted when cancelled); functions/scheduler ignores triggers the document does not allow.
"""
from __future__ import annotations

import json
from typing import Protocol

from shared.domain import schedules
from shared import log
from shared.contract import topics
from shared.adapters.lazy_client import GapicAdapter, gapic_client
from shared.errors import TransientError

JOB_PREFIX = "trainyard-"
# Cloud Scheduler retries a failed publish; the misfire grace in shared/domain/schedules.py covers this span.
RETRY_COUNT = 3
MIN_BACKOFF_S, MAX_BACKOFF_S, MAX_RETRY_DURATION_S, MAX_DOUBLINGS = 10, 300, 900, 3


class SchedulerJobs(Protocol):
    def job_name(self, schedule_id: str) -> str: ...

    def create(self, schedule: dict) -> None: ...

    def pause(self, schedule: dict) -> None: ...

    def resume(self, schedule: dict) -> None: ...

    def delete(self, schedule: dict) -> None: ...


def trigger_payload(schedule_id: str) -> dict:
    return {"schedule_id": schedule_id}


def _transient(exc) -> bool:
    from google.api_core import exceptions

    return isinstance(exc, (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.InternalServerError,
                            exceptions.TooManyRequests, exceptions.Aborted, exceptions.GatewayTimeout))


CALL_BUDGET_S = 20.0


class CloudSchedulerJobs(GapicAdapter):
    """google-cloud-scheduler (scheduler_v1): one Pub/Sub-target job per schedule."""

    def __init__(self, project: str, location: str, client=None, emulator_host: str = ""):
        super().__init__(client, emulator_host)  # emulator_host: TRAINYARD_SCHEDULER_EMULATOR_HOST
        self.project = project
        self.location = location

    def _make_client(self):
        from google.cloud import scheduler_v1

        return gapic_client(scheduler_v1.CloudSchedulerClient, self.emulator_host)

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @staticmethod
    def call_options() -> dict:
        """Each call's retry budget fits its caller's: the client's default retries UNAVAILABLE for
        up to 600 s, longer than the consumers' ack deadline (60 s) and an API request; past
        CALL_BUDGET_S the error is a TransientError and the message is redelivered."""
        from google.api_core import exceptions, retry

        return {"retry": retry.Retry(predicate=retry.if_exception_type(exceptions.ServiceUnavailable,
                                                                       exceptions.DeadlineExceeded),
                                     initial=0.5, maximum=5.0, multiplier=2.0, timeout=CALL_BUDGET_S),
                "timeout": CALL_BUDGET_S}

    def job_name(self, schedule_id: str) -> str:
        return f"{self.parent}/jobs/{JOB_PREFIX}{schedule_id}"

    def job_for(self, schedule: dict):
        from google.cloud import scheduler_v1
        from google.protobuf import duration_pb2

        return scheduler_v1.Job(
            name=self.job_name(schedule["id"]),
            description=f"Trainyard schedule {schedule['name']!r} ({schedule['schedule_type']})"[:500],
            schedule=schedules.cron_for(schedule),
            time_zone=schedule["timezone"],
            pubsub_target=scheduler_v1.PubsubTarget(
                topic_name=f"projects/{self.project}/topics/{topics.SCHEDULE_TRIGGER}",
                data=json.dumps(trigger_payload(schedule["id"])).encode("utf-8"),
                attributes={"schedule_id": schedule["id"]}),
            retry_config=scheduler_v1.RetryConfig(
                retry_count=RETRY_COUNT,
                max_retry_duration=duration_pb2.Duration(seconds=MAX_RETRY_DURATION_S),
                min_backoff_duration=duration_pb2.Duration(seconds=MIN_BACKOFF_S),
                max_backoff_duration=duration_pb2.Duration(seconds=MAX_BACKOFF_S),
                max_doublings=MAX_DOUBLINGS),
        )

    def _call(self, what: str, schedule: dict, fn):
        from google.api_core import exceptions

        try:
            return fn()
        except exceptions.RetryError as exc:  # the call's retry budget ran out (call_options)
            raise TransientError(f"Cloud Scheduler {what} for schedule {schedule['id']} failed: {exc}") from exc
        except exceptions.GoogleAPICallError as exc:
            if _transient(exc):
                raise TransientError(f"Cloud Scheduler {what} for schedule {schedule['id']} failed: {exc}") from exc
            raise

    def create(self, schedule: dict) -> None:
        from google.api_core import exceptions

        job = self.job_for(schedule)
        try:
            self._call("create", schedule, lambda: self.client.create_job(parent=self.parent, job=job, **self.call_options()))
        except exceptions.AlreadyExists:  # a retried create: the document wins
            self._call("update", schedule, lambda: self.client.update_job(job=job, **self.call_options()))
        log.info("cloud scheduler job created", schedule_id=schedule["id"], job=job.name, cron=job.schedule,
                 time_zone=job.time_zone)

    def _state(self, schedule: dict) -> str:
        job = self._call("get", schedule, lambda: self.client.get_job(name=self.job_name(schedule["id"]), **self.call_options()))
        return getattr(job.state, "name", str(job.state))

    def pause(self, schedule: dict) -> None:
        """Idempotent: "a job must be in Job.State.ENABLED to be paused"; one already paused is done
        (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/pause)."""
        from google.api_core import exceptions

        try:
            self._call("pause", schedule, lambda: self.client.pause_job(name=self.job_name(schedule["id"]), **self.call_options()))
        except exceptions.NotFound:
            log.warning("no cloud scheduler job to pause", schedule_id=schedule["id"])
        except exceptions.FailedPrecondition:
            if self._state(schedule) != "PAUSED":
                raise

    def resume(self, schedule: dict) -> None:
        """Idempotent: a job that is already ENABLED (e.g. the schedule was auto-paused while its job
        kept running) is left as it is; "a job must be in Job.State.PAUSED to be resumed"."""
        from google.api_core import exceptions

        try:
            self._call("resume", schedule, lambda: self.client.resume_job(name=self.job_name(schedule["id"]), **self.call_options()))
        except exceptions.NotFound:  # deleted behind our back: the document says it should exist
            self.create(schedule)
        except exceptions.FailedPrecondition:
            if self._state(schedule) != "ENABLED":
                raise

    def delete(self, schedule: dict) -> None:
        from google.api_core import exceptions

        try:
            self._call("delete", schedule, lambda: self.client.delete_job(name=self.job_name(schedule["id"]), **self.call_options()))
        except exceptions.NotFound:
            pass


class LocalTickerJobs:
    """Nothing to create: scripts/ticker.py (started by `make up`) reads active schedules from
    Firestore and publishes the trigger at each next_run_at."""

    def job_name(self, schedule_id: str) -> str:
        return f"local-ticker/{schedule_id}"

    def create(self, schedule: dict) -> None:
        pass

    def pause(self, schedule: dict) -> None:
        pass

    def resume(self, schedule: dict) -> None:
        pass

    def delete(self, schedule: dict) -> None:
        pass


class JobsMirroredOnTrigger(LocalTickerJobs):
    """For a deployable that is not granted Cloud Scheduler (the submitter, run-commands): a schedule that a
    run's end auto-pauses there keeps its job until the job's next trigger, which finds the schedule paused
    and pauses the job (shared/services/scheduling.on_trigger)."""

    def job_name(self, schedule_id: str) -> str:
        return f"mirrored-on-trigger/{schedule_id}"
