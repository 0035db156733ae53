"""Where the API reads a run's logs and the GPU quota from, chosen once from settings.

Cloud: Cloud Logging (`entries:list`) for the job's task logs, the Cloud Quotas API for the Vertex
training GPU quota and Cloud Monitoring for its current usage — all over their REST APIs with
google-auth's AuthorizedSession (the API function stays light: no Vertex SDK, no extra clients).
Local: the local pipeline service's per-task logs; no quota applies on one machine.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Optional, Protocol

from shared.adapters.lazy_client import LazyClient
from shared.contract import labels
from shared.contract.nodes import NODE_OF_STAGE, stage_for_task
from shared.errors import FieldError, NotFound, TransientError
from shared.validation import REGION

MAX_PAGE_SIZE = 500
# Vertex custom-training quota metric per accelerator (Spot/preemptible VMs have their own quota).
GPU_QUOTA_NAMES = {"NVIDIA_TESLA_T4": "nvidia_t4", "NVIDIA_L4": "nvidia_l4", "NVIDIA_TESLA_V100": "nvidia_v100",
                   "NVIDIA_TESLA_A100": "nvidia_a100"}


def quota_metric(gpu_type: str, preemptible: bool) -> str:
    return (f"aiplatform.googleapis.com/custom_model_training_{'preemptible_' if preemptible else ''}"
            f"{GPU_QUOTA_NAMES[gpu_type]}_gpus")


class LogSource(Protocol):
    def read(self, run: dict, job_id: str, stage: Optional[str], page_size: int, cursor: Optional[dict]) -> dict:
        """{entries: [{timestamp, severity, stage, task, message}], next_cursor, source}. The cursor is where a
        previous read ended (its next_cursor), handed back by the API only inside a token it signed
        (shared/page_tokens.py); a source never sees anything a client wrote."""


class GpuQuota(Protocol):
    def check(self, region: str, gpu_type: str, gpu_count: int, preemptible: bool) -> dict: ...


# --------------------------------------------------------------------------- cloud


class RestClient:
    """One AuthorizedSession per process (Application Default Credentials), created lazily."""

    def __init__(self, session=None):
        self._session = LazyClient(self._make_session, session)

    @staticmethod
    def _make_session():
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        return AuthorizedSession(credentials)

    @property
    def session(self):
        return self._session.get()

    def call(self, method: str, url: str, what: str, **kwargs) -> dict:
        import requests

        try:
            response = self.session.request(method, url, timeout=30, **kwargs)
        except requests.RequestException as exc:
            raise TransientError(f"{what}: {exc}") from exc
        if response.status_code == 404:
            raise NotFound(what)
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"{what}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermissionError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()


class CloudLoggingLogs:
    """The logs of the job's tasks: each task runs as a CustomJob (resource.type ml_job), and the
    Trainer starts its own CustomJob labelled with the run."""

    def __init__(self, project: str, region: str, rest: Optional[RestClient] = None):
        self.project = project
        self.region = region
        self.rest = rest or RestClient()

    def _task_jobs(self, run: dict, job_id: str) -> dict[str, str]:
        base = f"https://{self.region}-aiplatform.googleapis.com/v1/projects/{self.project}/locations/{self.region}"
        jobs: dict[str, str] = {}
        try:
            job = self.rest.call("GET", f"{base}/pipelineJobs/{job_id}", f"pipeline job {job_id}")
        except NotFound:
            return jobs
        for task in (job.get("jobDetail") or {}).get("taskDetails", []):
            stage = stage_for_task(task.get("taskName", ""))
            main = ((task.get("executorDetail") or {}).get("containerDetail") or {}).get("mainJob")
            if stage and main:
                jobs[main.rsplit("/", 1)[-1]] = stage
        run_filter = f'labels.{labels.RUN_ID_LABEL}="{labels.label_value(run["id"])}"'  # the Trainer's CustomJobs carry it
        listed = self.rest.call("GET", f"{base}/customJobs", "the run's training jobs",
                                params={"filter": run_filter, "pageSize": 100})
        for custom in listed.get("customJobs", []):
            jobs[custom["name"].rsplit("/", 1)[-1]] = "Train"
        return jobs

    def read(self, run, job_id, stage, page_size, cursor):
        if cursor:  # the same jobs as the first page: Logging pages only with the same filter
            jobs = cursor["m"]
        else:
            jobs = {k: v for k, v in self._task_jobs(run, job_id).items() if not stage or v == stage}
        log_filter = task_logs_filter(jobs)
        if log_filter is None:
            return {"entries": [], "next_cursor": None, "source": "cloud_logging"}
        body = {"resourceNames": [f"projects/{self.project}"], "filter": log_filter, "orderBy": "timestamp asc",
                "pageSize": page_size}
        if cursor and cursor.get("t"):
            body["pageToken"] = cursor["t"]
        try:
            found = self.rest.call("POST", "https://logging.googleapis.com/v2/entries:list", "Cloud Logging", json=body)
        except PermissionError as exc:
            raise TransientError(str(exc)) from exc
        entries = []
        for entry in found.get("entries", []):
            payload = entry.get("jsonPayload") or {}
            job = (entry.get("resource") or {}).get("labels", {}).get("job_id", "")
            entries.append({"timestamp": entry.get("timestamp"), "severity": entry.get("severity", "DEFAULT"),
                            "stage": jobs.get(job), "task": job,
                            "message": entry.get("textPayload") or payload.get("message") or json.dumps(payload)})
        next_token = found.get("nextPageToken")
        # Logging wants "the values of other method parameters identical to those in the previous call"
        # (https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list): the jobs ride along.
        return {"entries": entries, "source": "cloud_logging",
                "next_cursor": {"t": next_token, "m": jobs} if next_token else None}


# A Vertex CustomJob id is numeric; anything else is not a job of ours and never reaches a filter.
_JOB_ID = re.compile(r"^[0-9A-Za-z_-]{1,128}$")


def logging_string(value: str) -> str:
    """A Logging query string literal, double-quoted with backslash and quote escaped (Logging query language:
    https://cloud.google.com/logging/docs/view/logging-query-language). Values are validated first; this is
    the second lock, so a value can never end its literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def task_logs_filter(jobs: dict[str, str]) -> Optional[str]:
    """The only filter the API sends to Cloud Logging: the ml_job logs of the run's own task jobs."""
    clauses = [f"resource.labels.job_id={logging_string(k)}" for k in sorted(jobs) if _JOB_ID.fullmatch(k)]
    return f'resource.type="ml_job" AND ({" OR ".join(clauses)})' if clauses else None


class CloudGpuQuota:
    """Spec §14.1 pre-flight: the project's Vertex custom-training quota for the accelerator in the
    region (Cloud Quotas API) against what is in use (Cloud Monitoring quota usage)."""

    CACHE_S = 300

    def __init__(self, project: str, rest: Optional[RestClient] = None, usage_cache_s: float = 60.0,
                 clock=time.monotonic):
        self.project = project
        self.rest = rest or RestClient()
        # Usage is read at most once per usage_cache_s per (metric, region): Monitoring samples quota usage
        # every 60 s and shows a point only after a delay
        # (https://cloud.google.com/monitoring/api/v3/latency-n-retention), so a fresher read adds little.
        self.usage_cache_s = usage_cache_s
        self.clock = clock
        self._cache: dict = {}

    def _fresh(self, key, max_age_s: float):
        cached = self._cache.get(key)
        return cached if cached and self.clock() - cached[0] < max_age_s else None

    def _quota_infos(self) -> list[dict]:
        cached = self._fresh("infos", self.CACHE_S)
        if cached:
            return cached[1]
        url = (f"https://cloudquotas.googleapis.com/v1/projects/{self.project}/locations/global/services/"
               f"aiplatform.googleapis.com/quotaInfos")
        infos, token = [], None
        while True:
            page = self.rest.call("GET", url, "Cloud Quotas", params={"pageSize": 1000, **({"pageToken": token} if token else {})})
            infos.extend(page.get("quotaInfos", []))
            token = page.get("nextPageToken")
            if not token:
                break
        self._cache["infos"] = (self.clock(), infos)
        return infos

    @staticmethod
    def limit_in(info: dict, region: str) -> Optional[int]:
        fallback = None
        for dims in info.get("dimensionsInfos", []):
            value = (dims.get("details") or {}).get("value")
            value = int(value) if value is not None else None
            if (dims.get("dimensions") or {}).get("region") == region or region in dims.get("applicableLocations", []):
                return value
            if not dims.get("dimensions"):
                fallback = value
        return fallback

    def _in_use(self, metric: str, region: str) -> Optional[int]:
        cached = self._fresh(("usage", metric, region), self.usage_cache_s)
        if cached:
            return cached[1]
        in_use = self._read_in_use(metric, region)  # an unreadable usage (None) is remembered as briefly
        self._cache[("usage", metric, region)] = (self.clock(), in_use)
        return in_use

    def _read_in_use(self, metric: str, region: str) -> Optional[int]:
        if not REGION.fullmatch(region):  # it goes inside the filter string below: nothing but a region may
            raise FieldError.one("region", "must be a Google Cloud region such as europe-west4")
        end = datetime.now(timezone.utc)
        query = (f'metric.type="serviceruntime.googleapis.com/quota/allocation/usage" AND resource.type="consumer_quota" '
                 f'AND resource.labels.service="aiplatform.googleapis.com" AND metric.labels.quota_metric="{metric}" '
                 f'AND resource.labels.location="{region}"')
        try:
            found = self.rest.call("GET", f"https://monitoring.googleapis.com/v3/projects/{self.project}/timeSeries",
                                   "Cloud Monitoring", params={
                                       "filter": query, "interval.endTime": end.isoformat().replace("+00:00", "Z"),
                                       "interval.startTime": (end - timedelta(days=1)).isoformat().replace("+00:00", "Z")})
        except (PermissionError, NotFound, TransientError):
            return None  # usage is a refinement; the limit alone still answers most questions
        latest = 0
        for series in found.get("timeSeries", []):
            points = series.get("points") or []
            if points:
                latest += int(points[0]["value"].get("int64Value", 0))  # newest point first
        return latest

    def check(self, region, gpu_type, gpu_count, preemptible):
        metric = quota_metric(gpu_type, preemptible)
        result = {"region": region, "gpu_type": gpu_type, "gpu_count": gpu_count, "preemptible": preemptible,
                  "quota_applies": True, "quota_metric": metric, "limit": None, "in_use": None, "available": None,
                  "sufficient": None,
                  "request_increase_url": f"https://console.cloud.google.com/iam-admin/quotas?project={self.project}"}
        try:
            info = next((i for i in self._quota_infos() if i.get("metric") == metric), None)
        except PermissionError as exc:
            return {**result, "message": f"could not read the quota ({exc}); the run may still be accepted"}
        if info is None:
            return {**result, "limit": 0, "available": 0, "sufficient": False,
                    "message": f"the project has no {metric} quota; request one before training on {gpu_type}"}
        limit = self.limit_in(info, region) or 0
        in_use = self._in_use(metric, region)
        available = limit - (in_use or 0)
        sufficient = available >= gpu_count
        kind = "Spot " if preemptible else ""
        message = (f"{available} of {limit} {kind}{gpu_type} GPUs free in {region}; the run needs {gpu_count}"
                   if in_use is not None else f"the {kind}{gpu_type} quota in {region} is {limit}; the run needs {gpu_count}")
        if not sufficient:
            message += f" — request more quota ({metric}) or choose another region or GPU"
        return {**result, "quota_id": info.get("quotaId"), "limit": limit, "in_use": in_use, "available": available,
                "sufficient": sufficient, "message": message}


# --------------------------------------------------------------------------- local


class LocalPipelineLogs:
    """The local pipeline service's job log (pipeline_compiler/local_service.py):
    GET /v1/jobs/{job_id}/logs?offset=&limit= → {lines, total_lines}. LocalDagRunner runs one component
    at a time and logs "Component <id> is running.", which attributes each line to its stage."""

    CHUNK = 5000
    MAX_CHUNKS = 4  # bounded work per request; the page token carries on from there
    _MARKER = re.compile(r"Component (\w+) is (running|finished)")

    def __init__(self, base_url: str, timeout_s: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _chunk(self, job_id: str, offset: int) -> Optional[dict]:
        import requests

        try:
            response = requests.get(f"{self.base_url}/v1/jobs/{job_id}/logs",
                                    params={"offset": offset, "limit": self.CHUNK}, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise TransientError(f"local pipeline service unreachable: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise TransientError(f"local pipeline service: HTTP {response.status_code} {response.text[:200]}")
        return response.json()

    def read(self, run, job_id, stage, page_size, cursor):
        offset, current = int((cursor or {}).get("o", 0)), (cursor or {}).get("s")
        entries, more = [], False
        for _ in range(self.MAX_CHUNKS):
            chunk = self._chunk(job_id, offset)
            if chunk is None:
                break
            lines = chunk.get("lines", [])
            for index, line in enumerate(lines):
                marker = self._MARKER.search(line)
                if marker:
                    current = stage_for_task(marker.group(1)) or current
                if stage is None or current == stage:
                    entries.append({"timestamp": None, "severity": _severity(line), "stage": current,
                                    "task": NODE_OF_STAGE.get(current) if current else None, "message": line})
                if len(entries) == page_size:
                    offset += index + 1
                    more = offset < chunk.get("total_lines", 0)
                    break
            else:
                offset += len(lines)
                more = offset < chunk.get("total_lines", 0)
                if more and lines:
                    continue
            break
        return {"entries": entries, "source": "local_pipeline_service",
                "next_cursor": {"o": offset, "s": current} if more else None}


def _severity(line: str) -> str:
    if line.startswith("{"):  # a structured line (shared/log.py) says its own severity
        try:
            return str(json.loads(line).get("severity") or "DEFAULT")
        except (ValueError, AttributeError):
            pass
    for level in ("ERROR", "WARNING", "INFO", "DEBUG"):
        if line.startswith(level) or f" {level} " in line[:40]:
            return level
    return "DEFAULT"


class LocalGpuQuota:
    def check(self, region, gpu_type, gpu_count, preemptible):
        return {"region": region, "gpu_type": gpu_type, "gpu_count": gpu_count, "preemptible": preemptible,
                "quota_applies": False, "quota_metric": quota_metric(gpu_type, preemptible), "limit": None,
                "in_use": None, "available": None, "sufficient": True,
                "message": "the local pipeline service trains on this machine; no Vertex quota applies"}


class RunDataSources:
    def __init__(self, logs: LogSource, gpu_quota: GpuQuota):
        self.logs = logs
        self.gpu_quota = gpu_quota
