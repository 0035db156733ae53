"""A scripted stand-in for the local pipeline service, speaking its HTTP contract
(shared/adapters/pipelines.py: LocalPipelineServiceBackend). Tests decide what each job reports."""
from __future__ import annotations

import json
import re
import threading
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedPipelineService:
    def __init__(self):
        self.jobs: dict[str, dict] = {}
        self.create_calls: Counter = Counter()
        self.get_calls: Counter = Counter()
        self.cancel_calls: Counter = Counter()
        self.logs: dict[str, list[str]] = {}  # job id -> its process log lines
        # job id -> (entered, release): a get_job of it signals `entered`, then waits for `release`
        self.holds: dict[str, tuple[threading.Event, threading.Event]] = {}
        # An outage: while set, every request is answered 503 (counted per method and path in refused)
        self.outage = threading.Event()
        self.refused: Counter = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()

    def set_job(self, snapshot) -> None:
        """Make get_job report this JobSnapshot (tests/unit/scenario.py builds them)."""
        def iso(value):
            return value.isoformat() if value else None

        with self.lock:
            self.jobs[snapshot.job_id] = {
                "job_id": snapshot.job_id, "name": snapshot.name, "state": snapshot.state,
                "create_time": iso(snapshot.create_time), "start_time": iso(snapshot.start_time),
                "end_time": iso(snapshot.end_time), "error": snapshot.error, "labels": snapshot.labels,
                "tasks": [{"task_name": t.task_name, "state": t.state, "start_time": iso(t.start_time),
                           "end_time": iso(t.end_time), "error": t.error} for t in snapshot.tasks]}

    @staticmethod
    def _cancel(job: dict) -> None:
        """As the real service: a job not yet ended stops, and every task still going ends CANCELLED."""
        if job["state"] in ("PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"):
            return
        job["state"] = "PIPELINE_STATE_CANCELLED"
        job["end_time"] = job.get("end_time") or datetime.now(timezone.utc).isoformat()
        for task in job.get("tasks", []):
            if task["state"] in ("PENDING", "RUNNING", "NOT_TRIGGERED"):
                task["state"] = "CANCELLED"
                task["end_time"] = task.get("end_time") or job["end_time"]

    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _unavailable(self, what: str = "") -> bool:
                if not service.outage.is_set():
                    return False
                service.refused[what or f"{self.command} {self.path}"] += 1
                self._send(503, {"error": "the pipeline service is unavailable"})
                return True

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self._unavailable(f"create {body.get('job_id')}" if self.path == "/v1/jobs" else ""):
                    return
                if self.path == "/v1/jobs":
                    with service.lock:
                        service.create_calls[body["job_id"]] += 1
                        if body["job_id"] in service.jobs:
                            return self._send(409, {"error": "exists"})
                        service.jobs[body["job_id"]] = {
                            "job_id": body["job_id"], "name": f"local/pipelineJobs/{body['job_id']}",
                            "state": "PIPELINE_STATE_QUEUED", "labels": body["labels"], "tasks": [],
                            "request": body}
                        return self._send(200, service.jobs[body["job_id"]])
                match = re.fullmatch(r"/v1/jobs/([^/:]+):cancel", self.path)
                if match:
                    with service.lock:
                        if match[1] not in service.jobs:
                            return self._send(404, {})
                        service.cancel_calls[match[1]] += 1
                        service._cancel(service.jobs[match[1]])
                        return self._send(200, service.jobs[match[1]])
                self._send(404, {})

            def do_GET(self):
                if self._unavailable():
                    return
                logs = re.fullmatch(r"/v1/jobs/([^/]+)/logs\?offset=(\d+)&limit=(\d+)", self.path)
                if logs:  # the real service's contract: the job's process log, in lines
                    lines = service.logs.get(logs[1])
                    if lines is None:
                        return self._send(404, {"error": "no such job"})
                    offset, limit = int(logs[2]), int(logs[3])
                    return self._send(200, {"job_id": logs[1], "offset": offset, "total_lines": len(lines),
                                            "lines": lines[offset:offset + limit]})
                match = re.fullmatch(r"/v1/jobs/([^/]+)", self.path)
                hold = service.holds.get(match[1]) if match else None
                if hold:  # a fault test holds the reader here (e.g. to kill it mid-handling)
                    hold[0].set()
                    hold[1].wait(30)
                with service.lock:
                    if not match or match[1] not in service.jobs:
                        return self._send(404, {"error": "no such job"})
                    service.get_calls[match[1]] += 1
                    return self._send(200, service.jobs[match[1]])

        return Handler
