"""What the Trainer exports under RunSpec.artifacts_uri (spec §2.2): the serving SavedModel (a
retrieving kind: raw query features -> top-K candidate ids + scores from a ScaNN or brute-force index;
a ranking kind: raw query + candidate features -> score; multitask has both), the query and candidate
tower models, and copies of the Transform graph and its vocabularies.
"""
from __future__ import annotations

import math
import uuid
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tensorflow_transform as tft

from pipeline_compiler.modules import features as F
from pipeline_compiler.modules.data import copy_tree
from pipeline_compiler.modules.model import RecommenderModel
from shared.contract import results
from shared.domain import model_kinds
from shared.domain.run_config import RunSpec

TOP_K = 100  # the index returns this many candidates (recall@100 is the widest gate metric)


SCANN_AUTO_SEARCHED_CANDIDATES = 100_000  # "auto" leaves to search cover at least this many candidates


def scann_parameters(num_candidates: int, k: int, index_config: Any) -> dict[str, int]:
    """ScaNN tree/quantization/reordering sizes for the TFRS ScaNN layer's constructor.

    "auto": about √n leaves; searched: 10% of them, and at least enough leaves to cover ~100k
    candidates (all of them below 100k; at 200k clustered vectors 10% of the leaves gave recall@100
    0.91, a third of them 0.995), never fewer than min(leaves, 8). Explicit num_leaves /
    num_leaves_to_search from the run spec are used as given. Always: asymmetric hashing with one
    dimension per block (4-bit code per dimension; with 2 per block the quantization error capped
    recall@100 near 0.955 whatever the leaves searched) and exact re-scoring of max(10k, 250)
    candidates.

    Chosen with bench/ml.py (1M × 32 clustered vectors, k = 100: recall@100 ≈ 0.996–0.999 vs exact
    search; see docs/pipeline.md "Measured on this machine").
    """
    leaves = index_config.num_leaves
    if leaves == "auto":
        leaves = max(1, int(round(math.sqrt(num_candidates))))
    leaves = min(leaves, num_candidates)
    to_search = index_config.num_leaves_to_search
    if to_search == "auto":
        covering = int(math.ceil(leaves * min(1.0, SCANN_AUTO_SEARCHED_CANDIDATES / num_candidates)))
        to_search = max(min(leaves, 8), int(math.ceil(leaves * 0.10)), covering)
    to_search = min(to_search, leaves)
    return {"num_leaves": leaves, "num_leaves_to_search": to_search, "dimensions_per_block": 1,
            "num_reordering_candidates": min(num_candidates, max(10 * k, 250))}


# ScaNN's rules of thumb (google-research scann/docs/algorithms.md, "Rules-of-thumb"): fewer than 20k
# points, brute force; num_leaves about sqrt(n). The partitioner's k-means trains on a sample
# (ScannBuilder.tree / score_ah: training_sample_size, default 100,000), which at millions of candidates
# leaves too few points per leaf: faiss's k-means asks 39-256 points per centroid (Clustering.cpp,
# min/max_points_per_centroid), so the sample grows as SCANN_SAMPLE_PER_LEAF x leaves.
SCANN_BRUTE_FORCE_BELOW = 20_000
SCANN_DEFAULT_SAMPLE = 100_000
SCANN_SAMPLE_PER_LEAF = 100


def index_plan(num_candidates: int, k: int, index_config: Any) -> dict[str, Any]:
    """How the index over num_candidates is built: "brute_force" (exact: ScaNN's own scan) below
    SCANN_BRUTE_FORCE_BELOW with "auto" leaves, else "partitioned" (scann_parameters' tree, AH and
    re-scoring) with the k-means and AH training sample sized from the leaves."""
    auto = index_config.num_leaves == "auto" and index_config.num_leaves_to_search == "auto"
    if auto and num_candidates < SCANN_BRUTE_FORCE_BELOW:
        return {"search": "brute_force"}
    params = scann_parameters(num_candidates, k, index_config)
    sample = min(num_candidates, max(SCANN_DEFAULT_SAMPLE, SCANN_SAMPLE_PER_LEAF * params["num_leaves"]))
    return {"search": "partitioned", "training_sample_size": sample, **params}


