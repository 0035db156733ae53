"""Vertex AI's PipelineService and JobService, as far as Trainyard calls them, over their real gRPC
protocol (tests/protocol_fakes/grpc_service.py). They keep state and enforce the documented rules
that matter here, answering with Google's status codes:

- resource names `projects/{project}/locations/{location}/pipelineJobs/{id}` (customJobs likewise);
- pipeline_job_id "less than 128 characters, valid characters are /[a-z][0-9]-/" and unique
  (ALREADY_EXISTS), labels "no longer than 64 characters, lowercase letters, numeric characters,
  underscores and dashes" (keys start with a letter; at most 64), a pipeline spec and a
  gcs_output_directory (INVALID_ARGUMENT otherwise);
- cancel of a job that already ended: FAILED_PRECONDITION; an unknown name: NOT_FOUND.
  (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.pipelineJobs)

Tests play a job's life with `advance(job_id, state, tasks)`, and the Trainer's own CustomJob with
`add_custom_job(...)`, as Vertex would while the pipeline runs.
"""
from __future__ import annotations

import re
import threading
from datetime import datetime, timezone

import grpc
from google.cloud import aiplatform_v1
from google.protobuf import empty_pb2

NAME = re.compile(r"projects/([^/]+)/locations/([^/]+)")
JOB_ID = re.compile(r"[a-z][a-z0-9-]{0,127}")
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,63}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,64}")
TERMINAL = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}
JOB_TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


def _now():
    return datetime.now(timezone.utc)


def _labels_problem(labels) -> str | None:
    if len(labels) > 64:
        return "at most 64 labels"
    for key, value in labels.items():
        if not LABEL_KEY.fullmatch(key) or not LABEL_VALUE.fullmatch(value):
            return f"label {key}={value!r}: keys and values are lowercase letters, digits, '_' and '-' (keys start with a letter), up to 64"
    return None


def _parent(parent: str, context, location: str | None):
    m = NAME.fullmatch(parent)
    if not m:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"parent {parent!r} is not projects/P/locations/L")
    if location and m.group(2) != location:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"location {m.group(2)} is not served at this endpoint ({location})")
    return m


class PipelineServiceFake:
    def __init__(self, location: str | None = None):
        self.location = location
        self.jobs: dict[str, aiplatform_v1.PipelineJob] = {}
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ the methods the clients call

    def create_pipeline_job(self, request: aiplatform_v1.CreatePipelineJobRequest, context):
        _parent(request.parent, context, self.location)
        job_id = request.pipeline_job_id
        if not JOB_ID.fullmatch(job_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"pipeline_job_id {job_id!r} must match [a-z][a-z0-9-]{{0,127}}")
        job = aiplatform_v1.PipelineJob(request.pipeline_job)
        problem = _labels_problem(dict(job.labels))
        if problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        spec = dict(job.pipeline_spec)
        if not spec.get("root") or not spec.get("deploymentSpec") or not spec.get("pipelineInfo"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "pipeline_spec needs root, deploymentSpec and pipelineInfo")
        if not job.runtime_config.gcs_output_directory:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "runtime_config.gcs_output_directory is required")
        name = f"{request.parent}/pipelineJobs/{job_id}"
        with self.lock:
            if name in self.jobs:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"PipelineJob {name} already exists")
            job.name = name
            job.state = aiplatform_v1.PipelineState.PIPELINE_STATE_PENDING
            job.create_time = _now()
            self.jobs[name] = job
            return aiplatform_v1.PipelineJob(job)

    def get_pipeline_job(self, request: aiplatform_v1.GetPipelineJobRequest, context):
        with self.lock:
            job = self.jobs.get(request.name)
            if job is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"PipelineJob {request.name} does not exist")
            return aiplatform_v1.PipelineJob(job)

    def list_pipeline_jobs(self, request: aiplatform_v1.ListPipelineJobsRequest, context):
        _parent(request.parent, context, self.location)
        with self.lock:
            jobs = [aiplatform_v1.PipelineJob(j) for n, j in self.jobs.items() if n.startswith(request.parent + "/")]
        return aiplatform_v1.ListPipelineJobsResponse(pipeline_jobs=[j for j in jobs if _matches(j, request.filter)])

    def cancel_pipeline_job(self, request: aiplatform_v1.CancelPipelineJobRequest, context):
        with self.lock:
            job = self.jobs.get(request.name)
            if job is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"PipelineJob {request.name} does not exist")
            if job.state.name in TERMINAL:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"PipelineJob {request.name} is in state {job.state.name}")
            job.state = aiplatform_v1.PipelineState.PIPELINE_STATE_CANCELLED
            job.end_time = _now()
        return empty_pb2.Empty()

    # ------------------------------------------------------------------ what a test plays

    def job(self, job_id: str) -> aiplatform_v1.PipelineJob:
        with self.lock:
            return next(aiplatform_v1.PipelineJob(j) for n, j in self.jobs.items() if n.endswith("/" + job_id))

    def advance(self, job_id: str, state: str, tasks: dict[str, str] | None = None) -> aiplatform_v1.PipelineJob:
        """Move a job (and its tasks, name -> PipelineTaskDetail.State name) as Vertex would."""
        with self.lock:
            job = next(j for n, j in self.jobs.items() if n.endswith("/" + job_id))
            job.state = aiplatform_v1.PipelineState[state]
            now = _now()
            if state == "PIPELINE_STATE_RUNNING" and not job.start_time:
                job.start_time = now
            if state in TERMINAL:
                job.end_time = now
            details = {t.task_name: t for t in job.job_detail.task_details}
            for task_name, task_state in (tasks or {}).items():
                task = details.get(task_name) or aiplatform_v1.PipelineTaskDetail(task_name=task_name, create_time=now)
                task.state = aiplatform_v1.PipelineTaskDetail.State[task_state]
                if task_state == "RUNNING" and not task.start_time:
                    task.start_time = now
                if task_state in ("SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"):
                    task.end_time = now
                details[task_name] = task
            job.job_detail = aiplatform_v1.PipelineJobDetail(task_details=list(details.values()))
            return aiplatform_v1.PipelineJob(job)


