"""The 7-component pipeline end to end with LocalDagRunner on the demo data (a few minutes on 2 cores)."""
import json
import os
import sqlite3

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

from pipeline_compiler import PipelineEnv, run_local  # noqa: E402
from shared.contract.nodes import NODE_IDS  # noqa: E402
from pipeline_compiler.demo_data import demo_run_spec, write_csv  # noqa: E402
from shared.contract import results as R  # noqa: E402

DEMO_SIZES = dict(rows=15_000, customers=400, products=2_000, months=4)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline_local")
    write_csv(str(root / "data" / "transactions.csv"), **DEMO_SIZES)
    return root


def _run(workdir, run_id, model_type, evaluator_config, training_params):
    spec = demo_run_spec(
        str(workdir / "data" / "transactions.csv"), str(workdir / "artifacts" / run_id), str(workdir / "root" / run_id),
        model_type=model_type, run_id=run_id, run_name=f"demo-{run_id}",
        training_params={"batch_size": 256, "learning_rate": 0.1, "lr_schedule": {"type": "constant"},
                         "early_stopping": {"enabled": True, "patience": 3}, **training_params},
        evaluator_config=evaluator_config,
    )
    metadata = str(workdir / "metadata" / f"{run_id}.sqlite")
    run_local(spec, PipelineEnv(local_registry_dir=str(workdir / "registry")), metadata_path=metadata)
    return spec, metadata


def _read(spec, relative, model):
    with open(os.path.join(spec.artifacts_uri, relative)) as handle:
        return model.model_validate_json(handle.read())


def _completed_nodes(metadata_path):
    """Node ids with a COMPLETE execution in ML Metadata (what the local pipeline service reads)."""
    with sqlite3.connect(metadata_path) as db:
        rows = db.execute(
            "SELECT c.name FROM Execution e JOIN Association a ON a.execution_id = e.id "
            "JOIN Context c ON c.id = a.context_id JOIN Type t ON t.id = c.type_id "
            "WHERE t.name = 'node' AND e.last_known_state = 3").fetchall()
    return {name.split(".", 1)[1] for (name,) in rows}


def test_retrieval_run_is_blessed_beats_popularity_and_is_registered(workdir):
    spec, metadata = _run(workdir, "retrieval", "retrieval",
                          {"enabled": True, "blessing_threshold": {"metric": "recall_at_100", "min_value": 0.2}},
                          {"epochs": 25, "learning_rate": 0.2})
    assert _completed_nodes(metadata) == set(NODE_IDS)
    evaluation = _read(spec, R.EVALUATION_FILE, R.Evaluation)
    assert evaluation.blessed and evaluation.passed
    recall, baseline = evaluation.metrics["recall_at_100"], evaluation.baseline_metrics["recall_at_100"]
    assert recall >= 2 * baseline, (recall, baseline)
    assert evaluation.actual_value == recall and evaluation.threshold_value == 0.2

    metrics = _read(spec, R.TRAINING_METRICS_FILE, R.TrainingMetrics)
    assert metrics.epochs and metrics.best_epoch and metrics.examples_per_second
    artifacts = _read(spec, R.ARTIFACTS_FILE, R.ArtifactLocations)
    assert os.path.exists(os.path.join(artifacts.saved_model, "saved_model.pb"))
    entry = _read(spec, R.REGISTRY_FILE, R.RegistryEntry)
    assert entry.model_display_name == spec.run_name and entry.model_version_id == "1"
    assert os.path.exists(os.path.join(entry.serving_model_uri, "saved_model.pb"))
    with open(os.path.join(entry.model_resource_name, "versions", "1", "metadata.json")) as handle:
        assert json.load(handle)["labels"]["trainyard-run-id"] == "retrieval"
    # The registered version's model card, from what each stage wrote (shared/domain/model_card.py).
    from shared.domain.model_card import ModelCard

    card = _read(spec, R.MODEL_CARD_JSON, ModelCard)
    assert card.model_version == "1" and card.lineage.run_id == spec.run_id and card.gate.blessed
    assert set(card.data.rows_per_split) == {"train", "eval", "test"} and all(card.data.rows_per_split.values())
    assert card.data.rows_per_split["test"] == evaluation.metrics["test_examples"]
    assert card.metrics == evaluation.metrics and card.baselines["most_popular"] == evaluation.baseline_metrics
    assert len(card.training.epochs) == len(metrics.epochs) and card.gate.decision.startswith("blessed: recall_at_100")
    with open(os.path.join(spec.artifacts_uri, R.MODEL_CARD_MARKDOWN)) as handle:
        assert handle.read().startswith(f"# Model card: {spec.run_name}, version 1")


# An unreachable threshold (not blessed, model kept, nothing registered) is covered through the
# whole stack in tests/e2e/test_local_stack.py, which saves a pipeline run here.


def test_ranking_run_beats_predict_the_mean(workdir):
    spec, _ = _run(workdir, "ranking", "ranking",
                   {"enabled": True, "blessing_threshold": {"metric": "test_rmse", "max_value": 100.0}},
                   {"epochs": 8, "learning_rate": 0.05})
    evaluation = _read(spec, R.EVALUATION_FILE, R.Evaluation)
    assert evaluation.blessed
    assert evaluation.metrics["test_rmse"] < evaluation.baseline_metrics["test_rmse"], evaluation
    assert os.path.exists(os.path.join(spec.artifacts_uri, R.REGISTRY_FILE))
