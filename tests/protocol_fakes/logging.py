"""Cloud Logging's LoggingServiceV2, as far as Trainyard calls it (ListLogEntries), over its real gRPC protocol
(tests/protocol_fakes/grpc_service.py) with google-cloud-logging's official logging_v2 types.

Tests `write` LogEntry messages as Vertex and Dataflow would (an ml_job's lines, a dataflow_step's worker and
job-message lines); ListLogEntries answers those the request's filter selects (the query language as far as
tests/rehearsal/logging_filter.py reads it, applied to each entry's JSON form), in the documented order —
timestamp, then insert_id (ListLogEntriesRequest.order_by) — `page_size` at a time with a page token.
What it enforces, answering INVALID_ARGUMENT as Logging does: resource_names of `projects/…`, an order_by of
"timestamp asc" or "timestamp desc", a page token only with the filter it was issued for
(https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list).
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import datetime, timezone

import grpc
from google.cloud.logging_v2.types import ListLogEntriesRequest, ListLogEntriesResponse, LogEntry
from google.protobuf import json_format

from tests.rehearsal.logging_filter import matches


def entry(resource_type: str, resource_labels: dict, at: datetime, text: str, severity: str = "INFO",
          log: str = "", insert_id: str = "", project: str = "p") -> LogEntry:
    """A LogEntry as the services write them: Vertex's CustomJobs to logs/<job>, Dataflow's to
    logs/dataflow.googleapis.com%2Fworker or …%2Fjob-message."""
    return LogEntry(log_name=f"projects/{project}/logs/{log or resource_type}", text_payload=text, severity=severity,
                    timestamp=at, insert_id=insert_id or hashlib.sha1(f"{at.timestamp()}{text}".encode()).hexdigest()[:20],
                    resource={"type": resource_type, "labels": resource_labels})


class LoggingServiceFake:
    def __init__(self):
        self.entries: list[LogEntry] = []
        self.requests: list[ListLogEntriesRequest] = []
        self.lock = threading.Lock()

    def write(self, *entries: LogEntry) -> None:
        with self.lock:
            self.entries.extend(entries)

    @staticmethod
    def _key(item: LogEntry):
        pb = LogEntry.pb(item)
        return pb.timestamp.seconds, pb.timestamp.nanos, pb.insert_id

    def list_log_entries(self, request: ListLogEntriesRequest, context):
        self.requests.append(request)
        if not request.resource_names or not all(n.startswith("projects/") for n in request.resource_names):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "resource_names must be projects/[PROJECT_ID], …")
        if request.order_by not in ("", "timestamp asc", "timestamp desc"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"order_by {request.order_by!r} is not supported")
        start = 0
        if request.page_token:
            try:
                token = json.loads(base64.urlsafe_b64decode(request.page_token))
            except ValueError:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid page token")
            if token["filter"] != request.filter:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the page token was issued for another filter")
            start = token["offset"]
        projects = {n.split("/")[1] for n in request.resource_names}
        with self.lock:
            found = sorted((e for e in self.entries if LogEntry.pb(e).log_name.split("/")[1] in projects
                            and matches(request.filter or "", json_format.MessageToDict(LogEntry.pb(e)))),
                           key=self._key, reverse=request.order_by == "timestamp desc")
        size = request.page_size or 1000
        page = found[start:start + size]
        more = start + size < len(found)
        token = base64.urlsafe_b64encode(json.dumps({"filter": request.filter, "offset": start + size}).encode()
                                         ).decode() if more else ""
        return ListLogEntriesResponse(entries=page, next_page_token=token)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(1796600000 + seconds, timezone.utc)


# --------------------------------------------------------------------------- in process, for unit tests


class _Context:
    """What a fake's `context.abort` does on a real server, as the client would raise it."""

    def abort(self, code: grpc.StatusCode, message: str):
        from google.api_core import exceptions

        raise exceptions.from_grpc_status(code, message)


class _Pager:
    def __init__(self, response):
        self.pages = iter([response])


class InProcess:
    """Logging's GAPIC client as the logs reader calls it, answered by the same fake the rehearsal serves over
    gRPC, called in process with the official request type."""

    def __init__(self, logging: LoggingServiceFake):
        self.logging_fake = logging

    def list_log_entries(self, request):
        return _Pager(self.logging_fake.list_log_entries(ListLogEntriesRequest(request), _Context()))


