"""The local pipeline service: Vertex AI Pipelines' contract on one machine.

    python -m pipeline_compiler.local_service --port 8090 [--state-dir .local/pipeline-service]

HTTP (the client is shared/adapters/pipelines.py:LocalPipelineServiceBackend):
    POST /v1/jobs                 {job_id, display_name, labels, pipeline_job_uri, run_spec_uri, pipeline_root}
    GET  /v1/jobs/{job_id}        {job_id, name, state, create_time, start_time, end_time, error, labels, tasks}
    POST /v1/jobs/{job_id}:cancel
    GET  /v1/jobs/{job_id}/logs?offset=&limit=   the job's process log, in lines

Each job's TFX pipeline runs with LocalDagRunner in its own process group (cancel stops all of it).
At most `max_running` jobs (TRAINYARD_LOCAL_MAX_RUNNING_JOBS, default 1) run at once; later jobs wait
PIPELINE_STATE_QUEUED in creation order and start as running ones end (a cancelled queued job ends
CANCELLED without ever starting a process). When the service stops (SIGTERM: `make down`), it stops
every running job's process group; on the next start, every job that was running or queued then ends
PIPELINE_STATE_FAILED with the error "the local stack stopped" (none is resumed).
Task states come from the pipeline's own ML Metadata store (executions per node), never guessed.
Every job or task state change is published to `pipeline-events` as the Cloud Logging entry the
production log sink delivers (resource type aiplatform.googleapis.com/PipelineJob, log names
pipeline_job_events / pipeline_job_task_events, resource.labels.pipeline_job_id), so
functions/pipeline_events runs unchanged. Job records live on disk and survive a restart.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from pipeline_compiler.local_runner import job_context
from shared import log
from shared.contract import topics
from shared.settings import child_environment, read

# ML Metadata Execution.last_known_state → Vertex PipelineTaskDetail.State
MLMD_TO_TASK_STATE = {0: "PENDING", 1: "PENDING", 2: "RUNNING", 3: "SUCCEEDED", 4: "FAILED", 5: "SKIPPED",
                      6: "CANCELLED"}
TERMINAL = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}
QUEUED = "PIPELINE_STATE_QUEUED"
STACK_STOPPED = "the local stack stopped"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _ms_to_iso(ms: Optional[int]) -> Optional[str]:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat() if ms else None


def read_node_states(metadata_path: str, pipeline_name: str, since_ms: int) -> dict[str, dict]:
    """Node id → {state, start_time, end_time} from the newest execution of each node in this job."""
    if not os.path.exists(metadata_path):
        return {}
    try:
        with sqlite3.connect(f"file:{metadata_path}?mode=ro", uri=True, timeout=1) as db:
            rows = db.execute(
                """SELECT c.name, e.last_known_state, e.create_time_since_epoch, e.last_update_time_since_epoch, e.id
                   FROM Execution e JOIN Association a ON a.execution_id = e.id
                   JOIN Context c ON c.id = a.context_id JOIN Type t ON t.id = c.type_id
                   WHERE t.name = 'node' AND c.name LIKE ? AND e.create_time_since_epoch >= ?
                   ORDER BY e.id""", (pipeline_name + ".%", since_ms)).fetchall()
    except sqlite3.Error:
        return {}  # the runner is writing; the next poll reads it
    states: dict[str, dict] = {}
    for context, state, created, updated, _ in rows:
        node = context[len(pipeline_name) + 1:]
        task_state = MLMD_TO_TASK_STATE.get(state, "PENDING")
        terminal = task_state in ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED")
        states[node] = {"state": task_state, "start_time": _ms_to_iso(created),
                        "end_time": _ms_to_iso(updated) if terminal else None}
    return states


class JobRecord:
    """A job on disk: <state_dir>/jobs/<job_id>/{job.json, run_spec.json, runner.log, exit.json}."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.data: dict = json.loads((directory / "job.json").read_text()) if (directory / "job.json").exists() else {}

    def save(self) -> None:
        tmp = self.dir / "job.json.tmp"
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.dir / "job.json")

    @property
    def exit(self) -> Optional[dict]:
        path = self.dir / "exit.json"
        return json.loads(path.read_text()) if path.exists() else None

    def public(self) -> dict:
        keys = ("job_id", "name", "display_name", "state", "create_time", "start_time", "end_time", "error",
                "labels", "tasks")
        return {k: self.data.get(k) for k in keys}


