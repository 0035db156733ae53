"""Control-plane benchmark against the local stack (not a test). Reports medians and p99s:

- create-run latency (POST /api/training-runs, sequential) and throughput (concurrent clients);
- event-to-Firestore lag: a Vertex-shaped sink entry published to `pipeline-events` until a Firestore
  listener (what a dashboard uses) sees the stage change; the same for a `training-progress` epoch;
- import time of each light function's main module in a fresh interpreter.

Targets on this machine (issue "Control plane"): create p99 <= 50 ms, event lag p99 <= 1 s, import <= 0.8 s.
    .venv/bin/python bench/control_plane.py [--runs 200] [--events 60] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.stack import Stack, StackConfig  # noqa: E402
from shared.settings import child_environment, export  # noqa: E402
from tests.builders import dataset_body, feature_config_body, model_config_body  # noqa: E402
from tests.integration.scripted_pipeline_service import ScriptedPipelineService  # noqa: E402
from tests.unit.scenario import job_timeline  # noqa: E402

LIGHT_FUNCTIONS = {"api": "functions/api/main.py", "pipeline_events": "functions/pipeline_events/main.py",
                   "scheduler": "functions/scheduler/main.py"}


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(values_ms):
    return {"n": len(values_ms), "p50_ms": round(statistics.median(values_ms), 1), "p99_ms": round(pct(values_ms, 99), 1),
            "max_ms": round(max(values_ms), 1)}


def import_times(repeats: int = 5) -> dict:
    out = {}
    for name, source in LIGHT_FUNCTIONS.items():
        if not (REPO / source).exists():
            continue
        code = ("import time,runpy,sys; t=time.perf_counter(); "
                f"sys.path.insert(0, {str(REPO)!r}); "
                "import importlib.util as u; "
                f"s=u.spec_from_file_location('m', {str(REPO / source)!r}); m=u.module_from_spec(s); s.loader.exec_module(m); "
                "print(time.perf_counter()-t)")
        samples = []
        for _ in range(repeats):
            result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True,
                                    cwd=REPO, env=child_environment(PYTHONPATH=str(REPO)))
            samples.append(float(result.stdout.strip().splitlines()[-1]) * 1000)
        out[name] = {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    import requests

    report: dict = {"machine": {"cores": os.cpu_count()}}
    report["import"] = import_times()

    pipeline, config, stack = start_stack()
    try:
        session, api = api_session(config)
        exp = seed_experiment(session, api)
        body = {"name": "bench-run", "base_experiment_id": exp, "training_params": {"epochs": 3}}
        for _ in range(10):  # warm: clients, connections, JIT of the emulator
            session.post(api + "/api/training-runs", json=body)

        latencies = []
        for i in range(args.runs):
            started = time.perf_counter()
            response = session.post(api + "/api/training-runs", json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 201, response.text
        report["create_sequential"] = summary(latencies)

        def create(_):
            local = requests.Session()
            local.headers["Authorization"] = f"Bearer {config.dev_token}"
            return local.post(api + "/api/training-runs", json=body).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            codes = list(pool.map(create, range(args.runs)))
        elapsed = time.perf_counter() - started
        report["create_throughput"] = {"runs": args.runs, "concurrency": args.concurrency,
                                       "runs_per_s": round(args.runs / elapsed, 1),
                                       "non_201": sum(c != 201 for c in codes)}

        report["event_lag"], report["epoch_lag"] = event_lags(session, api, pipeline, config, exp, args.events)
    finally:
        stack.down()
        pipeline.stop()
    publish_report(report, args.json)
    return 0


def publish_report(report: dict, path=None) -> None:
    print(json.dumps(report, indent=2))
    if path:
        Path(path).write_text(json.dumps(report, indent=2))


def start_stack():
    """The local stack with the scripted pipeline service and compiler (no TFX): (pipeline, config, stack)."""
    pipeline = ScriptedPipelineService().start()
    config = StackConfig.ephemeral(Path(tempfile.mkdtemp(prefix="trainyard-bench-")), services=(), extra_env={
        "TRAINYARD_LOCAL_PIPELINE_URL": pipeline.url,
        "TRAINYARD_COMPILER": "tests.integration.scripted_compiler:compile_run"})
    stack = Stack(config)
    stack.up()
    export(config.emulator_env())
    return pipeline, config, stack


def api_session(config):
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {config.dev_token}"
    return session, config.api_url


def seed_experiment(session, api) -> str:
    ds = session.post(api + "/api/datasets", json=dataset_body()).json()["item"]["id"]
    fc = session.post(api + "/api/feature-configs", json=feature_config_body()).json()["item"]["id"]
    mc = session.post(api + "/api/model-configs", json=model_config_body()).json()["item"]["id"]
    return session.post(api + "/api/experiments", json={
        "name": "bench", "model_type": "retrieval", "dataset_id": ds, "feature_config_id": fc,
        "model_config_id": mc, "metrics": {"recall_at_100": 0.5}}).json()["item"]["id"]


def event_lags(session, api, pipeline, config, experiment_id, events: int):
    """Publish → a Firestore listener sees the change, for stage events and for epochs."""
    from google.cloud import firestore, pubsub_v1

    db = firestore.Client(project=config.project)
    publisher = pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1))
    topic = lambda name: publisher.topic_path(config.project, name)  # noqa: E731
    stage_lags, epoch_lags = [], []
    per_run = 14  # stage changes in one job timeline
    for _ in range(max(1, events // per_run)):
        run = session.post(api + "/api/training-runs", json={"name": "bench-lag", "base_experiment_id": experiment_id,
                                                             "training_params": {"epochs": 1000}}).json()["training_run"]
        deadline = time.time() + 30
        while session.get(f"{api}/api/training-runs/{run['id']}").json()["training_run"]["status"] != "running":
            if time.time() > deadline:
                raise RuntimeError("run was not submitted")
            time.sleep(0.05)
        job_id = f"{run['id']}-a1"
        seen = threading.Condition()
        latest: dict = {}

        def on_change(docs, changes, read_time):
            with seen:
                for doc in docs:
                    latest.update(doc.to_dict())
                seen.notify_all()

        watch = db.collection("training_runs").document(run["id"]).on_snapshot(on_change)
        try:
            for snapshot in job_timeline(job_id)[1:-1]:  # stop before SUCCEEDED: no result files here
                pipeline.set_job(snapshot)
                want = [(t.task_name, t.state) for t in snapshot.tasks]
                with seen:
                    version = latest.get("version", 0)
                started = time.perf_counter()
                publisher.publish(topic("pipeline-events"), json.dumps({
                    "logName": f"projects/{config.project}/logs/aiplatform.googleapis.com%2Fpipeline_job_task_events",
                    "resource": {"type": "aiplatform.googleapis.com/PipelineJob",
                                 "labels": {"pipeline_job_id": job_id}}}).encode()).result()
                with seen:
                    seen.wait_for(lambda: latest.get("version", 0) > version, timeout=10)
                stage_lags.append((time.perf_counter() - started) * 1000)
                del want
            for epoch in range(1, 21):
                with seen:
                    version = latest.get("version", 0)
                started = time.perf_counter()
                publisher.publish(topic("training-progress"), json.dumps({
                    "run_id": run["id"], "attempt": 1, "epoch": epoch, "total_epochs": 1000, "loss": 1.0 / epoch,
                    "metrics": {"recall_at_100": 0.01 * epoch}}).encode()).result()
                with seen:
                    seen.wait_for(lambda: latest.get("version", 0) > version, timeout=10)
                epoch_lags.append((time.perf_counter() - started) * 1000)
                time.sleep(1.05)  # the consumer writes a run at most about once a second, by design
        finally:
            watch.unsubscribe()
    return summary(stage_lags), summary(epoch_lags)


if __name__ == "__main__":
    sys.exit(main())