class JobServiceFake:
    """CustomJobs: the Trainer's own job (TFX's Vertex Trainer creates it, labelled with the run)."""

    def __init__(self, location: str | None = None):
        self.location = location
        self.custom_jobs: dict[str, aiplatform_v1.CustomJob] = {}
        self.lock = threading.Lock()

    def list_custom_jobs(self, request: aiplatform_v1.ListCustomJobsRequest, context):
        _parent(request.parent, context, self.location)
        with self.lock:
            jobs = [aiplatform_v1.CustomJob(j) for n, j in self.custom_jobs.items() if n.startswith(request.parent + "/")]
        return aiplatform_v1.ListCustomJobsResponse(custom_jobs=[j for j in jobs if _matches(j, request.filter)])

    def cancel_custom_job(self, request: aiplatform_v1.CancelCustomJobRequest, context):
        with self.lock:
            job = self.custom_jobs.get(request.name)
            if job is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"CustomJob {request.name} does not exist")
            if job.state.name in JOB_TERMINAL:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"CustomJob {request.name} is in state {job.state.name}")
            job.state = aiplatform_v1.JobState.JOB_STATE_CANCELLED
        return empty_pb2.Empty()

    def add_custom_job(self, parent: str, job_id: str, labels: dict, state: str = "JOB_STATE_RUNNING"):
        with self.lock:
            name = f"{parent}/customJobs/{job_id}"
            self.custom_jobs[name] = aiplatform_v1.CustomJob(name=name, display_name=job_id, labels=labels,
                                                             state=aiplatform_v1.JobState[state], create_time=_now())
            return name

    def state(self, name: str) -> str:
        with self.lock:
            return self.custom_jobs[name].state.name


_LABEL_FILTER = re.compile(r'labels\.([a-z0-9_-]+)\s*=\s*"([^"]*)"')


def _matches(resource, filter_text: str) -> bool:
    """The subset of AIP-160 filters the project writes: labels.K="V" terms joined with AND."""
    if not filter_text:
        return True
    terms = [t.strip() for t in filter_text.split(" AND ")]
    for term in terms:
        m = _LABEL_FILTER.fullmatch(term)
        if not m:
            raise ValueError(f"unsupported filter term {term!r}")
        if resource.labels.get(m.group(1)) != m.group(2):
            return False
    return True


def start(location: str):
    """A server with both services; returns (server, pipelines, jobs)."""
    from google.cloud.aiplatform_v1.services.job_service.transports.grpc import JobServiceGrpcTransport
    from google.cloud.aiplatform_v1.services.pipeline_service.transports.grpc import PipelineServiceGrpcTransport

    from tests.protocol_fakes.grpc_service import FakeServer

    pipelines, jobs = PipelineServiceFake(location), JobServiceFake(location)
    server = FakeServer().add(PipelineServiceGrpcTransport, pipelines).add(JobServiceGrpcTransport, jobs).start()
    return server, pipelines, jobs
