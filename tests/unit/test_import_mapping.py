"""shared/domain/import_mapping.py: the mapping file of `catalog import` (docs/import.md) — its errors
name the key, and a run's params, metrics, tags and artifacts land on the fields it names."""
from __future__ import annotations

from pathlib import Path

import pytest

from shared.domain import import_mapping as m
from trainyard_cli.output import read_document

# Where docs/import.md tells users to copy the defaults from (links to shared/domain/import_mappings/).
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "import"

SECTIONS = {"datasets": {}, "feature_configs": {}, "model_configs": {}, "experiments": {}}


def a_run(**changes) -> m.SourceRun:
    files = {"cfg/fc.yaml": b"name: from-artifact\nfeatures: [{name: u}]\nside: query\n"}

    def read(path):
        if path not in files:
            raise FileNotFoundError(f"the run has no artifact {path!r}")
        return files[path]

    fields = dict(id="r1", name="lucky-fox", status="FINISHED", params={"towers": "[64, 32]", "lr": "0.05",
                  "csv": "64, 32", "epochs": "5", "half": "1.5", "label": "007"},
                  metrics={"recall_at_100": 0.31}, tags={"team": "recs"}, artifact_uri="gs://b/1/r1/artifacts",
                  url=None, read_artifact=read)
    return m.SourceRun(**{**fields, **changes})


def mapped(kind_fields: dict, kind="experiments", run=None) -> dict:
    mapping = m.parse({**SECTIONS, kind: {"fields": kind_fields}})
    return m.items(mapping, run or a_run(), "quick")[kind]


@pytest.mark.parametrize("doc,message", [
    ({**SECTIONS, "experimentz": {}}, "unknown key 'experimentz'"),
    ({k: v for k, v in SECTIONS.items() if k != "datasets"}, "datasets: missing"),
    ({**SECTIONS, "datasets": {"field": {}}}, "datasets: the keys are artifact, existing, fields"),
    ({**SECTIONS, "experiments": {"existing": "x"}}, "experiments: each run is imported as its own"),
    ({**SECTIONS, "datasets": {"existing": "x", "fields": {"name": "n"}}}, "give no fields or artifact"),
    ({**SECTIONS, "experiments": {"fields": {"dataset_id": "x"}}}, "experiments.fields.dataset_id: set by the importer"),
    ({**SECTIONS, "experiments": {"fields": {"name": {"param": "a", "tag": "b"}}}}, "experiments.fields.name: give one of"),
    ({**SECTIONS, "experiments": {"fields": {"params": {"epochs": {"param": "e", "as": "integer"}}}}},
     "experiments.fields.params.epochs.as: one of"),
    ({**SECTIONS, "experiments": {"fields": {"name": "{run.owner}"}}}, "unknown template '{run.owner}'"),
    ({**SECTIONS, "version": 2}, "version: only 1"),
    ({**SECTIONS, "runs": {"state": "x"}}, "runs: only `status"),
])
def test_a_wrong_mapping_names_its_key(doc, message):
    with pytest.raises(m.MappingError) as raised:
        m.parse(doc, "my.yaml")
    assert message in str(raised.value) and str(raised.value).startswith("my.yaml")


def test_sources_templates_and_casts():
    item = mapped({"name": "{run.name} ({experiment}, {tags.team})", "query_tower": {"param": "towers"},
                   "candidate_tower": {"param": "csv", "as": "list"}, "lr": {"param": "lr"},
                   "epochs": {"param": "epochs", "as": "int"}, "label": {"param": "label", "as": "str"},
                   "decoded": {"param": "label"}, "recall": {"metric": "recall_at_100"},
                   "model": {"artifact_uri": "model"}, "literal": [1, 2], "nested": {"run": "{run.id}"}})
    assert item == {"name": "lucky-fox (quick, recs)", "query_tower": [64, 32], "candidate_tower": [64, 32],
                    "lr": 0.05, "epochs": 5, "label": "007", "decoded": "007", "recall": 0.31,
                    "model": "gs://b/1/r1/artifacts/model", "literal": [1, 2], "nested": {"run": "r1"}}


def test_what_a_run_lacks_is_left_out_or_defaulted():
    item = mapped({"name": "{params.missing}", "optimizer": {"param": "opt", "default": "adagrad"},
                   "metrics": {"test_rmse": {"metric": "test_rmse"}, "recall_at_100": {"metric": "recall_at_100"}}})
    assert item == {"optimizer": "adagrad", "metrics": {"recall_at_100": 0.31}}


def test_a_value_that_is_not_its_type_names_the_run_and_the_field():
    with pytest.raises(m.MappingError, match=r"run r1: experiments.params.epochs: '1.5' is not int"):
        mapped({"params": {"epochs": {"param": "half", "as": "int"}}})


def test_an_artifact_gives_the_fields_and_the_mapping_overrides_them():
    mapping = m.parse({**SECTIONS, "feature_configs": {"artifact": "cfg/fc.yaml", "fields": {"name": "{run.name}"}},
                       "datasets": {"existing": "ds-1"}})
    found = m.items(mapping, a_run(), "quick")
    assert found["feature_configs"] == {"name": "lucky-fox", "features": [{"name": "u"}], "side": "query"}
    assert found["datasets"] == {"existing": "ds-1"}
    missing = m.parse({**SECTIONS, "feature_configs": {"artifact": "cfg/other.yaml"}})
    with pytest.raises(m.MappingError, match=r"run r1: feature_configs.artifact: the run has no artifact 'cfg/other.yaml'"):
        m.items(missing, a_run(), "quick")


def test_only_runs_of_the_statuses_asked_for_are_imported():
    assert m.parse(SECTIONS).wants(a_run()) and not m.parse(SECTIONS).wants(a_run(status="RUNNING"))
    anything = m.parse({**SECTIONS, "runs": {"status": []}})
    assert anything.wants(a_run(status="FAILED"))


@pytest.mark.parametrize("name", ["mlflow_mapping.yaml", "vertex_mapping.yaml"])
def test_the_shipped_mappings_parse(name):
    assert set(m.parse(read_document(str(EXAMPLES / name))).sections) == set(m.KINDS)


FEATURES = (b"features:\n- {name: customer_id, column: customer_id, side: query, transform: {type: vocabulary}}\n"
            b"- {name: product_id, column: product_id, side: candidate, transform: {type: vocabulary}}\n")


def a_logged_run(run_id: str = "r1", **params) -> m.SourceRun:
    """A finished run logged as examples/import/README.md shows: what the shipped MLflow mapping reads."""
    logged = {"dataset_name": "transactions", "data_uri": "/data/transactions.csv", "user_column": "customer_id",
              "item_column": "product_id", "timestamp_column": "ts", "feature_config_name": "fc-1",
              "model_config_name": "towers", "model_type": "retrieval", "query_tower": "[64, 32]",
              "candidate_tower": "[64, 32]", "epochs": "5", "learning_rate": "0.05", **params}
    return a_run(id=run_id, params=logged, read_artifact=lambda path: FEATURES)


def test_the_shipped_mlflow_mapping_reads_a_logged_run_into_valid_items():
    from shared.services.experiment_import import problems

    found = m.items(m.parse(read_document(str(EXAMPLES / "mlflow_mapping.yaml"))), a_logged_run(), "quick")
    assert problems(found, "demo") == []
    assert found["model_configs"]["query_tower"] == [64, 32] and found["experiments"]["params"] == {
        "epochs": 5, "learning_rate": 0.05}
    assert found["experiments"]["metrics"] == {"recall_at_100": 0.31}
