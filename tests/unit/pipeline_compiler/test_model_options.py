"""Model options of the TFRS towers and retrieval loss (issue 16), on tiny transformed demo data (CPU):
embedding-only towers, L2-normalised embeddings with a temperature, sampling-bias correction of
in-batch negatives, and the ranking task's mae."""
import os

import numpy as np
import pytest
from pydantic import ValidationError

tf = pytest.importorskip("tensorflow")
tft = pytest.importorskip("tensorflow_transform")

from pipeline_compiler.modules import features as F  # noqa: E402
from pipeline_compiler.modules import data, trainer  # noqa: E402
from shared.contract import results as R  # noqa: E402
from tests.unit.pipeline_compiler.tiny_data import tiny_spec  # noqa: E402

IDS_ONLY = {
    "name": "ids-only",
    "features": [
        {"name": "customer_id", "column": "customer_id", "side": "query", "transform": {"type": "vocabulary", "embedding_dim": 32}},
        {"name": "product_id", "column": "product_id", "side": "candidate", "transform": {"type": "vocabulary", "embedding_dim": 32}},
    ],
}


def _spec(tiny, run_id, model_config=None, feature_config=None, model_type="retrieval", **training):
    spec = tiny_spec(tiny.workdir, model_type=model_type, run_id=run_id, training_params={"epochs": 2, **training})
    update = {}
    if feature_config is not None:
        update["feature_config"] = feature_config
    if model_config is not None:
        update["model_config"] = {**spec.model_config_.model_dump(), **model_config}
    if not update:
        return spec
    return type(spec).model_validate({**spec.model_dump(by_alias=True), **update})


def _train(tiny, spec, export=False):
    return trainer.train_and_export(spec, [tiny.train_pattern], [tiny.eval_pattern], tiny.transform_output_dir,
                                    export=export)


def test_embedding_only_towers_train_and_serve(tiny_transform):
    spec = _spec(tiny_transform, "embedding-only", feature_config=IDS_ONLY,
                 model_config={"query_tower": [], "candidate_tower": []})
    result = _train(tiny_transform, spec, export=True)
    model = result.model
    for tower in (model.query_tower, model.candidate_tower):
        assert tower.output_layer is None and tower.dense_layers == []
        assert [v.name for v in tower.trainable_variables] == [f"{tower.name}/{tower.embeddings[n].name}/embeddings:0"
                                                                for n in tower.embeddings]
    assert all(np.isfinite(e.loss) for e in result.metrics.epochs)
    raw = tiny_transform.raw
    query = tf.saved_model.load(result.artifacts.query_model).signatures["serving_default"]
    embedding = query(customer_id=tf.constant(raw["customer_id"][:3]))["embedding"].numpy()
    assert embedding.shape == (3, 32)
    serving = tf.saved_model.load(result.artifacts.saved_model).signatures["serving_default"]
    found = serving(customer_id=tf.constant(raw["customer_id"][:3]))
    assert found["ids"].shape == (3, 100)


def test_embedding_only_towers_of_unequal_width_meet_through_one_linear_projection(tiny_transform):
    # The demo features: query side 32+8+4+4+6 = 54 wide, candidate side 32+8+8+1+4 = 53.
    spec = _spec(tiny_transform, "unequal", model_config={"query_tower": [], "candidate_tower": []})
    result = _train(tiny_transform, spec, export=True)
    query_tower, candidate_tower = result.model.query_tower, result.model.candidate_tower
    projection = query_tower.output_layer  # the wider side only, no bias, no activation: still embedding-only
    assert projection.name == "projection" and projection.kernel.shape == (54, 53) and not projection.use_bias
    assert projection.get_config()["activation"] == "linear"
    assert candidate_tower.output_layer is None
    query = tf.saved_model.load(result.artifacts.query_model).signatures["serving_default"]
    assert query(**{c: tf.constant(tiny_transform.raw[c][:3]) for c in F.side_raw_columns(spec, "query")}
                 )["embedding"].shape == (3, 53)
    # A ranking model concatenates its towers for the head: no projection.
    ranking = _spec(tiny_transform, "unequal-ranking", model_type="ranking",
                    model_config={"query_tower": [], "candidate_tower": []})
    assert _train(tiny_transform, ranking).model.query_tower.output_layer is None
    # An embedding-only side beside a dense side must match its output width.
    with pytest.raises(ValidationError, match="query tower's embeddings have 54 dimensions and the candidate tower's 32"):
        _spec(tiny_transform, "mixed-unequal", model_config={"query_tower": [], "candidate_tower": [64, 32]})
    spec = _spec(tiny_transform, "mixed-towers", feature_config=IDS_ONLY,
                 model_config={"query_tower": [], "candidate_tower": [64, 32]})
    assert spec.model_config_.query_tower == []


