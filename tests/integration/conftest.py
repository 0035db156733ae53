"""The integration fixture: both official emulators, every function under functions-framework
(scripts/stack.py, the same code `make up` runs), a scripted pipeline service and compiler."""
from __future__ import annotations

import json
import os
import time

import pytest
import requests

from scripts.stack import SERVICES, Stack, StackConfig
from tests.conftest import skip_without_emulators
from tests.integration.scripted_pipeline_service import ScriptedPipelineService

pytestmark = pytest.mark.integration
NOTIFY_SECRET_NAME, NOTIFY_SECRET = "it-hook", "it-signing-secret"


def pytest_collection_modifyitems(config, items):
    skip_without_emulators(items, "tests/integration", "integration")


class LocalStack:
    def __init__(self, stack: Stack, pipeline: ScriptedPipelineService):
        self.stack = stack
        self.pipeline = pipeline
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {stack.config.dev_token}"

    @property
    def api(self) -> str:
        return self.stack.config.api_url

    def post(self, path, body):
        return self.session.post(self.api + path, json=body, timeout=30)

    def get(self, path, **params):
        return self.session.get(self.api + path, params=params, timeout=30)

    def run(self, run_id) -> dict:
        return self.get(f"/api/training-runs/{run_id}").json()["training_run"]

    def wait_for(self, run_id, predicate, timeout_s=60, what="condition"):
        deadline = time.time() + timeout_s
        run = None
        while time.time() < deadline:
            run = self.run(run_id)
            if predicate(run):
                return run
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; run is {run}")

    def publisher(self):
        from google.cloud import pubsub_v1

        if not hasattr(self, "_publisher"):
            self._publisher = pubsub_v1.PublisherClient()
        return self._publisher

    def publish(self, topic: str, payload: dict):
        import json

        client = self.publisher()
        return client.publish(client.topic_path(self.stack.config.project, topic), json.dumps(payload).encode()).result()

    def wait_handled(self, function: str, message_id: str, timeout_s: float = 20) -> None:
        """Until the function logged that it handled (or acknowledged) this message."""
        log = self.stack.config.log_dir / f"{function}.log"
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            text = log.read_text(errors="replace")
            if f'"message_id": "{message_id}"' in text and ('"message handled"' in text or "acknowledged" in text):
                for line in text.splitlines():
                    if f'"message_id": "{message_id}"' in line and ("handled" in line or "acknowledged" in line):
                        return
            time.sleep(0.02)
        raise AssertionError(f"{function} did not handle message {message_id} within {timeout_s}s")

    def log_lines(self, name: str) -> list[str]:
        return (self.stack.config.log_dir / f"{name}.log").read_text(errors="replace").splitlines()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    pipeline = ScriptedPipelineService().start()
    # The scripted pipeline service stands in for the real one: control-plane tests need no TFX.
    # The prediction server is real (run-commands deploys to it); it imports TensorFlow only on a load.
    config = StackConfig.ephemeral(tmp_path_factory.mktemp("stack"), services=tuple(
        s for s in SERVICES if s.name == "prediction_server"), extra_env={
        "TRAINYARD_LOCAL_PIPELINE_URL": pipeline.url,
        "TRAINYARD_COMPILER": "tests.integration.scripted_compiler:compile_run",
        "TRAINYARD_NOTIFY_SECRETS": json.dumps({NOTIFY_SECRET_NAME: NOTIFY_SECRET}),  # test_notifications_flow
        # ... whose receiver listens on loopback over http, and signs only for it
        "TRAINYARD_NOTIFY_LOCAL_RECEIVERS": "true",
        "TRAINYARD_NOTIFY_SIGNING_SECRETS": json.dumps({NOTIFY_SECRET_NAME: ["http://127.0.0.1/hooks/"]}),
    })
    stack = Stack(config)
    stack.up()
    os.environ.update(config.emulator_env())  # this process publishes and reads through the same emulators
    try:
        yield LocalStack(stack, pipeline)
    finally:
        stack.down()
        pipeline.stop()
