"""Champion vs challenger (issue 27): the gate holds the challenger to the champion's figure within the
tolerance; no champion, or one that cannot be scored, leaves the threshold alone to decide and says so;
the champion is scored through its own signature on the same test batches; and it is found on the local
endpoint the run deploys to, else in the local registry."""
import json
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from pipeline_compiler import champion as champions  # noqa: E402
from pipeline_compiler import evaluation  # noqa: E402
from pipeline_compiler.champion import Champion  # noqa: E402
from pipeline_compiler.evaluation import ChampionScore, decide_blessing  # noqa: E402
from tests.unit.pipeline_compiler.test_evaluator_streaming import TOP, evaluation_inputs  # noqa: E402,F401
from tests.unit.pipeline_compiler.tiny_data import tiny_spec  # noqa: E402

CHAMPION = Champion(model="registry/m", version="3", artifact_uri="/nowhere", source="registry default")
THRESHOLD = {"metric": "recall_at_100", "min_value": 0.30}


def _spec(tmp_path, model_type="retrieval", deployment_config=None, **evaluator):
    extra = {"deployment_config": deployment_config} if deployment_config else {}
    return tiny_spec(str(tmp_path), model_type=model_type,
                     evaluator_config={"enabled": True, "blessing_threshold": THRESHOLD, **evaluator}, **extra)


def _decide(spec, recall, champion_recall=None, error=None):
    score = ChampionScore(CHAMPION, {} if champion_recall is None else {"recall_at_100": champion_recall}, error)
    return decide_blessing(spec, {"recall_at_100": recall}, {"recall_at_100": 0.1}, champion=score)


def test_a_challenger_below_the_champion_is_not_blessed_and_says_why(tmp_path):
    evaluation = _decide(_spec(tmp_path), 0.41, 0.52)
    assert not evaluation.blessed and not evaluation.passed
    assert evaluation.reason == "not blessed: recall_at_100 0.41 < champion 0.52 × 0.99"
    assert evaluation.champion_value == 0.52 and evaluation.champion_required_value == pytest.approx(0.5148)
    assert (evaluation.champion_version, evaluation.champion_source, evaluation.champion_tolerance) == \
        ("3", "registry default", 0.01)


@pytest.mark.parametrize("recall,tolerance,blessed", [(0.515, 0.01, True), (0.514, 0.01, False),
                                                      (0.50, 0.05, True), (0.519, 0.0, False), (0.52, 0.0, True)])
def test_the_tolerance_lets_a_challenger_within_it_replace_the_champion(tmp_path, recall, tolerance, blessed):
    evaluation = _decide(_spec(tmp_path, champion_tolerance=tolerance), recall, 0.52)
    assert evaluation.blessed is blessed
    assert evaluation.reason.startswith("blessed: recall_at_100" if blessed else "not blessed: recall_at_100")


def test_both_the_threshold_and_the_champion_must_hold(tmp_path):
    evaluation = _decide(_spec(tmp_path), 0.25, 0.20)  # beats the champion, not the threshold
    assert not evaluation.blessed and evaluation.reason == "not blessed: recall_at_100 0.25 < threshold 0.3"


def test_without_a_champion_the_threshold_alone_decides(tmp_path):
    evaluation = decide_blessing(_spec(tmp_path), {"recall_at_100": 0.35}, {"recall_at_100": 0.1}, champion=None)
    assert evaluation.blessed and evaluation.champion_value is None and evaluation.champion_model is None
    assert evaluation.reason == "blessed: recall_at_100 0.35 ≥ threshold 0.3; no champion yet"


def test_a_champion_that_could_not_be_scored_is_reported_and_the_threshold_decides(tmp_path):
    evaluation = _decide(_spec(tmp_path), 0.35, error="champion 3 (registry default) could not be loaded from /x")
    assert evaluation.blessed and evaluation.champion_value is None
    assert evaluation.champion_error.startswith("champion 3 (registry default) could not be loaded")
    assert "champion not scored" in evaluation.reason and "the threshold alone decided" in evaluation.reason
    assert not _decide(_spec(tmp_path), 0.25, error="gone").blessed  # the threshold still holds


def test_an_error_metric_is_held_to_the_champion_from_below(tmp_path):
    spec = tiny_spec(str(tmp_path), model_type="ranking", evaluator_config={
        "enabled": True, "blessing_threshold": {"metric": "test_rmse", "max_value": 2.0}})
    score = ChampionScore(CHAMPION, {"test_rmse": 1.0})
    worse = decide_blessing(spec, {"test_rmse": 1.02}, {"test_rmse": 1.5}, champion=score)
    assert not worse.blessed and worse.reason == "not blessed: test_rmse 1.02 > champion 1 × 1.01"
    assert decide_blessing(spec, {"test_rmse": 1.01}, {"test_rmse": 1.5}, champion=score).blessed


