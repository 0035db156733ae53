"""The rehearsal's fixture: the deployment terraform/ describes, started on this machine from the
trees it is made of (tests/rehearsal/runtime.py), against the Firestore and Pub/Sub emulators and
gRPC fakes of Vertex AI built from Google's own client protocol (tests/protocol_fakes/)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from tests.conftest import skip_without_emulators
from tests.polling import wait_until

pytestmark = pytest.mark.rehearsal


def pytest_collection_modifyitems(config, items):
    for started in ("tests/rehearsal/test_deployment_runs", "tests/rehearsal/test_cloud_runs",
                    "tests/rehearsal/test_batch_predictions_cloud", "tests/rehearsal/test_gpu_fallback_cloud",
                    "tests/rehearsal/test_data_triggers_cloud"):
        skip_without_emulators(items, started, "rehearsal")


@dataclass
class Cloud:
    """The rehearsed deployment and what a test needs to drive and read it."""

    deployment: object
    rehearsal: object
    stack: object
    vertex: object  # tests.protocol_fakes.vertex.Vertex: the server and each service's fake
    scheduler: object  # tests.protocol_fakes.scheduler.CloudSchedulerFake (its server: scheduler_server)
    repo: object
    publisher: object
    project: str
    region: str
    scheduler_server: object = None  # tests.protocol_fakes.grpc_service.FakeServer of the scheduler fake

    @property
    def models(self):
        return self.vertex.models

    @property
    def endpoints(self):
        return self.vertex.endpoints

    @property
    def pipelines(self):
        return self.vertex.pipelines

    @property
    def jobs(self):
        return self.vertex.jobs

    def publish(self, topic: str, payload: dict) -> str:
        return self.publisher.publish(topic, payload)

    def log_entries(self, module: str) -> list[dict]:
        out = []
        for line in self.rehearsal.processes[module].text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def handled(self, module: str, message_id: str, timeout_s: float = 60) -> dict:
        """The consumer's 'message handled' entry for this message (it answered 2xx)."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            for entry in self.log_entries(module):
                if entry.get("message_id") == message_id and entry.get("message") == "message handled":
                    return entry
            process = self.rehearsal.processes[module]
            if process.popen.poll() is not None:
                raise AssertionError(f"{module} exited:\n{process.text()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"{module} did not handle message {message_id} within {timeout_s:.0f}s:\n"
                             f"{self.rehearsal.processes[module].text()[-4000:]}")

    def wait(self, predicate, timeout_s: float, what: str):
        return wait_until(predicate, timeout_s, what)

    def log_entry_for(self, job_id: str, task: bool = False) -> dict:
        """A Vertex state-change entry as the log sink publishes it (LogEntry JSON)."""
        log_id = "pipeline_job_task_events" if task else "pipeline_job_events"
        return {"insertId": f"{job_id}-{time.time_ns()}",
                "logName": f"projects/{self.project}/logs/aiplatform.googleapis.com%2F{log_id}",
                "resource": {"type": "aiplatform.googleapis.com/PipelineJob",
                             "labels": {"location": self.region, "pipeline_job_id": job_id,
                                        "resource_container": "projects/123456789012"}},
                "jsonPayload": {}, "severity": "INFO"}

    def dead_lettered(self) -> dict[str, int]:
        """Messages kept by each <topic>-dead-letter-hold subscription, read as the admin API reads them
        (DeadLetters.list: pulled, then handed back). The emulator holds a pull on an empty subscription open
        until its timeout, so the holds are read side by side, not one after another."""
        from concurrent.futures import ThreadPoolExecutor

        from shared.adapters.dead_letters import DeadLetters
        from shared.contract import topics

        letters = DeadLetters(self.project)
        with ThreadPoolExecutor(len(topics.ALL)) as pool:
            return dict(zip(topics.ALL, pool.map(lambda topic: len(letters.list(topic)), topics.ALL)))


def _per_minute_schedules(workdir):
    """The example's tfvars with its team allowed Cloud Scheduler's shortest interval (a minute): the
    schedule rehearsal watches a per-minute cron fire, which the default team limit (60 minutes) refuses."""
    from tests.rehearsal.deployment import TFVARS

    example = TFVARS.read_text()
    anchor = "    buckets     = "
    assert anchor in example, "the example's team changed: say where its schedule limit goes"
    line_end = example.index("\n", example.index(anchor))
    tfvars = workdir / "rehearsal.tfvars"
    tfvars.write_text(example[:line_end] + "\n    schedules   = { min_interval_minutes = 1 }" + example[line_end:])
    return tfvars


@pytest.fixture(scope="session")
def cloud(tmp_path_factory):
    from scripts.stack import Stack, StackConfig
    from shared.adapters.messaging import PubSubPublisher
    from shared.adapters.repository import FirestoreRepository
    from shared.settings import export
    from tests.protocol_fakes import scheduler, vertex
    from tests.rehearsal.deployment import describe
    from tests.rehearsal.runtime import Rehearsal

    workdir = tmp_path_factory.mktemp("rehearsal")
    deployment = describe(_per_minute_schedules(workdir))
    project, region = deployment.plan.var("project_id"), deployment.plan.var("region")
    fakes = vertex.start(region)
    scheduler_server, scheduler_fake = scheduler.start(region)
    stack = Stack(StackConfig.ephemeral(workdir / "stack", project=project, functions=(), services=(), ticker=False))
    rehearsal = None
    try:
        stack.up()
        export(stack.config.emulator_env())
        hosts = {k: v for k, v in stack.config.emulator_env().items() if k.endswith("_EMULATOR_HOST")}
        rehearsal = Rehearsal(deployment, workdir, {**hosts, "TRAINYARD_VERTEX_EMULATOR_HOST": fakes.server.address,
                                                    "TRAINYARD_SCHEDULER_EMULATOR_HOST": scheduler_server.address})
        for function in deployment.functions.values():
            rehearsal.start_function(function)
        for service in deployment.services.values():
            rehearsal.start_service(service)
        rehearsal.wait_ready()
        rehearsal.subscribe(project)
        yield Cloud(deployment, rehearsal, stack, fakes, scheduler_fake, FirestoreRepository(project),
                    PubSubPublisher(project), project, region, scheduler_server)
    finally:
        if rehearsal is not None:
            rehearsal.stop()
        stack.down()
        fakes.server.stop()
        scheduler_server.stop()