def test_normalised_embeddings_have_unit_norm_and_the_temperature_reaches_the_loss(tiny_transform):
    spec = _spec(tiny_transform, "normalised", model_config={"normalize_embeddings": True, "temperature": 0.1})
    result = _train(tiny_transform, spec)
    batch = next(iter(data.make_dataset([tiny_transform.eval_pattern],
                                           _transformed_spec(tiny_transform), 16)))
    for tower in (result.model.query_tower, result.model.candidate_tower):
        norms = np.linalg.norm(tower(batch).numpy(), axis=1)
        np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    assert result.model.retrieval_task._temperature == pytest.approx(0.1)
    assert all(np.isfinite(e.loss) for e in result.metrics.epochs)


def _transformed_spec(tiny):
    import tensorflow_transform as tft

    return tft.TFTransformOutput(tiny.transform_output_dir).transformed_feature_spec()


def test_item_probabilities_are_the_training_shares(tiny_transform):
    table = data.item_probability_table([tiny_transform.train_pattern])
    raw = tiny_transform.raw
    train_items = raw["product_id"][: int(len(raw["product_id"]) * 0.8)]
    items, counts = np.unique(train_items, return_counts=True)
    looked_up = table.lookup(tf.constant(items)).numpy()
    np.testing.assert_allclose(looked_up, counts / counts.sum(), rtol=1e-6)
    assert table.lookup(tf.constant(["never-seen"])).numpy()[0] == pytest.approx(1 / counts.sum())
    dataset = data.make_dataset([tiny_transform.train_pattern], _transformed_spec(tiny_transform), 64,
                                   item_probabilities=table)
    batch = next(iter(dataset))
    assert batch[F.CANDIDATE_PROBABILITY_KEY].shape == batch[F.ITEM_ID_KEY].shape


def test_sampling_bias_correction_changes_the_loss(tiny_transform):
    """Same data, same seed: with the logQ correction the in-batch softmax loss differs (and stays finite)."""
    losses = {}
    for corrected in (False, True):
        tf.keras.utils.set_random_seed(5)
        spec = _spec(tiny_transform, f"sbc-{corrected}", epochs=1,
                     model_config={"sampling_bias_correction": corrected})
        losses[corrected] = _train(tiny_transform, spec).metrics.epochs[0].loss
    assert np.isfinite(losses[True]) and losses[True] != pytest.approx(losses[False], rel=1e-3)


@pytest.fixture(scope="module")
def ranking_run(tiny_transform):
    """The demo ranking model trained two epochs, once: both ranking-metric tests only read its epochs."""
    return _train(tiny_transform, _spec(tiny_transform, "ranking-mae", model_type="ranking"))


def test_ranking_epochs_carry_rmse_and_mae(ranking_run):
    result = ranking_run
    for epoch in result.metrics.epochs:
        assert {"rmse", "mae", "val_rmse", "val_mae"} <= set(epoch.metrics)
        assert 0 <= epoch.metrics["mae"] <= epoch.metrics["rmse"] + 1e-6
    assert "mae" in result.metrics.final


