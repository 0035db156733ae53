"""The Evaluator as a Beam job, for test splits above evaluator_config.beam_min_test_rows: the run's
beam_pipeline_args decide where it runs (DirectRunner locally, Dataflow in the cloud, as ExampleGen's).

The launcher makes the one streaming train pass (most-popular, EASE: evaluation.fit_train_baselines)
and ships the result to the workers; each worker loads the serving SavedModel once (DoFn.setup) and
scores batches of the test split (ReadFromTFRecord -> BatchElements -> evaluation.BatchScorer); the
partial `Scores` combine (Scores.merge) into one, which the launcher reads back and gates on
(evaluation.decide_blessing), so the figures are evaluate_model's.
"""
# No `from __future__ import annotations`: kept like evaluation.py.

import os
import pickle
import tempfile
import uuid
from typing import Optional

import apache_beam as beam
import tensorflow as tf

from pipeline_compiler import evaluation as E
from shared.contract import results
from shared.domain.run_config import RunSpec

SIZE_SAMPLE_RECORDS = 2000  # records whose gzip size estimates the split's rows


def estimated_rows(examples_uri: str, split: str = "test") -> int:
    """Rows of a split, estimated from its files' total size over the gzip size of a sample of its records
    (ExampleGen records no counts, and the Evaluator has no statistics input): reads at most the sample."""
    files = tf.io.gfile.glob(results.join(examples_uri, f"Split-{split}/*"))
    total = sum(tf.io.gfile.stat(f).length for f in files)
    if not total:
        return 0
    sample = [r.numpy() for r in tf.data.TFRecordDataset(files[:1], compression_type="GZIP").take(SIZE_SAMPLE_RECORDS)]
    if not sample:
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "sample.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for record in sample:
                writer.write(record)
        sample_bytes = os.path.getsize(path)
    return int(round(total * len(sample) / max(sample_bytes, 1)))


def runs_as_beam(spec: RunSpec, examples_uri: str) -> bool:
    threshold = spec.evaluator_config.beam_min_test_rows
    return threshold is not None and estimated_rows(examples_uri) >= threshold


class ScoreBatches(beam.DoFn):
    """Scores lists of serialized test examples with the serving model, loaded once per worker."""

    def __init__(self, run_spec: str, serving_model_dir: str, baselines: E.TrainBaselines,
                 dtypes: dict[str, str]):
        self._run_spec, self._model_dir, self._baselines, self._dtypes = run_spec, serving_model_dir, baselines, dtypes
        self._scorer: Optional[E.BatchScorer] = None

    def setup(self):
        spec = RunSpec.model_validate_json(self._run_spec)
        self._scorer = E.BatchScorer(spec, tf.saved_model.load(self._model_dir), self._baselines)
        self._columns = {name: tf.as_dtype(dtype) for name, dtype in self._dtypes.items()}

    def process(self, records):
        yield self._scorer.score(E.parse_records(list(records), self._columns))


class MergeScores(beam.CombineFn):
    """(model, most-popular, EASE Scores, rows) from workers, summed (Scores.merge)."""

    def create_accumulator(self):
        return E.Scores(), E.Scores(), E.Scores(), 0

    def add_input(self, accumulator, element):
        return self.merge_accumulators([accumulator, element])

    def merge_accumulators(self, accumulators):
        model, popular, ease, count = self.create_accumulator()
        for m, p, e, c in accumulators:
            model, popular, ease, count = model.merge(m), popular.merge(p), ease.merge(e), count + c
        return model, popular, ease, count

    def extract_output(self, accumulator):
        return accumulator


def _write(path: str, value) -> None:
    with tf.io.gfile.GFile(path, "wb") as out:
        out.write(pickle.dumps(value))


def evaluate_model_beam(spec: RunSpec, examples_uri: str, serving_model_dir: str, transform_dir: str,
                        pipeline: beam.Pipeline, work_dir: str) -> results.Evaluation:
    """evaluate_model's Evaluation, with the test split scored by a Beam job; work_dir (local or gs://,
    readable by the workers) receives the merged scores."""
    dtypes = E.raw_dtypes(transform_dir)
    baselines = E.fit_train_baselines(spec, examples_uri, dtypes)
    columns = {c: dtypes[c].name for c in E.scored_columns(spec, baselines)}
    tf.io.gfile.makedirs(work_dir)
    scores_path = results.join(work_dir, f"scores-{uuid.uuid4().hex}.pickle")
    with pipeline as p:
        _ = (p
             | "ReadTest" >> beam.io.ReadFromTFRecord(results.join(examples_uri, "Split-test/*"),
                                                      coder=beam.coders.BytesCoder(),
                                                      compression_type=beam.io.filesystem.CompressionTypes.GZIP)
             | "Batch" >> beam.BatchElements(min_batch_size=64, max_batch_size=E.EVAL_BATCH_ROWS)
             | "Score" >> beam.ParDo(ScoreBatches(spec.to_json(), serving_model_dir, baselines, columns))
             | "Merge" >> beam.CombineGlobally(MergeScores())
             | "Write" >> beam.Map(lambda merged: _write(scores_path, merged)))
    with tf.io.gfile.GFile(scores_path, "rb") as source:
        model, popular, ease, count = pickle.loads(source.read())
    tf.io.gfile.remove(scores_path)
    return E.evaluation_from_scores(spec, baselines, model, popular, ease, int(count))

