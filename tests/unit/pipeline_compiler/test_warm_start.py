"""Warm starts with the real trainer (issue 27 part 7): a retrain on grown data (the same customers and
products plus new ones, and more rows: new vocabularies in another order) starts from the source model
by id, and reaches the cold run's recall in fewer epochs. Tiny synthetic data, real Transform and trainer
(take /tmp/trainyard-tfx.lock when running it beside other TFX work)."""
from __future__ import annotations

import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from pipeline_compiler.champion import Champion  # noqa: E402
from pipeline_compiler.demo_data import generate_transactions  # noqa: E402
from pipeline_compiler.modules import trainer  # noqa: E402
from pipeline_compiler.modules import warm_weights  # noqa: E402
from tests.unit.pipeline_compiler.tiny_data import run_tiny_transform, tiny_spec  # noqa: E402

EPOCHS = 8
METRIC = "recall_at_10"  # 200 products: recall@100 is near 1 for every model
PARAMS = {"epochs": EPOCHS, "batch_size": 128, "learning_rate": 0.1, "lr_schedule": {"type": "constant"},
          "early_stopping": {"enabled": False}, "live_metrics_every_epochs": 1}


def _rows(data: dict, keep: np.ndarray) -> dict:
    return {name: values[keep] for name, values in data.items()}


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """The source's data (older rows; a seventh of the customers and a ninth of the products not yet
    seen) and the grown data (every row), each through the real preprocessing_fn."""
    full = generate_transactions(rows=4000, customers=150, products=200, months=3, seed=11)
    customer = np.array([int(c[1:]) for c in full["customer_id"]])
    product = np.array([int(p[1:]) for p in full["product_id"]])
    older = np.arange(len(customer)) < int(len(customer) * 0.75)
    source = run_tiny_transform(str(tmp_path_factory.mktemp("source")),
                                raw=_rows(full, older & (customer % 7 != 0) & (product % 9 != 0)))
    return source, run_tiny_transform(str(tmp_path_factory.mktemp("grown")), raw=full)


def _train(data, run_id, params, extra_callbacks=(), export=False, find_champion=None, **spec):
    built = tiny_spec(data.workdir, run_id=run_id, training_params=params, **spec)
    return trainer.train_and_export(built, [data.train_pattern], [data.eval_pattern], data.transform_output_dir,
                                    export=export, extra_callbacks=extra_callbacks, find_champion=find_champion)


def _epochs_to_reach(result, target: float) -> int:
    """The first epoch whose metric reaches `target` (a tolerance of a thousandth: the same sample)."""
    return next((e.epoch for e in result.metrics.epochs if e.metrics[METRIC] >= target - 1e-3), EPOCHS + 1)


class FirstWeights(tf.keras.callbacks.Callback):
    """The embedding tables as training starts (after the warm start, before the first step)."""

    def on_train_begin(self, logs=None):
        self.tables = {name: tower.embeddings[name].embeddings.numpy()
                       for tower in (self.model.query_tower, self.model.candidate_tower)
                       for name in ("customer_id", "product_id") if name in tower.embeddings}


def _vocabulary(data, name):
    import tensorflow_transform as tft

    return tft.TFTransformOutput(data.transform_output_dir).vocabulary_by_name(name)


def test_a_warm_retrain_from_the_champion_on_grown_data_keeps_rows_by_id_and_needs_fewer_epochs(grown):
    source_data, grown_data = grown
    source = _train(source_data, "source", PARAMS, export=True)
    source_model = os.path.join(source_data.workdir, "artifacts", "source", "model", "saved_model")
    champion = Champion(model="models/demo", version="1", artifact_uri=source_model, source="registry default")

    cold = _train(grown_data, "cold", PARAMS)
    first = FirstWeights()
    warm = _train(grown_data, "warm", {**PARAMS, "warm_restart": {"enabled": True, "source": "champion"}},
                  extra_callbacks=[first], find_champion=lambda: champion,
                  warm_source={"source": "champion"})

    record = warm.metrics.warm_start_record
    assert warm.metrics.warm_start == "loaded" and record.source == "champion", record
    assert record.source_id == "models/demo@1 (registry default)" and record.uri == source_model
    # the 5 vocabulary tables (customer, segment, product, category, subcategory) carried by id
    assert record.tables == 5 and record.rows_new > 0 and record.rows_kept > 0 and record.variables_fresh == 0

    source_weights = warm_weights.SourceWeights(source_model)
    for name, tower in (("customer_id", "query_tower"), ("product_id", "candidate_tower")):
        old_vocabulary, new_vocabulary = _vocabulary(source_data, name), _vocabulary(grown_data, name)
        assert set(old_vocabulary) < set(new_vocabulary) and old_vocabulary != new_vocabulary[:len(old_vocabulary)]
        old_table = source_weights.get(("model", tower, "embeddings", name, "embeddings"))
        new_index = {token: i for i, token in enumerate(new_vocabulary)}
        kept = [(i, new_index[token]) for i, token in enumerate(old_vocabulary)]
        np.testing.assert_array_equal(first.tables[name][[n for _, n in kept]], old_table[[o for o, _ in kept]])

    target = cold.metrics.epochs[-1].metrics[METRIC]
    cold_epochs, warm_epochs = _epochs_to_reach(cold, target), _epochs_to_reach(warm, target)
    print(f"{METRIC} cold {[round(e.metrics[METRIC], 3) for e in cold.metrics.epochs]}")
    print(f"{METRIC} warm {[round(e.metrics[METRIC], 3) for e in warm.metrics.epochs]}")
    assert warm_epochs < cold_epochs, (warm_epochs, cold_epochs)


