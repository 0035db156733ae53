"""Soak benchmark against the local stack (not a test; loopback only, bounded): N concurrent creators and
M interleaved event streams for K minutes, then every run is checked.

Creators POST runs (two model names, so run numbers are contended) until the time is up; each stream
takes runs as the real submitter makes them `running`, writes their result files and publishes their
job's events (the scripted pipeline service reports each snapshot; streams interleave). At the end:

- no lost run: every 201 names a run that exists;
- no duplicate run number per model name;
- no stuck run: every run ends `completed` (waiting at most --settle seconds).

Reports create latency and create-to-completed latency (p50/p99) and the machine's load average.
    .venv/bin/python bench/soak.py [--creators 4] [--streams 4] [--minutes 1] [--max-runs 400]
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.control_plane import api_session, publish_report, seed_experiment, start_stack, summary  # noqa: E402
from shared.adapters.artifact_store import ArtifactStore  # noqa: E402
from tests.unit.scenario import job_timeline, write_results  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creators", type=int, default=4)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--max-runs", type=int, default=400, help="stop creating after this many runs")
    parser.add_argument("--settle", type=float, default=120, help="seconds to wait for the last runs")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    from google.cloud import pubsub_v1

    pipeline, config, stack = start_stack()
    load_before = os.getloadavg()
    try:
        session, api = api_session(config)
        experiment = seed_experiment(session, api)
        publisher = pubsub_v1.PublisherClient()
        topic = publisher.topic_path(config.project, "pipeline-events")
        created: dict[str, float] = {}  # run id -> created (monotonic)
        completed: dict[str, float] = {}
        create_ms: list[float] = []
        lock = threading.Lock()
        todo: queue.Queue = queue.Queue()
        stop_at = time.monotonic() + args.minutes * 60
        errors: list[str] = []

        def creator(n: int) -> None:
            local, _ = api_session(config)
            while time.monotonic() < stop_at:
                with lock:
                    if len(created) >= args.max_runs:
                        return
                started = time.monotonic()
                response = local.post(api + "/api/training-runs", json={
                    "name": f"soak-model-{n % 2}", "base_experiment_id": experiment, "training_params": {"epochs": 3}})
                if response.status_code != 201:
                    errors.append(f"create {response.status_code}: {response.text[:200]}")
                    continue
                with lock:
                    create_ms.append((time.monotonic() - started) * 1000)
                    created[response.json()["training_run"]["id"]] = started
                todo.put(response.json()["training_run"]["id"])

        def stream() -> None:
            local, _ = api_session(config)
            store = ArtifactStore()
            while True:
                try:
                    run_id = todo.get(timeout=5)
                except queue.Empty:
                    if time.monotonic() > stop_at:
                        return
                    continue
                run = local.get(f"{api}/api/training-runs/{run_id}").json()["training_run"]
                if run["status"] != "running":  # not submitted yet: later
                    todo.put(run_id)
                    time.sleep(0.05)
                    continue
                write_results(store, run["gcs_artifacts_path"], blessed=True)
                job_id = f"{run_id}-a1"
                for snapshot in job_timeline(job_id):
                    pipeline.set_job(snapshot)
                    publisher.publish(topic, json.dumps({
                        "logName": f"projects/{config.project}/logs/aiplatform.googleapis.com%2Fpipeline_job_events",
                        "resource": {"type": "aiplatform.googleapis.com/PipelineJob",
                                     "labels": {"pipeline_job_id": job_id}}}).encode())

        with ThreadPoolExecutor(args.creators + args.streams) as pool:
            jobs = [pool.submit(creator, n) for n in range(args.creators)]
            jobs += [pool.submit(stream) for _ in range(args.streams)]
            for job in jobs:
                job.result()
        while not todo.empty():  # runs created last whose streams ended: play them here
            stream()

        # Every run must end completed: poll until settled.
        deadline = time.monotonic() + args.settle
        runs: dict[str, dict] = {}
        while time.monotonic() < deadline:
            for run_id in created:
                if run_id in completed:
                    continue
                run = session.get(f"{api}/api/training-runs/{run_id}").json().get("training_run")
                runs[run_id] = run
                if run and run["status"] == "completed":
                    completed[run_id] = time.monotonic()
            if len(completed) == len(created):
                break
            time.sleep(1)
        for run_id in completed:
            runs[run_id] = session.get(f"{api}/api/training-runs/{run_id}").json()["training_run"]

        numbers = defaultdict(list)
        for run in runs.values():
            if run:
                numbers[run["name"]].append(run["run_number"])
        duplicates = {name: len(ns) - len(set(ns)) for name, ns in numbers.items() if len(ns) != len(set(ns))}
        report = {
            "machine": {"cores": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
                        "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
            "settings": vars(args),
            "runs_created": len(created), "create_errors": len(errors),
            "lost": sum(1 for r in runs.values() if r is None),
            "duplicate_run_numbers": duplicates,
            "stuck": sorted((rid, (runs.get(rid) or {}).get("status")) for rid in created if rid not in completed)[:20],
            "create": summary(create_ms) if create_ms else None,
            "create_to_completed": summary([(completed[r] - created[r]) * 1000 for r in completed]) if completed else None,
            "reconciler": session.get(api + "/api/reconciler").json()["reconciler"]["totals"],
        }
    finally:
        stack.down()
        pipeline.stop()
    publish_report(report, args.json)
    ok = not report["lost"] and not report["duplicate_run_numbers"] and not report["stuck"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