def test_gradient_clipping_is_a_setting(tiny_transform):
    default = tiny_spec(tiny_transform.workdir)  # "auto": the demo's dense towers are clipped at 1.0
    assert default.training_params.gradient_clipnorm == "auto"
    assert _train(tiny_transform, _spec(tiny_transform, "auto-clipped", epochs=1)).model.optimizer.clipnorm == 1.0
    spec = _spec(tiny_transform, "auto-embedding-only", epochs=1, feature_config=IDS_ONLY,
                 model_config={"query_tower": [], "candidate_tower": []})
    assert _train(tiny_transform, spec).model.optimizer.clipnorm is None  # "auto": an embedding-only model is not
    spec = _spec(tiny_transform, "unclipped", epochs=1, gradient_clipnorm=None)
    assert _train(tiny_transform, spec).model.optimizer.clipnorm is None
    spec = _spec(tiny_transform, "clipped", epochs=1, gradient_clipnorm=5.0)
    assert _train(tiny_transform, spec).model.optimizer.clipnorm == 5.0
    assert os.path.exists(os.path.join(spec.artifacts_uri, R.TRAINING_METRICS_FILE))


# --------------------------------------------------------------------------- live gate metric


def test_exact_recall_counts_rows_whose_item_is_in_their_top_k():
    from pipeline_compiler.modules.live_metrics import exact_recall

    candidates = tf.constant(np.eye(4, dtype=np.float32))  # candidate r scores 1 only for a query along r
    queries = tf.constant([[1, 0, 0, 0], [0, 0.9, 0.8, 0], [0, 0, 0, 1]], dtype=np.float32)
    # row 0 -> candidate 0 is top-1; row 1 -> candidate 2 is 2nd; row 2 -> item unknown to the candidates
    recall = exact_recall(queries, candidates, np.array([0, 2, -1]), ks=(1, 2, 4))
    assert recall == {"recall_at_1": pytest.approx(1 / 3), "recall_at_2": pytest.approx(2 / 3),
                      "recall_at_4": pytest.approx(2 / 3)}


def test_retrieval_epochs_publish_recall_every_n_epochs_and_at_the_last(tiny_transform):
    spec = _spec(tiny_transform, "live-recall", epochs=3, live_metrics_every_epochs=2)
    result = trainer.train_and_export(spec, [tiny_transform.train_pattern], [tiny_transform.eval_pattern],
                                      tiny_transform.transform_output_dir, export=False)
    published = [e.metrics for e in result.metrics.epochs]
    assert "recall_at_100" not in published[0]
    for metrics in published[1:]:
        assert {"recall_at_5", "recall_at_10", "recall_at_50", "recall_at_100"} <= set(metrics)
        assert 0 <= metrics["recall_at_10"] <= metrics["recall_at_100"] <= 1
    # The last epoch's figure is exact top-100 of the final model over every distinct item, recomputed here.
    feature_spec = _transformed_spec(tiny_transform)
    query_keys = [k for f in spec.feature_config.features if f.side == "query" for k in F.output_keys(f)]
    candidate_keys = [k for f in spec.feature_config.features if f.side == "candidate" for k in F.output_keys(f)]
    candidates = data.unique_candidates([tiny_transform.train_pattern, tiny_transform.eval_pattern],
                                           feature_spec, candidate_keys)
    sample = next(iter(data.make_dataset([tiny_transform.eval_pattern], feature_spec, 1000)))
    scores = (result.model.query_tower(sample).numpy()
              @ result.model.candidate_tower({k: tf.constant(candidates[k]) for k in candidate_keys}).numpy().T)
    top = np.argsort(-scores, axis=1)[:, :100]
    found = np.any(candidates[F.ITEM_ID_KEY][top] == sample[F.ITEM_ID_KEY].numpy()[:, None], axis=1)
    assert published[-1]["recall_at_100"] == pytest.approx(found.mean(), abs=2e-3)  # ties may order apart
    assert result.metrics.final.get("recall_at_100") is not None


