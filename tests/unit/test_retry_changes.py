"""Retry with changes (the dashboard's retry form, docs/run-actions.md): every field of the form is taken, a
bad one is a 400 naming it, only what changed is recorded, and the answer says what changed."""
from __future__ import annotations

import pytest

from shared.domain import runs
from tests.unit.test_actions import make_run, post, submits, world  # noqa: F401 — the fixture

# The form's body: all its fields, changed or not (dashboard/src/retryform.js retryBody).
FORM = {"gpu_config": {"gpu_type": "NVIDIA_L4", "gpu_count": 2, "machine_count": 1, "preemptible": True},
        "training_params": {"epochs": 150, "batch_size": 8192}}


def form(**changes):
    body = {"gpu_config": dict(FORM["gpu_config"]), "training_params": dict(FORM["training_params"])}
    for name, value in changes.items():
        body["gpu_config" if name in body["gpu_config"] else "training_params"][name] = value
    return body


@pytest.mark.parametrize("name, value, field", [
    ("gpu_type", "NVIDIA_H100", "gpu_config.gpu_type"),
    ("gpu_count", 3, "gpu_config.gpu_count"),
    ("machine_count", 17, "gpu_config.machine_count"),
    ("machine_count", 0, "gpu_config.machine_count"),
    ("preemptible", "maybe", "gpu_config.preemptible"),
    ("epochs", 0, "training_params.epochs"),
    ("epochs", 1001, "training_params.epochs"),
    ("batch_size", "big", "training_params.batch_size"),
    ("batch_size", 0, "training_params.batch_size"),
])
def test_each_field_of_the_form_is_checked_by_name(world, name, value, field):
    run = make_run(world, runs.FAILED)
    response = post(world, f"/api/training-runs/{run['id']}/retry", form(**{name: value}))
    assert response.status_code == 400, response.get_json()
    assert [e["field"] for e in response.get_json()["errors"]] == [field]
    assert world.repo.get_run(run["id"])["attempt"] == 1 and not submits(world)


def test_a_gpu_count_the_new_type_cannot_hold_names_the_count(world):
    run = make_run(world, runs.FAILED, gpu_config={"gpu_type": "NVIDIA_L4", "gpu_count": 8, "machine_count": 1,
                                                   "preemptible": True})
    response = post(world, f"/api/training-runs/{run['id']}/retry", form(gpu_type="NVIDIA_TESLA_T4", gpu_count=8))
    assert response.status_code == 400
    assert [e["field"] for e in response.get_json()["errors"]] == ["gpu_config.gpu_count"]


def test_the_form_s_whole_body_records_only_what_changed_and_says_so(world):
    run = make_run(world, runs.FAILED)
    assert run["gpu_config"]["gpu_type"] == "NVIDIA_L4" and run["training_params"]["epochs"] != 40
    body = form(gpu_type="NVIDIA_TESLA_A100", gpu_count=2, preemptible=False, machine_count=2, epochs=40,
                batch_size=run["training_params"]["batch_size"])
    response = post(world, f"/api/training-runs/{run['id']}/retry", body)
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    changes = {"gpu_config": {"gpu_type": "NVIDIA_TESLA_A100", "machine_type": "a2-highgpu-2g", "preemptible": False,
                              "machine_count": 2}, "training_params": {"epochs": 40}}
    assert answer["changes"] == changes
    assert answer["message"].startswith("attempt 2 queued with ")
    for said in ("gpu_config.gpu_type NVIDIA_TESLA_A100", "gpu_config.machine_count 2", "training_params.epochs 40"):
        assert said in answer["message"]
    stored = world.repo.get_run(run["id"])
    assert stored["last_retry"]["changes"] == stored["attempts"][0]["retry_changes"] == changes
    assert stored["gpu_config"]["machine_type"] == "a2-highgpu-2g" and stored["total_epochs"] == 40
    assert stored["attempts"][0]["shape"]["gpu_type"] == "NVIDIA_L4"  # the failed attempt keeps its own shape


def test_an_unchanged_form_retries_as_it_was_on_its_own_machine(world):
    run = make_run(world, runs.CANCELLED, gpu_config={"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 1, "preemptible": True,
                                                      "machine_type": "n1-highmem-16", "machine_count": 1})
    same = {"gpu_config": {k: run["gpu_config"][k] for k in ("gpu_type", "gpu_count", "machine_count", "preemptible")},
            "training_params": {k: run["training_params"][k] for k in ("epochs", "batch_size")}}
    answer = post(world, f"/api/training-runs/{run['id']}/retry", same).get_json()
    assert answer["changes"] == {} and answer["message"] == "attempt 2 queued"
    assert world.repo.get_run(run["id"])["gpu_config"]["machine_type"] == "n1-highmem-16"  # not T4 x 1's default


def test_more_gpus_than_the_quota_holds_is_a_warning_on_the_retry_as_at_create(world):
    # security-review H4 said "retry skips [the quota pre-flight] entirely": the retry checks the new shape.
    run = make_run(world, runs.FAILED)
    answer = post(world, f"/api/training-runs/{run['id']}/retry", form(gpu_type="NVIDIA_TESLA_A100", gpu_count=8)).get_json()
    assert answer["changed"] is True
    assert any(w.startswith("GPU quota:") and "needs 8" in w for w in answer["warnings"]), answer["warnings"]
