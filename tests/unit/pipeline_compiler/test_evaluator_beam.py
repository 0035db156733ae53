"""The Evaluator as a Beam job (issue 25, memory bounded by design): on the DirectRunner, in-process, it
gives evaluate_model's Evaluation; the component chooses it from the test split's estimated rows."""
import os

import pytest

tf = pytest.importorskip("tensorflow")
beam = pytest.importorskip("apache_beam")

from pipeline_compiler import evaluation as E  # noqa: E402
from pipeline_compiler import evaluation_beam  # noqa: E402
from tests.unit.pipeline_compiler.test_evaluator_streaming import _example, evaluation_inputs  # noqa: E402,F401
from tests.unit.pipeline_compiler.tiny_data import tiny_spec  # noqa: E402


@pytest.mark.parametrize("evaluator", [{}, {"min_lift_over_ease_percent": 0}, {"ease_max_items": 20}])
def test_the_beam_job_gives_the_in_process_evaluation(evaluation_inputs, monkeypatch, tmp_path, evaluator):  # noqa: F811
    root, dtypes, *_ = evaluation_inputs
    monkeypatch.setattr(E, "raw_dtypes", lambda transform_dir: dtypes)
    monkeypatch.setattr(E, "EVAL_BATCH_ROWS", 64)  # several batches, so partial Scores are merged
    spec = tiny_spec(str(root), evaluator_config={"enabled": True, **evaluator})
    in_process = E.evaluate_model(spec, str(root / "examples"), str(root / "model"), "unused")
    distributed = evaluation_beam.evaluate_model_beam(
        spec, str(root / "examples"), str(root / "model"), "unused", beam.Pipeline(runner="DirectRunner"),
        str(tmp_path / "work"))
    assert distributed.metrics["test_examples"] == 200
    assert distributed.metrics == pytest.approx(in_process.metrics)
    assert distributed.baseline_metrics == pytest.approx(in_process.baseline_metrics)
    assert distributed.ease_metrics == pytest.approx(in_process.ease_metrics)
    same = ("blessed", "passed", "ease_lambda", "ease_skipped_reason", "threshold_metric", "actual_value",
            "lift_percent", "lift_over_ease_percent")
    assert {f: getattr(distributed, f) for f in same} == pytest.approx({f: getattr(in_process, f) for f in same})
    assert os.listdir(tmp_path / "work") == []  # the merged scores are read back, then removed


def test_the_split_size_is_estimated_from_its_files(tmp_path):
    split = tmp_path / "Split-test"
    os.makedirs(split)
    for shard in range(2):
        with tf.io.TFRecordWriter(str(split / f"data-{shard}.gz"), options="GZIP") as writer:
            for i in range(6000):
                writer.write(_example({"customer_id": f"C{(i * 7919 + shard) % 900:04d}", "product_id": f"P{i % 313:05d}",
                                       "quantity": float(i % 5)}))
    estimate = evaluation_beam.estimated_rows(str(tmp_path))
    assert 12000 * 0.8 <= estimate <= 12000 * 1.2


def test_the_threshold_chooses_the_beam_job(tmp_path):
    split = tmp_path / "Split-test"
    os.makedirs(split)
    with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
        for i in range(500):
            writer.write(_example({"customer_id": f"C{i}", "product_id": f"P{i % 50}"}))
    spec = lambda threshold: tiny_spec(str(tmp_path), evaluator_config={"beam_min_test_rows": threshold})  # noqa: E731
    assert evaluation_beam.runs_as_beam(spec(400), str(tmp_path))
    assert not evaluation_beam.runs_as_beam(spec(600), str(tmp_path))
    assert not evaluation_beam.runs_as_beam(spec(None), str(tmp_path))


def test_the_evaluator_gets_the_pipelines_beam_args(tmp_path):
    """Compiled for Vertex, the Evaluator's task carries the data stages' Dataflow options, as ExampleGen's."""
    import json

    from pipeline_compiler import compile_run
    from tests.unit.pipeline_compiler.test_compile import VERTEX_ENV, _beam_args, _spec

    with open(compile_run(_spec(tmp_path), str(tmp_path / "job.json"), VERTEX_ENV)) as handle:
        job = json.load(handle)
    evaluator = " ".join(_beam_args(job, "Evaluator"))
    assert "--runner=DataflowRunner" in evaluator and f"--sdk_container_image={VERTEX_ENV.dataflow_image}" in evaluator
    assert "--labels=trainyard-run-id=run-1" in evaluator


def test_a_run_held_to_a_champion_is_scored_in_process():
    """The Beam job scores no champion: with one (or a lookup that failed, which the in-process path reports),
    the in-process Evaluator decides, so the champion gate holds at any size."""
    from pipeline_compiler import components

    spec = tiny_spec("/tmp/unused")

    def unreachable():
        raise RuntimeError("endpoint unreachable")

    assert components._has_champion(spec, lambda: object()) and components._has_champion(spec, unreachable)
    assert not components._has_champion(spec, lambda: None)
    off = spec.model_copy(update={"evaluator_config": spec.evaluator_config.model_copy(
        update={"compare_to_champion": False})})
    assert not components._has_champion(off, lambda: object())