def _scann_searcher(candidates: tf.Tensor, k: int, plan: dict[str, Any], name: str):
    from scann import scann_ops

    builder = scann_ops.builder(db=candidates, num_neighbors=k, distance_measure="dot_product")
    if plan["search"] == "brute_force":
        builder = builder.score_brute_force()
    else:
        builder = builder.tree(num_leaves=plan["num_leaves"], num_leaves_to_search=plan["num_leaves_to_search"],
                               training_sample_size=plan["training_sample_size"])
        builder = builder.score_ah(plan["dimensions_per_block"], training_sample_size=plan["training_sample_size"])
        builder = builder.reorder(plan["num_reordering_candidates"])
    return builder.build(shared_name=f"{name}/{uuid.uuid4()}")  # unique, as TFRS names its searchers


class SizedScaNN(tfrs.layers.factorized_top_k.ScaNN):
    """TFRS's ScaNN layer (search, SavedModel export) with the searcher index_plan sizes: TFRS's own
    always partitions and keeps ScaNN's default 100k training sample."""

    def __init__(self, k: int, plan: dict[str, Any]):
        super().__init__(k=k)
        self._build_searcher = lambda candidates: _scann_searcher(candidates, k, plan, self.name)


def build_index(candidate_embeddings: np.ndarray, identifiers: np.ndarray, index_config: Any, k: int = TOP_K):
    """The retrieval layer over all candidates: ScaNN (sized by index_plan) or BruteForce (exact)."""
    count = len(identifiers)
    k = min(k, count)
    embeddings = tf.constant(candidate_embeddings, tf.float32)
    ids = tf.constant(identifiers)
    if index_config.type == "scann" and count >= 16:
        index = SizedScaNN(k, index_plan(count, k, index_config))
    else:
        index = tfrs.layers.factorized_top_k.BruteForce(k=k)
    index.index(embeddings, ids)
    return index


def _raw_input(value: tf.Tensor, raw_spec: Any) -> Any:
    """A rank-1 serving input -> the shape the Transform graph was traced with."""
    if isinstance(raw_spec, tf.io.VarLenFeature):
        rows = tf.shape(value, out_type=tf.int64)[0]
        indices = tf.stack([tf.range(rows), tf.zeros([rows], tf.int64)], axis=1)
        return tf.SparseTensor(indices, value, tf.stack([rows, 1]))
    if isinstance(raw_spec, tf.io.FixedLenFeature) and list(raw_spec.shape) == [1]:
        return tf.expand_dims(value, -1)
    return value


