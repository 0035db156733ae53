"""The GPU quota pre-flight keeps a create fast in the cloud configuration: the Cloud Monitoring usage read
is cached briefly (a fake clock moves time), and a quota read slower than the deadline does not hold the
create (a fake REST client that blocks until the test releases it; the test asserts on the order of
events, never on elapsed time)."""
from __future__ import annotations

import threading
from dataclasses import replace

from shared.adapters.run_data_sources import CloudGpuQuota, RunDataSources
from shared.adapters.run_logs import CloudLoggingLogs
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services import intake
from shared.services.ports import Effects
from shared.settings import get_settings
from tests.builders import demo_member, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository

METRIC = "aiplatform.googleapis.com/custom_model_training_preemptible_nvidia_l4_gpus"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeRest:
    """Cloud Quotas answers a limit of 4 L4s in the region; Cloud Monitoring answers `in_use`, after
    `release` is set when one is given."""

    def __init__(self, in_use=0, release: threading.Event = None):
        self.in_use = in_use
        self.release = release
        self.events: list[str] = []
        self.answered = threading.Event()

    def call(self, method, url, what, **kwargs):
        if what == "Cloud Quotas":
            self.events.append("quotas")
            return {"quotaInfos": [{"metric": METRIC, "quotaId": "q", "dimensionsInfos": [
                {"dimensions": {"region": "europe-west4"}, "details": {"value": "4"}}]}]}
        assert what == "Cloud Monitoring", what
        self.events.append("monitoring asked")
        if self.release is not None:
            self.release.wait(timeout=60)
        self.events.append("monitoring answered")
        self.answered.set()
        return {"timeSeries": [{"points": [{"value": {"int64Value": str(self.in_use)}}]}]}


def world(rest: FakeRest, clock: FakeClock, **settings_changes):
    repo = InMemoryRepository()
    ids = seed_catalog(repo)
    settings = replace(get_settings(), region="europe-west4", pipeline_backend="vertex", **settings_changes)
    sources = RunDataSources(CloudLoggingLogs("p", "europe-west4", rest),
                             CloudGpuQuota("p", rest, usage_cache_s=settings.gpu_usage_cache_s, clock=clock))
    return repo, ids, settings, sources


def create(repo, ids, settings, sources, name):
    return intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                             run_body(ids["experiment"], name=name), *demo_member("dev@example.com"),
                             run_data=sources, settings=settings)


def test_a_second_create_within_the_ttl_does_not_ask_monitoring_again():
    rest, clock = FakeRest(in_use=3), FakeClock()  # 4 - 3 = 1 free; the default run needs 2
    repo, ids, settings, sources = world(rest, clock, gpu_usage_cache_s=60.0)
    first = create(repo, ids, settings, sources, "first-run")
    clock.now += 59
    second = create(repo, ids, settings, sources, "second-run")
    assert rest.events.count("monitoring asked") == 1
    assert all("1 of 4 Spot NVIDIA_L4 GPUs free" in run["warnings"][-1] for run in (first, second))
    clock.now += 2  # past the TTL: usage is read again
    rest.in_use = 0
    third = create(repo, ids, settings, sources, "third-run")
    assert rest.events.count("monitoring asked") == 2
    assert not any("GPU quota" in w for w in third["warnings"])


def test_a_monitoring_read_slower_than_the_deadline_does_not_hold_the_create():
    release = threading.Event()
    rest, clock = FakeRest(in_use=3, release=release), FakeClock()
    repo, ids, settings, sources = world(rest, clock, preflight_deadline_s=0.05)
    try:
        run = create(repo, ids, settings, sources, "slow-quota")
        rest.events.append("create returned")
        assert repo.get_run(run["id"])["status"] == "pending"  # stored and queued
        assert "not checked" in run["warnings"][-1] and "/api/gpu-availability" in run["warnings"][-1]
    finally:
        release.set()
    assert rest.answered.wait(timeout=30)
    assert rest.events.index("create returned") < rest.events.index("monitoring answered")
    # the background check filled the cache: the next create gets the answer without asking again
    clock.now += 1
    later = create(repo, ids, replace(settings, preflight_deadline_s=30.0), sources, "after-slow")
    assert rest.events.count("monitoring asked") == 1
    assert "1 of 4 Spot NVIDIA_L4 GPUs free" in later["warnings"][-1]
