"""Model options of the TFRS towers and retrieval loss (issue 16), on tiny transformed demo data (CPU):
embedding-only towers, L2-normalised embeddings with a temperature, sampling-bias correction of
in-batch negatives, and the ranking task's mae."""
import os

import numpy as np
import pytest
from pydantic import ValidationError

tf = pytest.importorskip("tensorflow")

from pipeline_compiler.modules import features as F  # noqa: E402
from pipeline_compiler.modules import trainer  # noqa: E402
from shared import results as R  # noqa: E402
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


def test_embedding_only_towers_of_unequal_width_are_refused(tiny_transform):
    # The demo features: query side 32+8+4+4+6 = 54 wide, candidate side 32+8+8+1+4 = 53.
    with pytest.raises(ValidationError, match="query tower's embeddings have 54 dimensions and the candidate tower's 53"):
        _spec(tiny_transform, "unequal", model_config={"query_tower": [], "candidate_tower": []})
    # An embedding-only side against a dense side of the same width is fine.
    spec = _spec(tiny_transform, "mixed-towers", feature_config=IDS_ONLY,
                 model_config={"query_tower": [], "candidate_tower": [64, 32]})
    assert spec.model_config_.query_tower == []


def test_normalised_embeddings_have_unit_norm_and_the_temperature_reaches_the_loss(tiny_transform):
    spec = _spec(tiny_transform, "normalised", model_config={"normalize_embeddings": True, "temperature": 0.1})
    result = _train(tiny_transform, spec)
    batch = next(iter(trainer.make_dataset([tiny_transform.eval_pattern],
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
    table = trainer.item_probability_table([tiny_transform.train_pattern])
    raw = tiny_transform.raw
    train_items = raw["product_id"][: int(len(raw["product_id"]) * 0.8)]
    items, counts = np.unique(train_items, return_counts=True)
    looked_up = table.lookup(tf.constant(items)).numpy()
    np.testing.assert_allclose(looked_up, counts / counts.sum(), rtol=1e-6)
    assert table.lookup(tf.constant(["never-seen"])).numpy()[0] == pytest.approx(1 / counts.sum())
    dataset = trainer.make_dataset([tiny_transform.train_pattern], _transformed_spec(tiny_transform), 64,
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


def test_ranking_epochs_carry_rmse_and_mae(tiny_transform):
    result = _train(tiny_transform, _spec(tiny_transform, "ranking-mae", model_type="ranking"))
    for epoch in result.metrics.epochs:
        assert {"rmse", "mae", "val_rmse", "val_mae"} <= set(epoch.metrics)
        assert 0 <= epoch.metrics["mae"] <= epoch.metrics["rmse"] + 1e-6
    assert "mae" in result.metrics.final


def test_gradient_clipping_is_a_setting(tiny_transform):
    assert trainer.make_optimizer("adagrad", 0.1, False).clipnorm is None
    spec = _spec(tiny_transform, "clipped", epochs=1, gradient_clipnorm=5.0)
    assert _train(tiny_transform, spec).model.optimizer.clipnorm == 5.0
    assert os.path.exists(os.path.join(spec.artifacts_uri, R.TRAINING_METRICS_FILE))