class LocalPipelineService:
    def __init__(self, state_dir: Path, project: str, publisher=None, poll_s: float = 0.5,
                 runner_module: str = "pipeline_compiler.local_runner", max_running: int = 1,
                 stop_grace_s: float = 3.0):
        self.state_dir = state_dir
        self.runner_module = runner_module
        self.max_running = max(1, int(max_running))
        self.stop_grace_s = stop_grace_s
        self.queue: list[str] = []  # job ids waiting PIPELINE_STATE_QUEUED, in creation order
        (state_dir / "jobs").mkdir(parents=True, exist_ok=True)
        self.project = project
        self.publisher = publisher
        self.poll_s = poll_s
        self.jobs: dict[str, JobRecord] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.stopped = False  # stop() ran: its jobs are stopped and marked
        self._recover()

    # ------------------------------------------------------------------ contract

    def create(self, body: dict) -> tuple[int, dict]:
        missing = [k for k in ("job_id", "run_spec_uri", "pipeline_root") if not body.get(k)]
        if missing:
            return 400, {"error": f"missing {', '.join(missing)}"}
        job_id = body["job_id"]
        with self.lock, log.bound(**job_context(job_id)):
            if job_id in self.jobs:
                return 409, {"error": f"job {job_id} already exists", "job": self.jobs[job_id].public()}
            try:
                spec_text = Path(body["run_spec_uri"]).read_text()
            except OSError as exc:
                return 400, {"error": f"cannot read the run spec: {exc}"}
            from shared.contract.nodes import NODE_IDS

            spec = json.loads(spec_text)
            name = _pipeline_name(spec)
            directory = self.state_dir / "jobs" / job_id
            directory.mkdir(parents=True)
            (directory / "run_spec.json").write_text(spec_text)
            record = JobRecord(directory)
            record.data = {
                "job_id": job_id, "name": f"projects/{self.project}/locations/local/pipelineJobs/{job_id}",
                "display_name": body.get("display_name", job_id), "labels": body.get("labels", {}),
                "state": QUEUED, "create_time": _now(), "start_time": None, "end_time": None,
                "error": None, "pipeline_job_uri": body.get("pipeline_job_uri"),
                "run_spec_path": str(directory / "run_spec.json"),
                # One metadata store per run, shared by its attempts, so a retry reuses cached stages.
                "metadata_path": os.path.join(body["pipeline_root"], "metadata.sqlite"),
                "pipeline_name": name,
                "tasks": [{"task_name": node, "state": "PENDING", "start_time": None, "end_time": None,
                           "error": None} for node in NODE_IDS],
                "pid": None, "published_version": 0, "version": 1,
            }
            record.save()
            self.jobs[job_id] = record
            self.queue.append(job_id)
            log.info("pipeline job created", display_name=record.data["display_name"], pipeline_name=name)
            self._schedule()  # runs now if a slot is free, else waits QUEUED
            return 200, record.public()

    def get(self, job_id: str) -> Optional[dict]:
        with self.lock:
            record = self.jobs.get(job_id)
            return record.public() if record else None

    def cancel(self, job_id: str) -> Optional[dict]:
        with self.lock, log.bound(**job_context(job_id)):
            record = self.jobs.get(job_id)
            if record is None:
                return None
            if record.data["state"] in TERMINAL:
                return record.public()
            log.info("pipeline job cancel requested", state=record.data["state"])
            if record.data["state"] == QUEUED and job_id in self.queue:  # never started: nothing to stop
                self.queue.remove(job_id)
                record.data["cancel_requested"] = True
                for task in record.data["tasks"]:
                    if task["state"] == "PENDING":
                        task["state"] = "NOT_TRIGGERED"
                record.data["end_time"] = _now()
                self._set_state(record, "PIPELINE_STATE_CANCELLED")
                return record.public()
            record.data["cancel_requested"] = True
            self._set_state(record, "PIPELINE_STATE_CANCELLING")
        pid = record.data.get("pid")
        if pid:
            _signal_group(pid, signal.SIGTERM)
            threading.Timer(10, _signal_group, (pid, signal.SIGKILL)).start()  # Beam workers that linger
        return record.public()

    def logs(self, job_id: str, offset: int, limit: int) -> Optional[dict]:
        record = self.jobs.get(job_id)
        if record is None:
            return None
        path = record.dir / "runner.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return {"job_id": job_id, "offset": offset, "total_lines": len(lines),
                "lines": lines[offset:offset + limit]}

    # ------------------------------------------------------------------ processes

    def _running_count(self) -> int:
        """Jobs holding a slot: started (a process) and not ended yet, cancelling ones included."""
        return sum(1 for r in self.jobs.values() if r.data["state"] not in TERMINAL and r.data.get("pid"))

    def _schedule(self) -> None:
        """Start queued jobs, oldest first, while fewer than max_running run. Call with the lock held."""
        while self.queue and not self.stopping.is_set() and self._running_count() < self.max_running:
            record = self.jobs[self.queue.pop(0)]
            if record.data["state"] != QUEUED:
                continue
            try:
                self._start(record)
            except OSError as exc:  # the process could not start: the job fails, the next one gets the slot
                record.data.update(error=f"the pipeline process could not start: {exc}", end_time=_now())
                self._set_state(record, "PIPELINE_STATE_FAILED")

    def stop(self) -> None:
        """Stop the service (SIGTERM, i.e. `make down`): no job starts any more, and every running job's
        process group is stopped (SIGTERM, then SIGKILL after stop_grace_s), so no pipeline outlives the
        stack. Running and queued jobs are marked; the next start fails them with "the local stack stopped"."""
        self.stopping.set()
        with self.lock:
            if self.stopped:
                return
            self.stopped = True
            pids = {}
            for job_id, record in self.jobs.items():
                if record.data["state"] in TERMINAL:
                    continue
                record.data["stopped_by_stack"] = True
                record.save()
                if record.data.get("pid"):
                    pids[job_id] = record.data["pid"]
        for pid in pids.values():
            _signal_group(pid, signal.SIGTERM)
        deadline = time.time() + self.stop_grace_s
        for job_id, pid in pids.items():
            while time.time() < deadline and _group_alive(pid, self.processes.get(job_id)):
                time.sleep(0.05)
            if _group_alive(pid, self.processes.get(job_id)):
                _signal_group(pid, signal.SIGKILL)
        for job_id, pid in pids.items():  # reap our children, and wait out what SIGKILL leaves
            proc = self.processes.get(job_id)
            if proc is not None:
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
            end = time.time() + 2
            while time.time() < end and _group_alive(pid, proc):
                time.sleep(0.05)
        log.info("local pipeline service stopped", stopped_jobs=sorted(pids))

    def _start(self, record: JobRecord) -> None:
        logfile = open(record.dir / "runner.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", self.runner_module, str(record.dir)],
                                stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True,
                                env=child_environment(TRAINYARD_PIPELINE_BACKEND="local"))
        self.processes[record.data["job_id"]] = proc
        record.data["pid"] = proc.pid
        record.data["start_time"] = _now()
        record.data["since_ms"] = int(time.time() * 1000) - 1000
        self._set_state(record, "PIPELINE_STATE_RUNNING")

    def _recover(self) -> None:
        """Reload job history. Jobs that were running or queued when the local stack stopped end
        PIPELINE_STATE_FAILED with the error "the local stack stopped" (they are not resumed; their state
        change is published by the monitor). A job whose process outlived a crashed service (not stopped
        by the stack) is watched again."""
        for directory in sorted((self.state_dir / "jobs").iterdir()):
            record = JobRecord(directory)
            if not record.data:
                continue
            data = record.data
            self.jobs[data["job_id"]] = record
            if data["state"] in TERMINAL:
                continue
            alive = _alive(data.get("pid"))
            if not alive and record.exit is not None:
                continue  # it ended on its own (exit.json written): the monitor finishes it as it says
            if data.get("stopped_by_stack") or data["state"] == QUEUED:
                if alive:  # the stop did not get to it: it must not run on unwatched
                    _signal_group(data["pid"], signal.SIGKILL)
                self._fail_stopped(record)
            elif not alive and record.exit is None:
                data["error"] = "the pipeline process ended while the pipeline service was down"

    def _fail_stopped(self, record: JobRecord) -> None:
        data = record.data
        if data.get("cancel_requested"):  # a cancel the stop overtook still ends CANCELLED
            self._finish(record)
            return
        data["error"] = STACK_STOPPED
        self._refresh_tasks(record)
        started = bool(data.get("pid"))
        failing = next((t for t in data["tasks"] if t["state"] == "RUNNING"), None) if started else None
        if failing is not None:
            failing.update(state="FAILED", error=STACK_STOPPED, end_time=failing["end_time"] or _now())
        for task in data["tasks"]:
            if task["state"] in ("RUNNING", "PENDING"):
                task["state"] = "CANCELLED" if task["state"] == "RUNNING" else "NOT_TRIGGERED"
        data["end_time"] = _now()
        self._set_state(record, "PIPELINE_STATE_FAILED")

    def _alive(self, job_id: str, record: JobRecord) -> bool:
        proc = self.processes.get(job_id)
        if proc is not None:
            return proc.poll() is None
        return _alive(record.data.get("pid"))

    # ------------------------------------------------------------------ monitoring

    def monitor_forever(self) -> None:
        while not self.stopping.is_set():
            for job_id, record in list(self.jobs.items()):
                with log.bound(**job_context(job_id)):
                    try:
                        self._poll(job_id, record)
                    except Exception as exc:  # noqa: BLE001 - one bad job must not stop the others
                        log.error("pipeline service poll failed", error=repr(exc))
            self.stopping.wait(self.poll_s)

    def _poll(self, job_id: str, record: JobRecord) -> None:
        with self.lock:
            if self.stopping.is_set():  # a job the stop kills is failed by the next start, not as a crash
                return
            data = record.data
            if data["state"] not in TERMINAL and data["state"] != QUEUED:
                self._refresh_tasks(record)
                if not self._alive(job_id, record):
                    self._finish(record)
                    self._schedule()  # its slot goes to the oldest queued job
            if data["published_version"] < data["version"]:
                self._publish(record)

    def _refresh_tasks(self, record: JobRecord) -> None:
        data = record.data
        nodes = read_node_states(data["metadata_path"], data["pipeline_name"], data.get("since_ms", 0))
        changed = False
        for task in data["tasks"]:
            seen = nodes.get(task["task_name"])
            if seen and (seen["state"], seen["end_time"]) != (task["state"], task["end_time"]):
                task.update(seen)
                changed = True
        if changed:
            self._bump(record, task_change=True)

    def _finish(self, record: JobRecord) -> None:
        data = record.data
        self._refresh_tasks(record)
        outcome = record.exit
        tasks = data["tasks"]
        if data.get("cancel_requested"):
            state = "PIPELINE_STATE_CANCELLED"
            for task in tasks:
                if task["state"] in ("RUNNING", "PENDING"):
                    task.update(state="CANCELLED" if task["state"] == "RUNNING" else "NOT_TRIGGERED",
                                end_time=_now() if task["state"] == "RUNNING" else None)
        elif outcome and outcome["exit_code"] == 0:
            state = "PIPELINE_STATE_SUCCEEDED"
        else:
            state = "PIPELINE_STATE_FAILED"
            error = (outcome or {}).get("error") or data.get("error") or self._crash_reason(record)
            failing = next((t for t in tasks if t["state"] == "FAILED"), None) or next(
                (t for t in tasks if t["state"] == "RUNNING"), None) or next(
                (t for t in tasks if t["state"] == "PENDING"), None)
            if failing is not None:
                failing.update(state="FAILED", error=error, end_time=failing["end_time"] or _now())
            for task in tasks:
                if task["state"] in ("RUNNING", "PENDING") and task is not failing:
                    task["state"] = "CANCELLED" if task["state"] == "RUNNING" else "NOT_TRIGGERED"
            data["error"] = error
        data["end_time"] = _now()
        self._set_state(record, state)
        self.processes.pop(data["job_id"], None)

    def _crash_reason(self, record: JobRecord) -> str:
        proc = self.processes.get(record.data["job_id"])
        code = proc.returncode if proc is not None else None
        tail = (record.dir / "runner.log").read_text(errors="replace").strip().splitlines()[-1:] if (
            record.dir / "runner.log").exists() else []
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return f"the pipeline process died ({how})" + (f": {tail[0][:500]}" if tail else "")

    def _set_state(self, record: JobRecord, state: str) -> None:
        record.data["state"] = state
        self._bump(record, task_change=False)
        with log.bound(**job_context(record.data["job_id"])):
            log.log("ERROR" if state == "PIPELINE_STATE_FAILED" else "INFO", "pipeline job state changed", state=state,
                    pid=record.data.get("pid"), error=record.data.get("error"))

    def _bump(self, record: JobRecord, task_change: bool) -> None:
        record.data["version"] += 1
        record.data["last_change_log"] = "pipeline_job_task_events" if task_change else "pipeline_job_events"
        record.save()

    def _publish(self, record: JobRecord) -> None:
        """The Cloud Logging entry the production sink would route; retried until it gets through."""
        if self.publisher is None:
            record.data["published_version"] = record.data["version"]
            return
        data = record.data
        log_name = data.get("last_change_log", "pipeline_job_events")
        entry = {
            "insertId": f"{data['job_id']}-{data['version']}",
            "logName": f"projects/{self.project}/logs/aiplatform.googleapis.com%2F{log_name}",
            "resource": {"type": "aiplatform.googleapis.com/PipelineJob",
                         "labels": {"pipeline_job_id": data["job_id"], "location": "local",
                                    "resource_container": f"projects/{self.project}"}},
            "jsonPayload": {"pipelineName": data["name"], "state": data["state"]},
            "severity": "ERROR" if data["state"] == "PIPELINE_STATE_FAILED" else "INFO",
            "timestamp": _now(),
        }
        try:
            self.publisher.publish(topics.PIPELINE_EVENTS, entry)
        except Exception as exc:  # noqa: BLE001 - retried on the next poll
            log.warning("pipeline event publish failed; will retry", job_id=data["job_id"], error=str(exc))
            return
        data["published_version"] = data["version"]
        record.save()