def test_the_comparison_can_be_turned_off(tmp_path, evaluation_inputs, monkeypatch):  # noqa: F811
    root, dtypes, *_ = evaluation_inputs
    monkeypatch.setattr(evaluation, "raw_dtypes", lambda transform_dir: dtypes)
    spec = _spec(root, compare_to_champion=False)
    asked = []
    result = evaluation.evaluate_model(spec, str(root / "examples"), str(root / "model"), "unused",
                                       find_champion=lambda: asked.append(1))
    assert asked == [] and result.champion_model is None and "champion" not in result.reason


def _fixed_model(path, top):
    class Fixed(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="customer_id")])
        def serve(self, customer_id):
            return {"ids": tf.tile(tf.constant([top]), [tf.shape(customer_id)[0], 1])}

    model = Fixed()
    tf.saved_model.save(model, str(path), signatures={"serving_default": model.serve})
    return str(path)


def _evaluate_against(root, dtypes, monkeypatch, find):
    monkeypatch.setattr(evaluation, "raw_dtypes", lambda transform_dir: dtypes)
    spec = _spec(root, blessing_threshold={"metric": "recall_at_100", "min_value": 0.0})
    return evaluation.evaluate_model(spec, str(root / "examples"), str(root / "model"), "unused", find_champion=find)


def test_the_champion_is_scored_through_its_own_signature_on_the_same_rows(evaluation_inputs, monkeypatch,  # noqa: F811
                                                                          tmp_path):
    root, dtypes, data, cut, test_items = evaluation_inputs
    items, counts = np.unique(test_items, return_counts=True)
    best = [str(i) for i in items[np.argsort(-counts, kind="stable")][:100]]  # the test split's own top items
    better = Champion("registry/m", "1", _fixed_model(tmp_path / "better", best), "registry default")
    result = _evaluate_against(root, dtypes, monkeypatch, lambda: better)
    assert result.champion_metrics["recall_at_100"] == pytest.approx(np.mean(np.isin(test_items, best)))
    assert result.champion_value > result.actual_value and not result.blessed
    assert result.reason.startswith("not blessed: recall_at_100") and "< champion" in result.reason

    same = Champion("registry/m", "1", _fixed_model(tmp_path / "same", TOP), "registry default")
    result = _evaluate_against(root, dtypes, monkeypatch, lambda: same)
    assert result.champion_metrics == pytest.approx({k: v for k, v in result.metrics.items() if k != "test_examples"})
    assert result.blessed  # an equal model is within the tolerance


def test_an_unloadable_or_unfindable_champion_never_fails_the_evaluation(evaluation_inputs, monkeypatch):  # noqa: F811
    root, dtypes, *_ = evaluation_inputs
    gone = _evaluate_against(root, dtypes, monkeypatch, lambda: CHAMPION)
    assert gone.blessed and gone.champion_error.startswith("champion 3 (registry default) could not be loaded")

    def unreachable():
        raise ConnectionError("registry unreachable")

    lost = _evaluate_against(root, dtypes, monkeypatch, unreachable)
    assert lost.blessed and lost.champion_error == "the champion could not be looked up: registry unreachable"


# --------------------------------------------------------------------------- finding it locally


def _register(registry, name, version, run_id):
    version_dir = registry / name / "versions" / str(version)
    (version_dir / "saved_model").mkdir(parents=True)
    entry = {"serving_model_uri": str(version_dir / "saved_model"), "model_version_id": str(version)}
    (version_dir / "metadata.json").write_text(json.dumps({"run_id": run_id, "entry": entry}))


def test_the_local_champion_is_the_registrys_newest_version(tmp_path):
    spec = _spec(tmp_path)
    registry, endpoints = tmp_path / "registry", str(tmp_path / "endpoints")
    assert champions.find_local(spec, str(registry), endpoints) is None  # first run of the model
    _register(registry, spec.run_name, 1, "r1")
    _register(registry, spec.run_name, 2, "r2")
    (registry / spec.run_name / "versions" / "3").mkdir()  # a copy under way: no metadata yet
    found = champions.find_local(spec, str(registry), endpoints)
    assert (found.version, found.source) == ("2", "registry default")
    assert found.artifact_uri == str(registry / spec.run_name / "versions" / "2" / "saved_model")


def test_the_local_champion_is_what_the_target_endpoint_serves_most(tmp_path):
    spec = _spec(tmp_path, deployment_config={"action": "deploy_existing", "existing_endpoint_id": "ep1"})
    registry, endpoints = tmp_path / "registry", tmp_path / "endpoints"
    _register(registry, spec.run_name, 5, "r5")
    endpoints.mkdir()
    models = [{"id": "a", "model": "m", "model_version_id": "1", "saved_model_uri": "/models/one"},
              {"id": "b", "model": "m", "model_version_id": "2", "saved_model_uri": "/models/two"}]
    (endpoints / "ep1.json").write_text(json.dumps({"endpoint_id": "ep1", "deployed_models": models,
                                                    "traffic_split": {"a": 90, "b": 10}}))
    found = champions.find_local(spec, str(registry), str(endpoints))
    assert (found.version, found.artifact_uri, found.source) == ("1", "/models/one", "endpoint ep1")
    os.remove(endpoints / "ep1.json")  # the endpoint is gone: the registry's default stands in
    assert champions.find_local(spec, str(registry), str(endpoints)).version == "5"
