"""shared/services/catalog_import.py: an imported entry's id comes from its source run (experiments) or
its content (configs), so re-imports never duplicate and a changed run updates its experiment."""
from __future__ import annotations

import pytest

from shared.errors import FieldError
from shared.services import catalog_import
from tests.builders import dataset_body, demo_member, feature_config_body, model_config_body

ORIGIN = {"source": "mlflow", "location": "http://mlflow:5000", "experiment": "quick", "run_id": "r1",
          "url": "http://mlflow:5000/#/experiments/1/runs/r1"}


def _import(repo, kind, item, origin=ORIGIN):
    who, declared = demo_member()
    return catalog_import.import_entry(repo, kind, {"origin": origin, "item": item}, who, declared)


def _configs(repo, origin=ORIGIN, **model):
    return {field: _import(repo, kind, body, origin)[0]["id"] for field, kind, body in (
        ("dataset_id", "datasets", dataset_body()), ("feature_config_id", "feature_configs", feature_config_body()),
        ("model_config_id", "model_configs", model_config_body(**model)))}


def _experiment(repo, origin=ORIGIN, metrics=None, **model):
    item = {"name": "run r1", "model_type": "retrieval", **_configs(repo, origin, **model),
            "metrics": metrics or {"recall_at_100": 0.3}}
    return _import(repo, "experiments", item, origin)


def test_a_re_import_changes_nothing_and_a_changed_run_updates_its_experiment_in_place(repo):
    made, result = _experiment(repo)
    assert result == "created" and made["id"].startswith("imp-") and made["origin"]["run_id"] == "r1"
    assert made["source"] == {"kind": "mlflow", "by": made["created_by"], "run_id": "r1", "url": ORIGIN["url"]}
    again, result = _experiment(repo)
    assert result == "unchanged" and again == made
    changed, result = _experiment(repo, metrics={"recall_at_100": 0.4})
    assert result == "updated" and changed["id"] == made["id"] and changed["number"] == made["number"]
    assert changed["metrics"]["recall_at_100"] == 0.4 and changed["created_at"] == made["created_at"]
    assert "updated_at" in changed and len(repo.catalog["experiments"]) == 1
    assert repo.get_catalog("experiments", made["id"])["metrics"]["recall_at_100"] == 0.4


def test_runs_sharing_a_config_share_its_entry_and_a_changed_config_is_a_new_one(repo):
    first, _ = _experiment(repo)
    second, _ = _experiment(repo, origin={**ORIGIN, "run_id": "r2"})
    assert second["id"] != first["id"] and second["model_config_id"] == first["model_config_id"]
    assert len(repo.catalog["model_configs"]) == 1
    wider, result = _experiment(repo, query_tower=[128, 32])
    assert result == "updated" and wider["model_config_id"] != first["model_config_id"]
    assert len(repo.catalog["model_configs"]) == 2  # the old one stays: runs built from it still read it


def test_the_same_tracking_server_spelled_with_a_slash_is_the_same_place(repo):
    made, _ = _import(repo, "datasets", dataset_body())
    again, result = _import(repo, "datasets", dataset_body(), {**ORIGIN, "location": ORIGIN["location"] + "/"})
    assert result == "unchanged" and again["id"] == made["id"]


@pytest.mark.parametrize("body,field", [
    ({"origin": ORIGIN, "item": dataset_body(), "extra": 1}, "extra"),
    ({"origin": {**ORIGIN, "source": "neptune"}, "item": dataset_body()}, "origin.source"),
    ({"origin": {**ORIGIN, "location": " / "}, "item": dataset_body()}, "origin.location"),
    ({"origin": ORIGIN, "item": dataset_body(columns={"user_id": "u"})}, "item.columns.item_id"),
    ({"origin": ORIGIN, "item": dataset_body(id="mine")}, "item.id"),
])
def test_a_bad_import_names_the_field(repo, body, field):
    who, declared = demo_member()
    with pytest.raises(FieldError) as raised:
        catalog_import.import_entry(repo, "datasets", body, who, declared)
    assert field in [e["field"] for e in raised.value.errors]
    assert repo.catalog.get("datasets", {}) == {}