class ServingModule(tf.Module):
    """The exported objects; `model` keeps the same checkpoint path as training (warm restart reads it)."""

    def __init__(self, model: RecommenderModel, tft_layer: tf.keras.layers.Layer, raw_feature_spec: dict[str, Any],
                 index: Optional[tf.keras.layers.Layer] = None) -> None:
        super().__init__()
        self.model = model
        self.tft_layer = tft_layer
        self.index = index
        self._raw_feature_spec = raw_feature_spec

    def transform(self, raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self.tft_layer({k: _raw_input(v, self._raw_feature_spec[k]) for k, v in raw.items()})


def _input_signature(columns: Sequence[str], raw_feature_spec: dict[str, Any]) -> dict[str, tf.TensorSpec]:
    return {c: tf.TensorSpec([None], raw_feature_spec[c].dtype, name=c) for c in columns}


def export_models(model: RecommenderModel, spec: RunSpec, tf_transform_output: tft.TFTransformOutput,
                  candidates: Optional[dict[str, np.ndarray]], export_dir: str) -> dict[str, str]:
    """Write serving, query and candidate SavedModels under export_dir (= artifacts_uri)."""
    raw_spec = tf_transform_output.raw_feature_spec()
    query_columns = F.side_raw_columns(spec, "query")
    candidate_columns = F.side_raw_columns(spec, "candidate")
    tft_layer = tf_transform_output.transform_features_layer()
    paths = {
        "saved_model": results.join(export_dir, results.SAVED_MODEL_DIR),
        "query_model": results.join(export_dir, results.QUERY_MODEL_DIR),
        "candidate_model": results.join(export_dir, results.CANDIDATE_MODEL_DIR),
    }

    query_module = ServingModule(model, tft_layer, raw_spec)
    query_fn = tf.function(lambda raw: {"embedding": model.query_tower(query_module.transform(raw))})
    tf.saved_model.save(query_module, paths["query_model"], signatures={
        "serving_default": query_fn.get_concrete_function(_input_signature(query_columns, raw_spec))})

    candidate_module = ServingModule(model, tft_layer, raw_spec)
    candidate_fn = tf.function(lambda raw: {"embedding": model.candidate_tower(candidate_module.transform(raw))})
    tf.saved_model.save(candidate_module, paths["candidate_model"], signatures={
        "serving_default": candidate_fn.get_concrete_function(_input_signature(candidate_columns, raw_spec))})

    kind = model_kinds.kind(spec.model_type)
    signatures = {}
    index = None
    if kind.retrieves:
        candidate_keys = [k for f in spec.feature_config.features if f.side == "candidate" for k in F.output_keys(f)]
        embeddings = np.concatenate([
            model.candidate_tower({k: tf.constant(candidates[k][i:i + 8192]) for k in candidate_keys}).numpy()
            for i in range(0, len(candidates[F.ITEM_ID_KEY]), 8192)
        ])
        index = build_index(embeddings, candidates[F.ITEM_ID_KEY], spec.training_params.retrieval_index)
    serving = ServingModule(model, tft_layer, raw_spec, index)
    if index is not None:
        def retrieve(raw):
            scores, ids = serving.index(model.query_tower(serving.transform(raw)))
            return {"ids": ids, "scores": scores}
        signatures["serving_default"] = tf.function(retrieve).get_concrete_function(_input_signature(query_columns, raw_spec))
    if kind.ranks:
        def rank(raw):
            transformed = serving.transform(raw)
            return {"score": model.score(model.query_tower(transformed), model.candidate_tower(transformed))}
        both = list(dict.fromkeys(query_columns + candidate_columns))
        signatures[kind.rank_signature] = tf.function(rank).get_concrete_function(_input_signature(both, raw_spec))
    tf.saved_model.save(serving, paths["saved_model"], signatures=signatures,
                        options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]))
    return paths


def export_run(model: RecommenderModel, spec: RunSpec, tf_transform_output: tft.TFTransformOutput,
               candidates: Optional[dict[str, np.ndarray]], output_dir: str, transform_output_dir: str,
               serving_model_dir: Optional[str], is_chief: bool) -> dict[str, str]:
    """The models, the Transform graph and its vocabularies under output_dir, and the serving model in
    TFX's serving_model_dir (the chief's); returns the ArtifactLocations fields they fill."""
    paths = export_models(model, spec, tf_transform_output, candidates, output_dir)
    transform_copy = results.join(output_dir, results.TRANSFORM_DIR)
    copy_tree(transform_output_dir, transform_copy)
    vocabularies = results.join(output_dir, results.VOCABULARIES_DIR)
    assets = results.join(transform_output_dir, "transform_fn/assets")
    if tf.io.gfile.exists(assets):
        copy_tree(assets, vocabularies)
    if serving_model_dir and is_chief:
        copy_tree(paths["saved_model"], serving_model_dir)
    return dict(saved_model=paths["saved_model"], query_model=paths["query_model"],
                candidate_model=paths["candidate_model"], transform_graph=transform_copy, vocabularies=vocabularies)