def _pipeline_name(spec: dict) -> str:
    from pipeline_compiler.pipeline import pipeline_name
    from shared.domain.run_config import RunSpec

    return pipeline_name(RunSpec.model_validate(spec))


def _alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _group_alive(pgid: int, proc: Optional[subprocess.Popen] = None) -> bool:
    """Whether any process of the group is left (the leader, when we started it, is reaped first)."""
    if proc is not None:
        proc.poll()
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the runner leads its own group: Beam workers and all
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------- HTTP


def create_app(service: LocalPipelineService):
    from flask import Flask, jsonify, request

    app = Flask("trainyard-local-pipeline-service")

    @app.post("/v1/jobs")
    def create_job():
        code, body = service.create(request.get_json(force=True, silent=True) or {})
        return jsonify(body), code

    @app.get("/v1/jobs/<job_id>")
    def get_job(job_id):
        job = service.get(job_id)
        return (jsonify(job), 200) if job else (jsonify(error=f"no job {job_id}"), 404)

    @app.post("/v1/jobs/<job_id>:cancel")
    def cancel_job(job_id):
        job = service.cancel(job_id)
        return (jsonify(job), 200) if job else (jsonify(error=f"no job {job_id}"), 404)

    @app.get("/v1/jobs/<job_id>/logs")
    def job_logs(job_id):
        result = service.logs(job_id, int(request.args.get("offset", 0)), min(int(request.args.get("limit", 500)), 5000))
        return (jsonify(result), 200) if result else (jsonify(error=f"no job {job_id}"), 404)

    @app.get("/health")
    def health():
        return jsonify(status="ok", jobs=len(service.jobs))

    return app


def main(argv=None) -> int:
    from werkzeug.serving import make_server

    from shared.composition import root

    parser = argparse.ArgumentParser(description="Trainyard's local pipeline service")
    parser.add_argument("--port", type=int, default=int(read("TRAINYARD_PIPELINE_PORT") or 8090))
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args(argv)
    settings = root.settings
    import pipeline_compiler.pipeline  # noqa: F401 - TFX loads now, before listening, not in a create call

    state_dir = Path(args.state_dir or Path(settings.local_dir) / "pipeline-service")
    service = LocalPipelineService(state_dir.resolve(), settings.project, root.publisher,
                                   max_running=settings.local_max_running_jobs)
    threading.Thread(target=service.monitor_forever, daemon=True).start()
    server = make_server("127.0.0.1", args.port, create_app(service), threaded=True)

    def stop(*_):  # scripts/stack.py (`make down`) sends SIGTERM, and SIGKILLs the service 10 s later
        service.stopping.set()
        threading.Thread(target=lambda: (service.stop(), server.shutdown())).start()

    signal.signal(signal.SIGTERM, stop)
    log.info("local pipeline service listening", port=args.port, state_dir=str(state_dir))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
