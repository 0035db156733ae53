"""A run's logs: every stage's, one time-ordered stream, each line labelled with its stage.

Cloud — one Cloud Logging query (google-cloud-logging's GAPIC LoggingServiceV2Client.list_log_entries) over
- the pipeline's task CustomJobs: resource.type "ml_job", resource.labels.job_id from the PipelineJob's
  task details (executorDetail.containerDetail.mainJob);
- the Trainer's own CustomJob of the attempt, which the task starts and no task detail names: listed by the
  run and attempt labels the compiler puts on it;
- the data stages' Dataflow jobs, worker and job-message logs alike: resource.type "dataflow_step",
  resource.labels.job_name as the compiler names them (shared/contract/dataflow_jobs.py).
Logging returns the union in timestamp order, "entries with equal timestamps ... in order of their
insert_id values" (ListLogEntriesRequest.order_by, google/logging/v2/logging.proto), so the sources are
merged where they are stored. The cursor is the position of the last line returned, (timestamp,
insert_id), rather than Logging's page token, which is good only for an identical filter: the set of
jobs grows while a run goes on (a stage starts, its Dataflow job appears), and a follower must see them.

Local — the local pipeline service's job log (pipeline_compiler/local_service.py), where the local runner
marks each component's start (pipeline_compiler/stage_marks.py) and Beam's DirectRunner and the Trainer
write in the same process, one component at a time.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Optional, Protocol

from shared.adapters.lazy_client import LazyClient, gapic_client
from shared.adapters.rest_client import RestClient
from shared.contract import labels
from shared.contract.dataflow_jobs import dataflow_jobs_of
from shared.contract.nodes import NODE_OF_STAGE, stage_for_task
from shared.domain.log_severity import SEVERITIES, at_least, severity_of_line
from shared.errors import NotFound, TransientError
from shared.validation import REGION

MAX_PAGE_SIZE = 500


class LogSource(Protocol):
    def read(self, run: dict, attempt: int, stage: Optional[str], severity: Optional[str], page_size: int,
             cursor: Optional[dict]) -> dict:
        """{entries: [{timestamp, severity, stage, origin, task, message}], more, next_cursor, source}: `more` when
        there is more now; next_cursor where this read ended, to go on from now or later. The cursor is handed
        back by the API only inside a token it signed (shared/page_tokens.py); a source never sees anything a
        client wrote."""


# --------------------------------------------------------------------------- cloud

# A Vertex CustomJob id is numeric and a Dataflow job name [a-z0-9-]; anything else never reaches a filter.
_JOB_ID = re.compile(r"^[0-9A-Za-z_-]{1,128}$")
_INSERT_ID = re.compile(r"^[\x20-\x7e]{1,256}$")  # printable; quoted by logging_string like any value
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def logging_string(value: str) -> str:
    """A Logging query string literal, double-quoted with backslash and quote escaped (Logging query language:
    https://cloud.google.com/logging/docs/view/logging-query-language). Values are validated first; this is
    the second lock, so a value can never end its literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _any_of(field: str, values) -> str:
    return " OR ".join(f"{field}={logging_string(v)}" for v in sorted(values))


def stage_logs_filter(ml_jobs: dict[str, str], dataflow_jobs: dict[str, str], severity: Optional[str] = None,
                      since: Optional[dict] = None) -> Optional[str]:
    """The only filter the API sends to Cloud Logging: the run's own CustomJobs' and Dataflow jobs' logs,
    from the given severity on, after the given position. Built from the server's own values only."""
    ml = [k for k in ml_jobs if _JOB_ID.fullmatch(k)]
    flows = [k for k in dataflow_jobs if _JOB_ID.fullmatch(k)]
    sources = ([f'(resource.type="ml_job" AND ({_any_of("resource.labels.job_id", ml)}))'] if ml else []) + (
        [f'(resource.type="dataflow_step" AND ({_any_of("resource.labels.job_name", flows)}))'] if flows else [])
    if not sources:
        return None
    clauses = [f'({" OR ".join(sources)})']
    if severity:
        if severity not in SEVERITIES:
            raise ValueError(f"{severity!r} is not a LogSeverity")
        clauses.append(f"severity>={severity}")  # names compare in LogSeverity's order (the query language's example)
    if since:  # the last line's position: (timestamp, insert id)
        ts, insert_id = since["ts"], since["id"]
        if not _TIMESTAMP.fullmatch(ts) or not _INSERT_ID.fullmatch(insert_id):
            raise ValueError("not a position this server wrote")
        clauses.append(f'(timestamp>{logging_string(ts)} OR (timestamp={logging_string(ts)} AND '
                       f'insertId>{logging_string(insert_id)}))')
    return " AND ".join(clauses)


def _rfc3339(seconds: int, nanos: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def _origin(resource_type: str, log_name: str, trainer: bool) -> str:
    if resource_type == "dataflow_step":
        return "dataflow-job-message" if log_name.endswith("job-message") else "dataflow-worker"
    return "trainer-job" if trainer else "pipeline-task"


class CloudLoggingLogs:
    """Cloud Logging over the run's jobs (see the module's docstring). Vertex is asked over its REST API (the
    API function stays light: no Vertex SDK); Logging through its GAPIC client, made on first use (or handed in
    by tests) and pointed at `emulator_host` when one is given."""

    def __init__(self, project: str, region: str, rest=None, logging_client=None, emulator_host: str = ""):
        self.project = project
        self.region = region
        self.rest = rest or RestClient()  # Vertex over REST: the API function installs no Vertex SDK
        self.emulator_host = emulator_host
        self._logging = LazyClient(self._make_logging, logging_client)

    def _make_logging(self):
        from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client

        return gapic_client(LoggingServiceV2Client, self.emulator_host)

    def _ml_jobs(self, run: dict, attempt: int) -> tuple[dict[str, str], set[str]]:
        """{CustomJob id: stage} of the attempt's pipeline tasks and Trainer job, and which are the Trainer's."""
        base = f"https://{self.region}-aiplatform.googleapis.com/v1/projects/{self.project}/locations/{self.region}"
        job_id = labels.job_id_for(run["id"], attempt)
        jobs: dict[str, str] = {}
        try:
            job = self.rest.call("GET", f"{base}/pipelineJobs/{job_id}", f"pipeline job {job_id}")
            for task in (job.get("jobDetail") or {}).get("taskDetails", []):
                stage = stage_for_task(task.get("taskName", ""))
                main = ((task.get("executorDetail") or {}).get("containerDetail") or {}).get("mainJob")
                if stage and main:
                    jobs[main.rsplit("/", 1)[-1]] = stage
        except NotFound:
            pass  # not submitted yet, or long gone: the Trainer's job and the Dataflow jobs may still be read
        # The Trainer's job runs where the attempt's shape put it (a GPU fallback may move it to another region).
        region = (run.get("gpu_config") or {}).get("region") or self.region
        if not REGION.fullmatch(region):
            region = self.region
        wanted = labels.job_labels(run["id"], attempt)
        listed = self.rest.call(
            "GET", f"https://{region}-aiplatform.googleapis.com/v1/projects/{self.project}/locations/{region}/customJobs",
            "the run's training jobs", params={"filter": " AND ".join(f'labels.{k}="{v}"' for k, v in sorted(wanted.items())),
                                               "pageSize": 100})
        trainer = {custom["name"].rsplit("/", 1)[-1] for custom in listed.get("customJobs", [])}
        jobs.update(dict.fromkeys(trainer, "Train"))
        return jobs, trainer

    def read(self, run, attempt, stage, severity, page_size, cursor):
        from google.api_core import exceptions
        from google.logging.type import log_severity_pb2

        cursor = cursor or {}
        if cursor.get("t"):  # inside Logging's own paging: the very filter of the previous page
            ml_jobs, flows, trainer, since = cursor["m"], cursor["f"], set(cursor["tr"]), cursor.get("since")
        else:  # from a position: the jobs as they are now
            ml_jobs, trainer = self._ml_jobs(run, attempt)
            flows = dataflow_jobs_of(run["id"], attempt)
            if stage:
                ml_jobs = {k: v for k, v in ml_jobs.items() if v == stage}
                flows = {k: v for k, v in flows.items() if v == stage}
            since = cursor.get("after")
        log_filter = stage_logs_filter(ml_jobs, flows, severity, since)
        if log_filter is None:
            return {"entries": [], "next_cursor": cursor or None, "more": False, "source": "cloud_logging"}
        request = {"resource_names": [f"projects/{self.project}"], "filter": log_filter, "order_by": "timestamp asc",
                   "page_size": page_size}
        if cursor.get("t"):
            request["page_token"] = cursor["t"]
        try:
            page = next(iter(self._logging.get().list_log_entries(request=request).pages), None)
        except exceptions.GoogleAPICallError as exc:
            raise TransientError(f"Cloud Logging: {exc}") from exc
        entries, last = [], cursor.get("after")
        for entry in (page.entries if page is not None else []):
            pb = type(entry).pb(entry)
            resource = pb.resource.labels
            job = resource.get("job_name", "") if pb.resource.type == "dataflow_step" else resource.get("job_id", "")
            payload = json.loads(json.dumps(dict(entry.json_payload))) if pb.HasField("json_payload") else {}
            last = {"ts": _rfc3339(pb.timestamp.seconds, pb.timestamp.nanos), "id": pb.insert_id}
            entries.append({
                "timestamp": last["ts"], "severity": log_severity_pb2.LogSeverity.Name(pb.severity),
                "stage": (flows if pb.resource.type == "dataflow_step" else ml_jobs).get(job),
                "origin": _origin(pb.resource.type, pb.log_name, job in trainer), "task": job,
                "message": pb.text_payload or payload.get("message") or json.dumps(payload)})
        token = page.next_page_token if page is not None else ""
        # Logging may answer a short (even empty) page with a token: it goes on with that token and the same
        # filter (the jobs ride along, signed). Without one, the next read starts after the last line.
        following = {"after": last} if last else {}
        next_cursor = ({**following, "t": token, "m": ml_jobs, "f": flows, "tr": sorted(trainer), "since": since}
                       if token else following)
        return {"entries": entries, "source": "cloud_logging", "more": bool(token), "next_cursor": next_cursor or None}


# --------------------------------------------------------------------------- local


class LocalPipelineLogs:
    """The local pipeline service's job log: GET /v1/jobs/{job_id}/logs?offset=&limit= → {lines, total_lines}.
    The local runner marks each component's start and end (pipeline_compiler/stage_marks.py); every line
    until the next mark is that stage's: its Beam DirectRunner and Trainer output included."""

    CHUNK = 5000
    MAX_CHUNKS = 4  # bounded work per request; the page token carries on from there
    _MARKER = re.compile(r"Component (\w+) is (running|finished)")
    # TensorFlow's C++ lines and absl's Python ones begin with their time.
    _TF_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+):")

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

    def _line(self, line: str, stage: Optional[str]) -> dict:
        timestamp, message = None, line
        if line.startswith("{"):
            try:
                data = json.loads(line)
                if isinstance(data.get("time"), (int, float)):
                    timestamp = datetime.fromtimestamp(data["time"], timezone.utc).isoformat().replace("+00:00", "Z")
                stage = data.get("stage") or stage  # a structured line may say its own stage
            except (ValueError, AttributeError):
                pass
        else:
            found = self._TF_TIME.match(line)
            if found:
                timestamp = found.group(1).replace(" ", "T")
        return {"timestamp": timestamp, "severity": severity_of_line(line), "stage": stage, "origin": "local-runner",
                "task": NODE_OF_STAGE.get(stage) if stage else None, "message": message}

    def read(self, run, attempt, stage, severity, page_size, cursor):
        job_id = labels.job_id_for(run["id"], attempt)
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
                entry = self._line(line, current)
                if (stage is None or entry["stage"] == stage) and at_least(entry["severity"], severity):
                    entries.append(entry)
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
        # The offset always comes back: a follower asks again from there when the job writes more.
        return {"entries": entries, "source": "local_pipeline_service", "more": more,
                "next_cursor": {"o": offset, "s": current}}
