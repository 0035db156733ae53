"""PipelineBackend: create / get / cancel a pipeline job. One interface, two sides:

- VertexPipelineBackend: Vertex AI Pipelines through the official GAPIC client
  (`google.cloud.aiplatform_v1`, imported lazily — it is heavy for a cold start).
- LocalPipelineServiceBackend: the local pipeline service (same contract over HTTP), which runs the
  same compiled TFX pipeline on this machine.

Both speak Vertex's vocabulary: job states `PIPELINE_STATE_*`, task states `PENDING|RUNNING|SUCCEEDED|
SKIPPED|FAILED|CANCELLED|...`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Protocol

from shared.contract.pipeline_jobs import JobSnapshot, TaskSnapshot
from shared.errors import NotFound, PermanentError, TransientError
from shared.adapters.vertex_gapic import RegionalService, gapic
from shared.domain.root_cause import from_text, has_traceback


@dataclass(frozen=True)
class JobRequest:
    job_id: str
    display_name: str
    labels: dict
    pipeline_job_path: str  # the compiled PipelineJob JSON (local path)
    pipeline_job_uri: str  # the same JSON kept with the run's artifacts
    run_spec_uri: str
    pipeline_root: str
    service_account: str = ""
    enable_caching: bool = True


class PipelineBackend(Protocol):
    def create_job(self, request: JobRequest) -> JobSnapshot:
        """Create the job; an already existing job with this id is success (returns it)."""

    def get_job(self, job_id: str) -> JobSnapshot:
        ...

    def cancel_job(self, job_id: str) -> None:
        ...


def _parse_time(value) -> Optional[datetime]:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# --------------------------------------------------------------------------- Vertex AI Pipelines


class VertexPipelineBackend(RegionalService):
    CLIENT = "PipelineServiceClient"

    def job_name(self, job_id: str) -> str:
        return f"{self.parent}/pipelineJobs/{job_id}"

    @staticmethod
    def build_pipeline_job(request: JobRequest, compiled: dict):
        """The PipelineJob proto for a compiled KubeflowV2DagRunner JSON (pure: tested at the boundary)."""
        aiplatform_v1 = gapic()
        spec = compiled.get("pipelineSpec", compiled)
        # What aiplatform.PipelineJob(enable_caching=...) does (pipeline_jobs.py, _set_enable_caching_value): every
        # task says it, off included. Which runs may hit the cache is decided by what the compiled tasks carry
        # (pipeline_compiler/pipeline.py run_scope) and by the submitter (shared/domain/pipeline_cache.py).
        for task in spec.get("root", {}).get("dag", {}).get("tasks", {}).values():
            task["cachingOptions"] = {"enableCache": request.enable_caching}
        # TFX 1.15 writes schemaVersion 2.0.0 specs whose runtime parameters are `parameters`
        # (typed Values); newer specs use `parameterValues`. Both are forwarded (review B8).
        runtime = {k: v for k, v in compiled.get("runtimeConfig", {}).items() if k in ("parameters", "parameterValues")}
        runtime_config = aiplatform_v1.PipelineJob.RuntimeConfig.from_json(json.dumps(runtime))
        runtime_config.gcs_output_directory = request.pipeline_root
        return aiplatform_v1.PipelineJob(
            display_name=request.display_name,
            pipeline_spec=spec,
            labels={**compiled.get("labels", {}), **request.labels},
            runtime_config=runtime_config,
            service_account=request.service_account,
        )

    def create_job(self, request: JobRequest) -> JobSnapshot:
        from google.api_core import exceptions

        with open(request.pipeline_job_path) as handle:
            compiled = json.load(handle)
        job = self.build_pipeline_job(request, compiled)
        try:
            created = self.client.create_pipeline_job(parent=self.parent, pipeline_job=job,
                                                      pipeline_job_id=request.job_id)
            return self._snapshot(created, request.job_id)
        except exceptions.AlreadyExists:
            return self.get_job(request.job_id)  # a redelivered run-submit: the job is ours
        except (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.InternalServerError,
                exceptions.TooManyRequests) as exc:
            raise TransientError(f"Vertex AI Pipelines: {exc.message}") from exc
        except exceptions.GoogleAPICallError as exc:
            raise PermanentError(f"Vertex AI Pipelines refused the job: {exc.message}", stage="Compile") from exc

    def get_job(self, job_id: str) -> JobSnapshot:
        from google.api_core import exceptions

        try:
            return self._snapshot(self.client.get_pipeline_job(name=self.job_name(job_id)), job_id,
                                  self._custom_job_error)
        except exceptions.NotFound as exc:
            raise NotFound(f"pipeline job {job_id}") from exc
        except (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.InternalServerError,
                exceptions.TooManyRequests) as exc:
            raise TransientError(f"Vertex AI Pipelines: {exc.message}") from exc

    def cancel_job(self, job_id: str) -> None:
        from google.api_core import exceptions

        try:
            self.client.cancel_pipeline_job(name=self.job_name(job_id))
        except exceptions.FailedPrecondition:
            pass  # already terminal
        except (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded) as exc:
            raise TransientError(str(exc)) from exc

    def _custom_job_error(self, name: str) -> str:
        """The error text of the CustomJob a container task ran as (JobService.GetCustomJob); "" if unreadable."""
        from google.api_core import exceptions

        try:
            job = _JobService(self.project, self.region, emulator_host=self.emulator_host).client.get_custom_job(name=name)
        except exceptions.GoogleAPICallError:
            return ""
        return job.error.message if job.error else ""

    @staticmethod
    def _snapshot(job, job_id: str, custom_job_error=None) -> JobSnapshot:
        def state_name(value) -> str:
            return getattr(value, "name", str(value))

        tasks = tuple(
            TaskSnapshot(task_name=t.task_name, state=state_name(t.state), start_time=_parse_time(t.start_time),
                         end_time=_parse_time(t.end_time), error=task_error(t, custom_job_error))
            for t in job.job_detail.task_details)
        return JobSnapshot(job_id=job_id, name=job.name, state=state_name(job.state),
                           create_time=_parse_time(job.create_time), start_time=_parse_time(job.start_time),
                           end_time=_parse_time(job.end_time),
                           error=(job.error.message or None) if job.error else None,
                           labels=dict(job.labels), tasks=tasks)


class _JobService(RegionalService):
    CLIENT = "JobServiceClient"


def task_error(task, custom_job_error=None) -> Optional[str]:
    """A failed task's root cause (shared/domain/root_cause.py) from its `error` (google.rpc.Status). When that
    holds no traceback (a wrapper such as "The replica workerpool0-0 exited with a non-zero status of 1"),
    the CustomJob the task ran as (`executor_detail.container_detail.failed_main_jobs`, else `main_job`)
    is read through `custom_job_error(name)`, and its error used when it holds the traceback."""
    message = (task.error.message or "") if task.error else ""
    if not message:
        return None
    if has_traceback(message) or custom_job_error is None:
        return from_text(message)
    container = task.executor_detail.container_detail
    names = list(container.failed_main_jobs) or ([container.main_job] if container.main_job else [])
    inner = custom_job_error(names[-1]) if names else ""
    return from_text(inner if has_traceback(inner) else message)


# --------------------------------------------------------------------------- the local pipeline service


class LocalPipelineServiceBackend:
    """HTTP client of the local pipeline service (pipeline_compiler's local runner of compiled jobs).

    Contract: POST /v1/jobs {job_id, display_name, labels, pipeline_job_uri, run_spec_uri,
    pipeline_root} → 200 job (409 when the id exists); GET /v1/jobs/{job_id} → job;
    POST /v1/jobs/{job_id}:cancel. A job is {job_id, name, state, create_time, start_time, end_time,
    error, labels, tasks: [{task_name, state, start_time, end_time, error}]}.
    """

    def __init__(self, base_url: str, timeout_s: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict | None = None):
        import requests

        try:
            response = requests.request(method, self.base_url + path, json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise TransientError(f"local pipeline service unreachable: {exc}") from exc
        if response.status_code >= 500:
            raise TransientError(f"local pipeline service: HTTP {response.status_code} {response.text[:200]}")
        return response

    def create_job(self, request: JobRequest) -> JobSnapshot:
        response = self._call("POST", "/v1/jobs", {
            "job_id": request.job_id, "display_name": request.display_name, "labels": request.labels,
            "pipeline_job_uri": request.pipeline_job_uri, "run_spec_uri": request.run_spec_uri,
            "pipeline_root": request.pipeline_root, "enable_caching": request.enable_caching})
        if response.status_code == 409:
            return self.get_job(request.job_id)
        if response.status_code >= 400:
            raise PermanentError(f"local pipeline service refused the job: {response.text[:500]}", stage="Compile")
        return self.snapshot(response.json())

    def get_job(self, job_id: str) -> JobSnapshot:
        response = self._call("GET", f"/v1/jobs/{job_id}")
        if response.status_code == 404:
            raise NotFound(f"pipeline job {job_id}")
        return self.snapshot(response.json())

    def cancel_job(self, job_id: str) -> None:
        response = self._call("POST", f"/v1/jobs/{job_id}:cancel")
        if response.status_code == 404:
            raise NotFound(f"pipeline job {job_id}")

    @staticmethod
    def snapshot(body: dict) -> JobSnapshot:
        tasks = tuple(TaskSnapshot(task_name=t["task_name"], state=t["state"],
                                   start_time=_parse_time(t.get("start_time")),
                                   end_time=_parse_time(t.get("end_time")), error=t.get("error"))
                      for t in body.get("tasks", []))
        return JobSnapshot(job_id=body["job_id"], name=body.get("name", body["job_id"]), state=body["state"],
                           create_time=_parse_time(body.get("create_time")),
                           start_time=_parse_time(body.get("start_time")),
                           end_time=_parse_time(body.get("end_time")), error=body.get("error"),
                           labels=body.get("labels", {}), tasks=tasks)