def test_no_champion_yet_is_a_fresh_start_with_the_reason(grown):
    _, grown_data = grown
    fresh = _train(grown_data, "no-champion", {**PARAMS, "epochs": 1, "warm_restart": {"enabled": True,
                                                                                        "source": "champion"}},
                   find_champion=lambda: None, warm_source={"source": "champion"})
    assert fresh.metrics.warm_start == "fallback" and len(fresh.metrics.epochs) == 1
    assert "no champion yet" in fresh.metrics.warm_start_warning
    failing = warm_weights.resolve(tiny_spec(grown_data.workdir, warm_source={"source": "champion"}),
                         lambda: (_ for _ in ()).throw(RuntimeError("Vertex said no")))
    assert failing.status == "fallback" and "looking up the champion failed: RuntimeError: Vertex said no" in failing.reason


def test_the_trainer_is_told_where_to_find_the_champion_only_for_a_champion_warm_start(tmp_path):
    """The Trainer looks the champion up where the Evaluator and Pusher do: the pipeline's parameters."""
    from pipeline_compiler.environment import PipelineEnv
    from pipeline_compiler.pipeline import create_pipeline

    env = PipelineEnv(local_registry_dir=str(tmp_path / "registry"), local_endpoints_dir=str(tmp_path / "endpoints"))
    champion_spec = tiny_spec(str(tmp_path), warm_source={"source": "champion"},
                              training_params={"warm_restart": {"enabled": True, "source": "champion"}})
    config = create_pipeline(champion_spec, env).components[4].exec_properties["custom_config"]
    import json

    lookup = json.loads(config)[warm_weights.CHAMPION_LOOKUP_KEY] if isinstance(config, str) else \
        config[warm_weights.CHAMPION_LOOKUP_KEY]
    assert lookup == {"target": "local", "project": "", "region": env.region,
                      "registry_dir": str(tmp_path / "registry"), "endpoints_dir": str(tmp_path / "endpoints")}
    assert warm_weights.champion_finder(champion_spec, {warm_weights.CHAMPION_LOOKUP_KEY: lookup})() is None  # none yet
    plain = create_pipeline(tiny_spec(str(tmp_path)), env).components[4].exec_properties["custom_config"]
    assert warm_weights.CHAMPION_LOOKUP_KEY not in plain
    assert warm_weights.champion_finder(tiny_spec(str(tmp_path)), {"run_spec": "{}"}) is None


def _built(spec, sizes):
    """A model with its variables made, untrained (nothing here trains: no TFX lock needed)."""
    from pipeline_compiler.modules import features as F
    from pipeline_compiler.modules import model as M

    ids = {"vocabulary", "hashing", "cross", "bucketize"}
    batch = {k: tf.zeros([2], tf.int64) if f.transform.type in ids else tf.zeros([2])
             for f in spec.feature_config.features for k in F.output_keys(f)}
    return M.build(spec, sizes, tf.distribute.get_strategy(), lambda: batch)[0]


def test_a_saved_models_weights_load_by_path_and_its_rows_by_id(tmp_path):
    """The SavedModel layout the export writes (ServingModule.model; vocabulary assets by feature name):
    its checkpoint names variables by another path than training's, and the rows follow the ids."""
    from pipeline_compiler.modules.export import ServingModule
    from shared.domain.warm_start import WarmSource

    spec = tiny_spec(str(tmp_path))
    names = [f.name for f in spec.feature_config.features if f.transform.type == "vocabulary"]
    old = {name: [f"{name}-{i}".encode() for i in range(4)] for name in names}
    new = {**old, "customer_id": [b"customer_id-3", b"new-a", b"customer_id-0", b"new-b", b"customer_id-1"]}
    source = _built(spec, {n: len(v) for n, v in old.items()})
    saved = str(tmp_path / "saved_model")
    tf.saved_model.save(ServingModule(source, tf.keras.layers.Dense(1), {}), saved)
    for name, tokens in old.items():
        with open(os.path.join(saved, "assets", name), "wb") as handle:
            handle.write(b"".join(t + b"\n" for t in tokens))

    target = _built(spec, {n: len(v) for n, v in new.items()})
    fresh = target.query_tower.embeddings["customer_id"].embeddings.numpy()
    record = warm_weights.load(target, WarmSource(source="run", source_id="tr-0", uri=saved), new)
    assert (record.status, record.variables_fresh, record.tables) == ("loaded", 0, len(names)), record
    oov = spec.feature_config.features[0].transform.num_oov_buckets
    assert (record.rows_new, record.rows_dropped) == (2, 1)  # new-a, new-b fresh; customer_id-2 dropped
    table = target.query_tower.embeddings["customer_id"].embeddings.numpy()
    was = source.query_tower.embeddings["customer_id"].embeddings.numpy()
    np.testing.assert_array_equal(table[[0, 2, 4]], was[[3, 0, 1]])  # kept ids: the source's rows
    np.testing.assert_array_equal(table[[1, 3]], fresh[[1, 3]])  # new ids: their fresh rows
    np.testing.assert_array_equal(table[5:], was[4:4 + oov])  # the OOV buckets, same count: carried
    dense = target.query_tower.dense_layers[0].kernel.numpy()
    np.testing.assert_array_equal(dense, source.query_tower.dense_layers[0].kernel.numpy())

    nowhere = warm_weights.load(target, WarmSource(source="run", uri=str(tmp_path / "none")), new)
    assert nowhere.status == "fallback" and "no SavedModel at" in nowhere.reason
