"""M4 (security review): a delete ignored deployments and pushes in flight and removed the run and its
artifacts at once. Replayed through the HTTP app (tests/unit/test_actions.py's world: in-memory
repository, store and publisher) and the reconciler, as a user and the platform would do it."""
from __future__ import annotations

from datetime import timedelta

from shared.domain import runs
from shared.services import reconcile
from tests.unit.test_actions import ARTIFACTS, AUTH, make_run, post, world  # noqa: F401 (world: the fixture)

MODEL = "projects/p/locations/l/models/7"


def delete(w, run_id):
    return w.client.delete(f"/api/training-runs/{run_id}", headers=AUTH)


def get(w, run_id):
    return w.client.get(f"/api/training-runs/{run_id}", headers=AUTH)


def purge_pass(w, after: timedelta):
    return reconcile.reconcile(w.repo, w.deps.effects, w.backend, w.store, w.deps.settings, at=runs.now() + after)


def test_deleting_a_deployed_run_is_refused(world):
    run = make_run(world, runs.COMPLETED, deployment={"id": "d1", "status": "deployed", "endpoint_resource_name":
                                                      "projects/p/locations/l/endpoints/prod"},
                   deployment_status="deployed", is_deployed=True)
    response = delete(world, run["id"])
    assert response.status_code == 409 and "undeploy" in response.get_json()["message"]
    assert "endpoints/prod" in response.get_json()["message"]
    assert get(world, run["id"]).status_code == 200


def test_deleting_a_run_while_it_deploys_is_refused(world):
    run = make_run(world, runs.COMPLETED)
    assert post(world, f"/api/training-runs/{run['id']}/deploy", {"endpoint_name": "prod"}).status_code == 202
    response = delete(world, run["id"])
    assert response.status_code == 409 and "deploying" in response.get_json()["message"]
    assert not world.repo.get_run(run["id"]).get("deleted")


def test_deleting_a_run_whose_push_anyway_is_in_flight_is_refused(world):
    run = make_run(world, runs.NOT_BLESSED)
    assert post(world, f"/api/training-runs/{run['id']}/push-anyway").status_code == 202
    response = delete(world, run["id"])
    assert response.status_code == 409 and "pushed anyway" in response.get_json()["message"]
    assert get(world, run["id"]).status_code == 200


def test_a_delete_hides_the_run_and_is_restorable(world):
    run = make_run(world, runs.FAILED)
    world.store.write_text(f"{ARTIFACTS}/model/saved_model/saved_model.pb", "x")
    deleted = delete(world, run["id"])
    assert deleted.status_code == 200 and deleted.get_json()["deleted_by"] == "dev@example.com"
    assert get(world, run["id"]).status_code == 404
    assert world.client.get(f"/api/training-runs/{run['id']}/logs", headers=AUTH).status_code == 404
    listed = world.client.get("/api/training-runs", headers=AUTH).get_json()
    assert run["id"] not in [r["id"] for r in listed["training_runs"]] and listed["total"] == 0
    bin_ = world.client.get("/api/training-runs", query_string={"deleted": "true"}, headers=AUTH).get_json()
    assert [r["id"] for r in bin_["training_runs"]] == [run["id"]] and bin_["training_runs"][0]["purge_after"]
    # nothing acts on a deleted run but its restore: a retry would bring it back running, unseen
    assert post(world, f"/api/training-runs/{run['id']}/retry").status_code == 404
    restored = post(world, f"/api/training-runs/{run['id']}/restore")
    assert restored.status_code == 200 and restored.get_json()["changed"] is True
    assert restored.get_json()["training_run"]["restored_by"] == "dev@example.com"
    assert get(world, run["id"]).get_json()["training_run"]["status"] == runs.FAILED
    assert world.store.files  # its artifacts were never touched
    again = post(world, f"/api/training-runs/{run['id']}/restore")  # a repeat changes nothing
    assert again.status_code == 200 and again.get_json()["changed"] is False
    assert delete(world, run["id"]).status_code == 200  # and it can be deleted again


def test_a_deleted_run_is_purged_after_the_grace_period_and_not_before(world):
    run = make_run(world, runs.CANCELLED)
    world.store.write_text(f"{ARTIFACTS}/model/saved_model/saved_model.pb", "x")
    assert delete(world, run["id"]).status_code == 200
    grace = timedelta(days=world.deps.settings.delete_grace_days)
    assert purge_pass(world, grace - timedelta(minutes=1))["repaired"] == {}
    assert world.store.files and world.repo.get_run(run["id"])
    report = purge_pass(world, grace + timedelta(minutes=1))
    assert report["repaired"] == {"purged": 1} and not world.store.files and world.repo.get_run(run["id"]) is None
    assert post(world, f"/api/training-runs/{run['id']}/restore").status_code == 404
    assert purge_pass(world, grace + timedelta(minutes=2))["repaired"] == {}  # a repeat purges nothing


def test_a_restore_after_the_purge_began_is_refused_and_the_purge_completes(world):
    """Not in the review: a restore racing the purge must not bring back a run whose files are going."""
    run = make_run(world, runs.COMPLETED)
    world.store.write_text(f"{ARTIFACTS}/model/saved_model/saved_model.pb", "x")
    assert delete(world, run["id"]).status_code == 200
    later = runs.now() + timedelta(days=world.deps.settings.delete_grace_days, minutes=1)
    world.repo.mutate_run(run["id"], lambda doc: runs.start_purge(doc, later))  # a pass that died half-way
    response = post(world, f"/api/training-runs/{run['id']}/restore")
    assert response.status_code == 409 and "purged" in response.get_json()["message"]
    report = reconcile.reconcile(world.repo, world.deps.effects, world.backend, world.store, world.deps.settings, at=later)
    assert report["repaired"] == {"purged": 1} and world.repo.get_run(run["id"]) is None
