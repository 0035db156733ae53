"""Create-run latency in the cloud configuration, where every create runs the GPU quota pre-flight (not a test).

The API app runs in this process with the settings Terraform gives the `api` function (read from
terraform/ as the rehearsal reads it: tests/rehearsal/deployment.py), against the Firestore and Pub/Sub
emulators. Two stand-ins: sign-in is the developer token (the cloud verifies a Google ID token, not
measured here), and the Cloud Quotas and Cloud Monitoring REST calls are answered by a fake after a delay:

- Cloud Quotas `quotaInfos` list: 300 ms (one page). It is cached for 5 minutes before and after.
- Cloud Monitoring `timeSeries.list` (a day of one quota-usage series): 250 ms, and every 25th call
  2.5 s (a slow tail).

These delays are assumptions, not measurements (nothing here reaches Google): a few hundred ms is what a
regional Google REST read from Cloud Run commonly takes; the tail stands for a cold connection or a slow
query. Change them with --quotas-ms, --monitoring-ms, --slow-ms, --slow-every.

Configurations, each `--runs` sequential creates after 10 warm-up creates, interleaved in 10 rounds:
- local: the local twin's settings (no quota applies: the pre-flight does nothing);
- cloud, before: usage read on every create and waited for without a deadline (as on commit 82849b0);
- cloud, after: usage cached for TRAINYARD_GPU_USAGE_CACHE_S (60 s), the wait bounded by
  TRAINYARD_PREFLIGHT_DEADLINE_S (1.5 s);
- cloud, after, cold: the same deadline with the usage cache off, i.e. a Monitoring read on every create
  (what an instance sees when its creates are more than a TTL apart).

    .venv/bin/python bench/create_latency.py [--runs 100] [--json out.json]     (make bench-create)
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.control_plane import publish_report, seed_experiment, summary  # noqa: E402
from scripts.stack import Stack, StackConfig  # noqa: E402
from shared.settings import Settings, export  # noqa: E402

TOKEN = "bench-token"


class DelayedRest:
    """Cloud Quotas and Cloud Monitoring as the pre-flight's RestClient sees them, answering after a delay."""

    def __init__(self, quotas_s: float, monitoring_s: float, slow_s: float, slow_every: int, metric_limit: int = 8):
        self.quotas_s, self.monitoring_s, self.slow_s, self.slow_every = quotas_s, monitoring_s, slow_s, slow_every
        self.limit = metric_limit
        self.calls = {"Cloud Quotas": 0, "Cloud Monitoring": 0}
        self._lock = threading.Lock()

    def call(self, method, url, what, **kwargs):
        with self._lock:
            self.calls[what] += 1
            n = self.calls[what]
        if what == "Cloud Quotas":
            time.sleep(self.quotas_s)
            from shared.adapters.run_data_sources import GPU_QUOTA_NAMES, quota_metric

            return {"quotaInfos": [{"metric": quota_metric(gpu, spot), "quotaId": f"q-{gpu}-{spot}", "dimensionsInfos": [
                {"dimensions": {}, "details": {"value": str(self.limit)}}]}
                for gpu in GPU_QUOTA_NAMES for spot in (True, False)]}
        time.sleep(self.slow_s if n % self.slow_every == 0 else self.monitoring_s)
        return {"timeSeries": [{"points": [{"value": {"int64Value": "2"}}]}]}


def cloud_settings(stack_env: dict) -> Settings:
    from tests.rehearsal.deployment import describe

    api = next(f for f in describe().functions.values() if f.role == "api")
    return Settings.from_environ({**api.env, **stack_env})


def app_for(settings: Settings, rest=None):
    from shared.adapters.run_data_sources import CloudGpuQuota, RunDataSources
    from shared.adapters.run_logs import CloudLoggingLogs
    from shared.composition import Root
    from shared.http.app import create_app

    settings = replace(settings, auth_mode="local", dev_token=TOKEN, dev_identity="bench@example.com")
    root = Root(settings).provide(scheduler_jobs=None)
    if rest is not None:
        root.provide(run_data=RunDataSources(CloudLoggingLogs(settings.project, settings.region, rest),
                                             CloudGpuQuota(settings.project, rest,
                                                           usage_cache_s=settings.gpu_usage_cache_s)))
    client = create_app(root.api_dependencies()).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


