"""The Vertex AI Experiments reader (shared/adapters/vertex_experiment_runs.py) under concurrent imports: the
SDK keeps one process-wide configuration (`aiplatform.init`), which listing runs and reading each run's params
read. Two imports at once from different projects (the API serves requests on threads) must each read their
own project. The SDK here is a stand-in that reads its configuration when called, as the SDK does; the reader
against the real SDK and the gRPC fake is tests/integration/test_import_vertex_experiments.py."""
from __future__ import annotations

import sys
import threading
import types

from shared.adapters.vertex_experiment_runs import VertexExperimentRuns


class _Run:
    def __init__(self, sdk, name: str):
        self.sdk, self.name = sdk, name
        self.resource_name = f"projects/p/locations/l/metadataStores/default/contexts/{name}"

    def get_state(self):
        return "COMPLETE"

    def get_params(self):
        return {"project": self.sdk.config["project"]}  # the configuration as it is when asked

    def get_metrics(self):
        return {"recall_at_100": 0.5}


def _sdk():
    sdk = types.ModuleType("google.cloud.aiplatform")
    sdk.config, sdk.inits = {}, 0
    second_init = threading.Event()

    def init(project, location, api_endpoint=None):
        sdk.config = {"project": project, "location": location}
        sdk.inits += 1
        if sdk.inits == 2:
            second_init.set()

    def list_runs(experiment):
        second_init.wait(0.5)  # the other import's init, if nothing holds it back, lands here
        return [_Run(sdk, f"{experiment}-{i}") for i in range(2)]

    sdk.init = init
    sdk.ExperimentRun = types.SimpleNamespace(list=list_runs)
    return sdk


def test_two_imports_at_once_each_read_their_own_project(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.cloud.aiplatform", _sdk())
    read: dict[str, list] = {}

    def import_from(project: str):
        read[project] = list(VertexExperimentRuns(project, "europe-west4").runs("recs"))

    threads = [threading.Thread(target=import_from, args=(project,)) for project in ("team-a-proj", "team-b-proj")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert {p: [r.params["project"] for r in runs] for p, runs in read.items()} == {
        "team-a-proj": ["team-a-proj"] * 2, "team-b-proj": ["team-b-proj"] * 2}
    assert all(r.url.endswith(f"?project={p}") for p, runs in read.items() for r in runs)