def test_ranking_epochs_publish_the_gate_metric_under_its_own_name(ranking_run):
    assert ranking_run.metrics.epochs
    for epoch in ranking_run.metrics.epochs:
        metrics = epoch.metrics
        assert metrics["test_rmse"] == metrics["val_rmse"] and metrics["test_mae"] == metrics["val_mae"]


def test_early_stopping_and_plateau_can_watch_the_gate_metric(tiny_transform, monkeypatch):
    seen = {}
    for name in ("EarlyStopping", "ReduceLROnPlateau"):
        original = getattr(tf.keras.callbacks, name)

        class Watching(original):
            def on_epoch_end(self, epoch, logs=None, _name=name):
                seen.setdefault(_name, []).append((self.monitor, (logs or {}).get(self.monitor)))
                return super().on_epoch_end(epoch, logs)

        monkeypatch.setattr(tf.keras.callbacks, name, Watching)
    spec = _spec(tiny_transform, "watch-gate", epochs=2,
                 early_stopping={"enabled": True, "patience": 5, "monitor": "gate_metric"},
                 lr_schedule={"type": "reduce_on_plateau", "patience": 5, "monitor": "gate_metric"})
    _train(tiny_transform, spec)
    for name in ("EarlyStopping", "ReduceLROnPlateau"):
        assert [m for m, _ in seen[name]] == ["recall_at_100"] * 2
        assert all(value is not None for _, value in seen[name])


def test_a_multitask_model_trains_both_tasks_by_their_weights_and_serves_both(tiny_transform):
    """The kind's two tasks (shared/domain/model_kinds.py): the loss is the sum of both, each scaled by the
    model config's multitask_weights (a single-task kind ignores them); the retrieval signature is the
    default one and the pair-scoring one is "rank"."""
    both = _spec(tiny_transform, "multitask", model_type="multitask", epochs=1)
    result = _train(tiny_transform, both, export=True)
    assert {"rmse", "mae", "test_rmse", "recall_at_100"} <= set(result.metrics.epochs[0].metrics)
    loaded = tf.saved_model.load(result.artifacts.saved_model)
    assert set(loaded.signatures) == {"serving_default", "rank"}
    raw = tiny_transform.raw
    for name, output in (("rank", "score"), ("serving_default", "ids")):
        signature = loaded.signatures[name]
        inputs = {column: tf.constant(raw[column][:3], dtype=spec.dtype)
                  for column, spec in signature.structured_input_signature[1].items()}
        assert signature(**inputs)[output].shape[0] == 3

    batch = next(iter(data.make_dataset([tiny_transform.eval_pattern], _transformed_spec(tiny_transform), 64,
                                        keep=data.model_inputs(both, False))))
    trained, losses = result.model, {}
    for weights in ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)):
        trained.retrieval_weight, trained.ranking_weight = weights
        losses[weights] = float(trained.compute_loss(batch))
    assert losses[(1.0, 0.0)] > 0 and losses[(0.0, 1.0)] > 0
    assert losses[(1.0, 1.0)] == pytest.approx(losses[(1.0, 0.0)] + losses[(0.0, 1.0)], rel=1e-5)

    from pipeline_compiler.modules.model import RecommenderModel

    output = tft.TFTransformOutput(tiny_transform.transform_output_dir)
    sizes = {f.name: output.vocabulary_size_by_name(f.name) for f in both.feature_config.features
             if f.transform.type == "vocabulary"}
    weights = {"multitask_weights": {"retrieval": 0.5, "ranking": 0.25}}
    weighted = RecommenderModel(_spec(tiny_transform, "w", model_config=weights, model_type="multitask"), sizes)
    assert (weighted.retrieval_weight, weighted.ranking_weight) == (0.5, 0.25)
    single = RecommenderModel(_spec(tiny_transform, "w1", model_config=weights, model_type="ranking"), sizes)
    assert (single.retrieval_weight, single.ranking_weight) == (1.0, 1.0)
    assert not hasattr(single, "retrieval_task") and hasattr(single, "ranking_head")
