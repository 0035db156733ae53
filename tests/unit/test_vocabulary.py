"""GET /api/vocabulary serves the domain's own sets (statuses, stages, metrics, GPU types, actions), so the
dashboard cannot drift from the server: the sets are compared with the domain's here, and each action's
statuses with what the services really accept."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest

from shared.domain import model_kinds, run_config, runs
from shared.adapters.artifact_store import ArtifactStore
from shared.domain.catalog import ModelType
from shared.contract import nodes
from shared.contract.vocabulary import ACTIONS, vocabulary
from shared.errors import Conflict
from shared.http.app import Dependencies, create_app
from shared.http.openapi import document
from shared.services import catalog_entries, intake, scheduling
from shared.services.actions import approval, cancel, deletion, deploy, push_anyway, retry
from shared.services.ports import Effects
from tests.builders import demo_member, local_settings, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository
from tests.unit.test_schedules import NoJobs

REGISTERED = {"vertex_model_resource_name": "projects/p/locations/l/models/7", "vertex_model_version": "1",
              "vertex_model_name": "product-recommender-v3"}


def test_the_vocabulary_is_the_domains_sets():
    v = vocabulary()
    assert v["statuses"] == list(runs.STATUSES)
    assert set(v["status_groups"]["active"]) == set(runs.ACTIVE)
    assert set(v["status_groups"]["terminal"]) == set(runs.TERMINAL)
    assert v["status_groups"]["cancellable"] == list(runs.CANCELLABLE)
    assert v["status_groups"]["retryable"] == list(runs.RETRYABLE)
    assert v["status_groups"]["deletable"] == list(runs.DELETABLE)
    assert [s["name"] for s in v["stages"]] == list(nodes.STAGES) == [s["name"] for s in runs.initial_stages()]
    assert {s["name"]: s["node"] for s in v["stages"] if s["node"]} == nodes.NODE_OF_STAGE
    assert sum(s["weight"] for s in v["stages"]) == 100
    assert set(v["stage_statuses"]) == set(runs.TASK_STATE_TO_STAGE.values()) | {runs.STAGE_SKIPPED}
    assert [m["name"] for m in v["model_types"]] == list(get_args(ModelType))
    lower = {m["name"] for m in v["metrics"] if m["lower_is_better"]}
    for model in v["model_types"]:
        metric, descending = catalog_entries.PRIMARY_METRIC[model["name"]]  # what ranks experiments for promotion
        assert model["primary_metric"] == metric == run_config.gate_metric(model["name"], None)
        assert (metric in lower) is not descending
        assert model["gate_metrics"] == list(run_config.METRICS_FOR_MODEL_TYPE[model["name"]])
        assert metric in model["gate_metrics"]
    assert run_config.LOWER_IS_BETTER <= lower
    # every metric a threshold may name is described, and its direction is the one the gate applies
    threshold_metrics = get_args(run_config.BlessingThreshold.model_fields["metric"].annotation)
    assert set(threshold_metrics) <= {m["name"] for m in v["metrics"]}
    assert {g["name"]: g["counts"] for g in v["gpu_types"]} == {
        gpu: sorted(machines) for gpu, machines in run_config.GPU_MACHINES.items()}
    assert [g["name"] for g in v["gpu_types"]] == list(get_args(run_config.GpuType))
    assert v["default_gpu"] == run_config.GpuConfig().model_dump(exclude={"machine_type"})


def test_every_action_names_a_route_of_the_openapi_document():
    paths = document()["paths"]
    for action in vocabulary()["actions"]:
        assert action["method"].lower() in paths[action["path"]], action
        assert set(action["statuses"]) <= set(runs.STATUSES)


@pytest.fixture
def world(repo, publisher, ids):
    return repo, publisher, ids


def _call(name: str, repo, publisher, run_id: str) -> None:
    who, declared = demo_member("vocab@example.com")
    effects = Effects(publisher, NoJobs())
    {
        "submit": lambda: intake.submit_run(repo, effects, run_id, who),
        "run-now": lambda: scheduling.run_now(repo, effects, run_id, who),
        "cancel": lambda: cancel.request(repo, effects, run_id, who),
        "approve": lambda: approval.approve(repo, effects, run_id, who.email),  # as spend_routes calls them
        "reject": lambda: approval.reject(repo, effects, run_id, who.email, {}),
        "retry": lambda: retry.request(repo, effects, run_id, who, {}),
        "deploy": lambda: deploy.request(repo, effects, run_id, who, {"endpoint_name": "recs"}, declared),
        "push-anyway": lambda: push_anyway.request(repo, effects, run_id, who, declared),
        "delete": lambda: deletion.delete(repo, run_id, who, grace_days=7),
    }[name]()


@pytest.mark.parametrize("action", [a["name"] for a in ACTIONS])
@pytest.mark.parametrize("status", runs.STATUSES)
def test_an_action_is_offered_exactly_where_the_service_accepts_it(world, action, status):
    """Offered: the service moves the run. Not offered: a 409, or a repeat that changes nothing (cancel of a
    cancelling run, submit of a pending one, which only queues it again)."""
    repo, publisher, ids = world
    entry = next(a for a in vocabulary()["actions"] if a["name"] == action)
    later = (runs.now() + timedelta(days=1)).isoformat()
    # a run waiting for a one-time schedule (run-now needs one), then put in the status under test
    made = intake.create_run(repo, Effects(publisher, NoJobs()),
                             run_body(ids["experiment"], scheduled_at=later), *demo_member("vocab@example.com"))
    fields = {"status": status, **(REGISTERED if "vertex_model_resource_name" in entry["requires"] else {})}
    before = repo.mutate_run(made["id"], lambda d: {**d, **fields})
    try:
        _call(action, repo, publisher, made["id"])
        refused = False
    except Conflict:
        refused = True
    after = repo.get_run(made["id"])
    changed = after != before
    if status in entry["statuses"]:
        assert not refused and changed, (action, status)
    else:
        assert refused or not changed, (action, status)


def test_deploy_needs_a_registered_model_as_the_vocabulary_says(world):
    repo, publisher, ids = world
    made = intake.create_run(repo, Effects(publisher, NoJobs()),
                             run_body(ids["experiment"]), *demo_member("vocab@example.com"))
    repo.mutate_run(made["id"], lambda d: {**d, "status": runs.COMPLETED})
    with pytest.raises(Conflict):
        _call("deploy", repo, publisher, made["id"])
    deploy = next(a for a in vocabulary()["actions"] if a["name"] == "deploy")
    assert deploy["requires"] == ["vertex_model_resource_name"]


@pytest.mark.parametrize("model_type", [k.name for k in model_kinds.KINDS])
def test_the_served_default_gate_is_the_one_a_new_run_gets(repo, model_type):
    gate, primary = vocabulary()["gate"], model_kinds.kind(model_type).primary_metric
    lower = model_kinds.lower_is_better(primary)
    ids = seed_catalog(repo, model_type=model_type, rmse=0.8 if lower else None)
    made = intake.create_run(repo, Effects(FakePublisher(), NoJobs()),
                             run_body(ids["experiment"]), *demo_member("vocab@example.com"))
    expected = ({"max_value": pytest.approx(0.8 * gate["derived_max_slack"])} if lower
                else {"min_value": gate["default_min_value"]})
    assert made["evaluator_config"]["blessing_threshold"] == {"metric": primary, "min_value": None,
                                                              "max_value": None, **expected}


def test_get_vocabulary_needs_an_identity_and_serves_the_vocabulary():
    settings = local_settings("vocab@example.com", "t")
    app = create_app(Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=ArtifactStore(),
                                  settings=settings, scheduler_jobs=NoJobs(), run_data=None))
    client = app.test_client()
    assert client.get("/api/vocabulary").status_code == 401
    response = client.get("/api/vocabulary", headers={"Authorization": "Bearer t"})
    assert response.status_code == 200 and response.get_json() == {"success": True, "vocabulary": vocabulary()}


def test_the_dashboards_test_copy_is_the_vocabulary():
    """dashboard/src/format.test.js runs on this copy; regenerate it with
    `python -m shared.contract.vocabulary > dashboard/src/testdata/vocabulary.json`."""
    copy = Path(__file__).resolve().parents[2] / "dashboard" / "src" / "testdata" / "vocabulary.json"
    assert json.loads(copy.read_text()) == vocabulary()
