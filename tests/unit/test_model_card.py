"""A registered version's model card (shared/domain/model_card.py): every part from the run's own files,
and the Markdown a reviewer reads."""
from __future__ import annotations

from shared.contract import results
from shared.domain import model_card
from shared.domain.run_config import RunSpec
from tests.unit.scenario import T0


def _spec(**changes) -> RunSpec:
    from tests.unit.pipeline_compiler.tiny_data import tiny_spec

    return tiny_spec("/tmp/unused").model_copy(update=changes)


ENTRY = results.RegistryEntry(model_display_name="recs", model_resource_name="projects/p/locations/l/models/9",
                              model_version_id="4", serving_model_uri="gs://b/run/model/saved_model", registered_at=T0)
EVALUATION = results.Evaluation(
    metrics={"recall_at_10": 0.2, "recall_at_100": 0.6}, baseline_metrics={"recall_at_10": 0.05, "recall_at_100": 0.3},
    ease_metrics={"recall_at_10": 0.25, "recall_at_100": 0.65}, ease_value=0.65, lift_percent=100.0,
    lift_over_ease_percent=-7.7, threshold_metric="recall_at_100", threshold_value=0.5, actual_value=0.6,
    passed=True, blessed=True)
TRAINING = results.TrainingMetrics(epochs=[results.EpochMetrics(run_id="r", epoch=e, total_epochs=2, loss=1 / e,
                                                                metrics={"recall_at_100": 0.3 * e}) for e in (1, 2)],
                                   best_epoch=2, stopped_early=True)
CHECK = results.DataCheck(rows_per_split={"train": 800, "eval": 100, "test": 100}, coercions=[results.DataCoercion(
    column="price", feature="price", transform="numeric", count=3, rows=1000, examples=["n/a"])])


def test_the_card_holds_data_config_curve_metrics_gate_and_lineage():
    spec = _spec(schedule_id="sched-1", created_by="alice@example.com")
    card = model_card.build(spec, ENTRY, EVALUATION, TRAINING, CHECK, pipeline_image="pipe@sha256:abc",
                            serving_image="serve:1")
    assert card.data.rows_per_split == {"train": 800, "eval": 100, "test": 100}
    assert card.data.findings and "treated as missing" in card.data.findings[0]
    assert card.model.model_type == spec.model_type and card.model.training_params["epochs"] == spec.training_params.epochs
    assert [e.epoch for e in card.training.epochs] == [1, 2] and card.training.stopped_early
    assert card.baselines == {"most_popular": EVALUATION.baseline_metrics, "ease": EVALUATION.ease_metrics}
    assert card.gate.blessed and card.gate.decision == ("blessed: recall_at_100 0.6000; threshold 0.5; "
                                                        "+100.0% over most-popular; -7.7% over EASE")
    assert (card.lineage.run_id, card.lineage.schedule_id, card.lineage.pipeline_image) == (
        spec.run_id, "sched-1", "pipe@sha256:abc")
    assert (card.model_name, card.model_version, card.lineage.model_resource_name) == ("recs", "4", ENTRY.model_resource_name)
    again = model_card.ModelCard.model_validate_json(card.model_dump_json(by_alias=True))
    assert again == card  # what is stored reads back whole


def test_the_markdown_a_reviewer_reads():
    text = model_card.to_markdown(model_card.build(_spec(), ENTRY, EVALUATION, TRAINING, CHECK))
    assert text.startswith("# Model card: recs, version 4\n")
    assert "**Gate:** blessed: recall_at_100 0.6000" in text
    assert "- Rows per split: train 800, eval 100, test 100" in text
    assert "| recall_at_100 | 0.6000 | 0.6500 | 0.3000 |" in text  # model, then EASE and most-popular
    assert "| 2 | 0.5000 | — | 0.6000 |" in text  # the training curve
    assert "Best epoch: 2; stopped early: yes" in text


def test_a_card_without_an_evaluation_or_curve_says_so():
    card = model_card.build(_spec(), ENTRY.model_copy(update={"pushed_anyway": True}))
    assert card.gate.decision == "no evaluation was recorded" and not card.gate.blessed and card.gate.pushed_anyway
    text = model_card.to_markdown(card)
    assert "No epochs recorded." in text and "No test metrics recorded." in text and "not recorded" in text


def test_a_not_blessed_version_pushed_anyway_says_so():
    failing = EVALUATION.model_copy(update={"passed": False, "blessed": False, "actual_value": 0.4})
    card = model_card.build(_spec(), ENTRY.model_copy(update={"pushed_anyway": True}), failing)
    assert card.gate.decision.startswith("not blessed; registered anyway by hand: recall_at_100 0.4000")


def test_the_champion_is_beside_the_baselines_and_the_evaluators_verdict_is_the_decision():
    judged = EVALUATION.model_copy(update={
        "champion_metrics": {"recall_at_10": 0.22, "recall_at_100": 0.62}, "champion_version": "3",
        "champion_source": "registry default", "champion_value": 0.62, "champion_tolerance": 0.01,
        "champion_required_value": 0.6138, "passed": False, "blessed": False,
        "reason": "not blessed: recall_at_100 0.6 < champion 0.62 × 0.99"})
    card = model_card.build(_spec(), ENTRY, judged)
    assert card.baselines["champion v3"] == judged.champion_metrics
    assert card.gate.decision == ("not blessed: recall_at_100 0.6 < champion 0.62 × 0.99; +100.0% over most-popular; "
                                  "-7.7% over EASE; champion v3 (registry default) 0.62, required ≥ 0.6138 (× 0.99)")
    assert "| recall_at_100 | 0.6000 | 0.6200 | 0.6500 | 0.3000 |" in model_card.to_markdown(card)


def test_the_training_section_says_what_the_weights_started_from():
    from shared.domain.warm_start import WarmStartRecord

    warm = WarmStartRecord(status="loaded", source="champion", source_id="projects/p/models/9@3 (registry default)",
                           tables=2, rows_kept=340, rows_new=12, rows_dropped=1)
    trained = TRAINING.model_copy(update={"warm_start": "loaded", "warm_start_record": warm})
    text = model_card.to_markdown(model_card.build(_spec(), ENTRY, EVALUATION, trained, CHECK))
    assert ("warm start: loaded from champion projects/p/models/9@3 (registry default); 2 embedding table(s): "
            "340 rows kept, 12 new, 1 dropped") in text