class VertexRest:
    """Vertex AI's REST API as shared.adapters.rest_client.RestClient reaches it (the API function has no
    Vertex SDK), answered from the gRPC fakes' state: REST's JSON is the proto3 JSON of the same messages."""

    def __init__(self, pipelines, jobs):
        self.pipelines, self.jobs = pipelines, jobs
        self.calls: list[tuple] = []

    def call(self, method, url, what, **kwargs):
        from google.api_core import exceptions
        from google.cloud import aiplatform_v1

        from shared.errors import NotFound

        self.calls.append((method, url, kwargs))
        name = url.split("/v1/", 1)[1]
        try:
            if "/pipelineJobs/" in name:
                job = self.pipelines.get_pipeline_job(aiplatform_v1.GetPipelineJobRequest(name=name), _Context())
                return json_format.MessageToDict(aiplatform_v1.PipelineJob.pb(job))
            if name.endswith("/customJobs"):
                found = self.jobs.list_custom_jobs(aiplatform_v1.ListCustomJobsRequest(
                    parent=name.rsplit("/", 1)[0], filter=kwargs["params"]["filter"]), _Context())
                return json_format.MessageToDict(aiplatform_v1.ListCustomJobsResponse.pb(found))
        except exceptions.NotFound:
            raise NotFound(what) from None
        raise AssertionError(f"unexpected call {url}")


class RunJobs:
    """A run's jobs as Vertex and Dataflow leave them, and their lines in Cloud Logging: the PipelineJob with its
    tasks' CustomJobs, the Trainer's own CustomJob (labelled with the run and attempt), the data stages'
    Dataflow jobs (named by shared/contract/dataflow_jobs.py). `logs` is the reader over them, in process."""

    def __init__(self, project: str = "p", region: str = "l", server=None):
        """With a tests.protocol_fakes.grpc_service.FakeServer, Logging is served over gRPC there and the reader
        reaches it with the official client; without, in process."""
        from google.cloud import aiplatform_v1

        from shared.adapters.run_logs import CloudLoggingLogs
        from tests.protocol_fakes.vertex import JobServiceFake, PipelineServiceFake

        self.aiplatform, self.project, self.region = aiplatform_v1, project, region
        self.logging, self.pipelines, self.jobs = LoggingServiceFake(), PipelineServiceFake(), JobServiceFake()
        self.vertex = VertexRest(self.pipelines, self.jobs)
        if server is None:
            self.logs = CloudLoggingLogs(project, region, self.vertex, logging_client=InProcess(self.logging))
        else:
            from google.cloud.logging_v2.services.logging_service_v2.transports.grpc import (
                LoggingServiceV2GrpcTransport)

            server.add(LoggingServiceV2GrpcTransport, self.logging)
            self.logs = CloudLoggingLogs(project, region, self.vertex, emulator_host=server.address)

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def pipeline(self, run_id: str, attempt: int, main_jobs: dict[str, str]) -> None:
        """The attempt's PipelineJob; main_jobs: task name -> the CustomJob id it ran as."""
        from shared.contract.labels import job_id_for

        name = f"{self.parent}/pipelineJobs/{job_id_for(run_id, attempt)}"
        self.pipelines.jobs[name] = self.aiplatform.PipelineJob(name=name, job_detail={"task_details": [
            {"task_name": task, "executor_detail": {"container_detail": {"main_job": f"{self.parent}/customJobs/{job}"}}}
            for task, job in main_jobs.items()]})

    def trainer_job(self, run_id: str, attempt: int, job_id: str, region: str = "") -> None:
        from shared.contract.labels import job_labels

        parent = f"projects/{self.project}/locations/{region}" if region else self.parent
        self.jobs.add_custom_job(parent, job_id, job_labels(run_id, attempt))

    def task_line(self, job_id: str, seconds: float, text: str, severity: str = "INFO") -> None:
        self.logging.write(entry("ml_job", {"job_id": job_id, "project_id": self.project}, at(seconds), text, severity,
                                 log=job_id, project=self.project))

    def dataflow_line(self, run_id: str, attempt: int, stage: str, seconds: float, text: str, severity: str = "INFO",
                      kind: str = "worker") -> None:
        from shared.contract.dataflow_jobs import dataflow_job_name

        name = dataflow_job_name(run_id, attempt, stage)
        self.logging.write(entry("dataflow_step", {"job_name": name, "job_id": f"2026-12-07_{name}", "region": self.region,
                                                   "step_id": ""}, at(seconds), text, severity,
                                 log=f"dataflow.googleapis.com%2F{kind}", project=self.project))