class AsRequests:
    """A Flask test client where bench/control_plane.py expects a requests session (`.post(url, json=).json()`)."""

    def __init__(self, client):
        self.client = client

    def post(self, url, json):
        response = self.client.post(url, json=json)
        return type("Answer", (), {"json": staticmethod(response.get_json)})


def post(client, path, body):
    return client.post(path, json=body)


def measure(clients: dict, experiment: str, runs: int, rounds: int = 10) -> dict:
    """`runs` sequential creates per configuration, interleaved in rounds so that the machine's other load
    falls on every configuration alike."""
    names = (f"bench-create-{i}" for i in itertools.count())
    body = lambda: {"name": next(names), "base_experiment_id": experiment, "training_params": {"epochs": 3}}  # noqa: E731
    latencies = {name: [] for name in clients}
    warned = dict.fromkeys(clients, 0)
    for client in clients.values():
        for _ in range(10):  # warm: clients, connections, the emulators' JIT
            post(client, "/api/training-runs", body())
    for _ in range(rounds):
        for name, client in clients.items():
            for _ in range(max(1, runs // rounds)):
                started = time.perf_counter()
                response = post(client, "/api/training-runs", body())
                latencies[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 201, response.get_json()
                warned[name] += any("not checked" in w for w in response.get_json()["training_run"]["warnings"])
    return {name: {**summary(values), "not_checked_warnings": warned[name]} for name, values in latencies.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--quotas-ms", type=float, default=300)
    parser.add_argument("--monitoring-ms", type=float, default=250)
    parser.add_argument("--slow-ms", type=float, default=2500)
    parser.add_argument("--slow-every", type=int, default=25)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    def rest():
        return DelayedRest(args.quotas_ms / 1000, args.monitoring_ms / 1000, args.slow_ms / 1000, args.slow_every)

    from tests.rehearsal.deployment import describe

    project = describe().plan.var("project_id")
    stack = Stack(StackConfig.ephemeral(Path(tempfile.mkdtemp(prefix="trainyard-bench-create-")), project=project,
                                        functions=(), services=(), ticker=False))
    report: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                                "load_average": os.getloadavg()},
                    "delays_ms": {"cloud_quotas": args.quotas_ms, "cloud_monitoring": args.monitoring_ms,
                                  "cloud_monitoring_slow": args.slow_ms, "slow_every": args.slow_every}}
    try:
        stack.up()
        export(stack.config.emulator_env())
        hosts = {k: v for k, v in stack.config.emulator_env().items() if k.endswith("_EMULATOR_HOST")}
        cloud = cloud_settings(hosts)
        local = Settings.from_environ({**hosts, "GOOGLE_CLOUD_PROJECT": project})
        fakes = {"cloud_before": rest(), "cloud_after": rest(), "cloud_after_cold": rest()}
        variants = {
            "local": (local, None),
            "cloud_before": (replace(cloud, gpu_usage_cache_s=0.0, preflight_deadline_s=3600.0), fakes["cloud_before"]),
            "cloud_after": (cloud, fakes["cloud_after"]),
            "cloud_after_cold": (replace(cloud, gpu_usage_cache_s=0.0), fakes["cloud_after_cold"]),
        }
        experiment = seed_experiment(AsRequests(app_for(local)), "")
        report.update(measure({name: app_for(*variant) for name, variant in variants.items()}, experiment, args.runs))
        for name, fake in fakes.items():
            report[name]["rest_calls"] = dict(fake.calls)
        base = report["local"]["p50_ms"]
        report["p50_vs_local"] = {k: round(report[k]["p50_ms"] / base, 1) for k in variants}
        report["p99_vs_local"] = {k: round(report[k]["p99_ms"] / report["local"]["p99_ms"], 1) for k in variants}
    finally:
        stack.down()
    publish_report(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
