"""The evaluator's gate against the baseline (issue 16): "beats most-popular (or predict-the-mean) by
at least X %", alone or besides a fixed threshold; the evaluation carries both numbers."""
import pytest

pytest.importorskip("tensorflow")

from pipeline_compiler.evaluation import decide_blessing  # noqa: E402
from shared.domain.run_config import EvaluatorConfig, lift_percent  # noqa: E402
from tests.unit.pipeline_compiler.tiny_data import tiny_spec  # noqa: E402


def _spec(tmp_path, model_type="retrieval", **evaluator):
    return tiny_spec(str(tmp_path), model_type=model_type, evaluator_config={"enabled": True, **evaluator})


def test_lift_is_measured_in_the_metrics_direction():
    assert lift_percent("recall_at_100", 0.36, 0.30) == pytest.approx(20.0)
    assert lift_percent("test_rmse", 0.9, 1.0) == pytest.approx(10.0)  # lower is better
    assert lift_percent("test_rmse", 1.1, 1.0) == pytest.approx(-10.0)
    assert lift_percent("recall_at_100", 0.3, 0.0) is None


@pytest.mark.parametrize("recall,blessed", [(0.36, True), (0.35, False), (0.25, False)])
def test_recall_must_beat_most_popular_by_the_required_percent(tmp_path, recall, blessed):
    spec = _spec(tmp_path, min_lift_over_baseline_percent=20)
    evaluation = decide_blessing(spec, {"recall_at_100": recall}, {"recall_at_100": 0.30})
    assert evaluation.blessed is blessed and evaluation.passed is blessed
    assert evaluation.threshold_metric == "recall_at_100" and evaluation.threshold_value is None
    assert evaluation.actual_value == recall and evaluation.baseline_value == 0.30
    assert evaluation.required_lift_percent == 20
    assert evaluation.lift_percent == pytest.approx(100 * (recall - 0.30) / 0.30)


def test_both_the_fixed_threshold_and_the_lift_must_pass(tmp_path):
    spec = _spec(tmp_path, blessing_threshold={"metric": "recall_at_100", "min_value": 0.5},
                 min_lift_over_baseline_percent=10)
    assert not decide_blessing(spec, {"recall_at_100": 0.45}, {"recall_at_100": 0.30}).blessed  # lift ok, threshold not
    assert not decide_blessing(spec, {"recall_at_100": 0.52}, {"recall_at_100": 0.50}).blessed  # threshold ok, lift 4%
    both = decide_blessing(spec, {"recall_at_100": 0.60}, {"recall_at_100": 0.50})
    assert both.blessed and both.threshold_value == 0.5 and both.lift_percent == pytest.approx(20.0)


def test_ranking_beats_predict_the_mean(tmp_path):
    spec = _spec(tmp_path, model_type="ranking", min_lift_over_baseline_percent=5)
    assert decide_blessing(spec, {"test_rmse": 0.90}, {"test_rmse": 1.0}).blessed
    worse = decide_blessing(spec, {"test_rmse": 0.97}, {"test_rmse": 1.0})
    assert not worse.blessed and worse.threshold_metric == "test_rmse" and worse.lift_percent == pytest.approx(3.0)


def test_without_a_lift_requirement_the_gate_is_as_before(tmp_path):
    spec = _spec(tmp_path, blessing_threshold={"metric": "recall_at_100", "min_value": 0.4})
    evaluation = decide_blessing(spec, {"recall_at_100": 0.41}, {"recall_at_100": 0.45})
    assert evaluation.blessed and evaluation.required_lift_percent is None
    assert evaluation.baseline_value == 0.45 and evaluation.lift_percent < 0  # still shown beside it
    with pytest.raises(ValueError):
        EvaluatorConfig(min_lift_over_baseline_percent=-1)
