"""The retrieval index sized from the candidate count (issue 25: ScaNN sized for millions of candidates):
ScaNN's own exact scan below 20k, else √n leaves with a k-means/AH training sample that grows with them."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("scann")

from pipeline_compiler.modules import export  # noqa: E402
from shared.domain.run_config import RetrievalIndex  # noqa: E402


def test_the_plan_follows_the_candidate_count():
    auto = RetrievalIndex()
    assert export.index_plan(19_999, 100, auto) == {"search": "brute_force"}
    at_20k = export.index_plan(20_000, 100, auto)
    assert at_20k["search"] == "partitioned" and at_20k["num_leaves"] == 141
    assert at_20k["training_sample_size"] == 20_000  # never more than the candidates
    assert export.index_plan(1_000_000, 100, auto)["training_sample_size"] == 100_000  # ScaNN's default
    five_million = export.index_plan(5_000_000, 100, auto)
    assert five_million["num_leaves"] == 2236 and five_million["training_sample_size"] == 223_600  # 100 a leaf
    assert five_million["num_leaves_to_search"] == 224
    assert export.index_plan(100_000_000, 100, auto)["training_sample_size"] == 1_000_000
    # Leaves the run asks for are kept, even on a small catalog.
    fixed = export.index_plan(1_000, 10, RetrievalIndex(num_leaves=20, num_leaves_to_search=4))
    assert fixed["search"] == "partitioned" and (fixed["num_leaves"], fixed["num_leaves_to_search"]) == (20, 4)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


@pytest.mark.parametrize("count", [3_000, 30_000])
def test_the_built_index_finds_the_exact_neighbours(count, tmp_path):
    rng = np.random.default_rng(count)
    candidates = rng.normal(size=(count, 16)).astype(np.float32)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    truth = np.argsort(-(queries @ candidates.T), axis=1)[:, :10]
    index = export.build_index(candidates, np.arange(count).astype(str), RetrievalIndex(), k=10)
    module = tf.Module()
    module.index = index
    module.search = tf.function(lambda q: module.index(q), input_signature=[tf.TensorSpec([None, 16], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "m"), options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]))
    loaded = tf.saved_model.load(str(tmp_path / "m"))  # kept: its variables die with it
    _, ids = loaded.search(tf.constant(queries))
    found = ids.numpy().astype(int)
    if count < export.SCANN_BRUTE_FORCE_BELOW:
        assert _recall(found, truth) == 1.0  # ScaNN's exact scan
    else:
        assert _recall(found, truth) >= 0.95


def test_the_evaluator_loads_the_index_in_a_fresh_process(tmp_path):
    """The Evaluator runs in its own task (Vertex) or process (bench): importing it registers ScaNN's ops."""
    import subprocess
    import sys

    index = export.build_index(np.eye(16, dtype=np.float32), np.arange(16).astype(str), RetrievalIndex(), k=4)
    module = tf.Module()
    module.index = index
    module.search = tf.function(lambda q: module.index(q), input_signature=[tf.TensorSpec([None, 16], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "m"), options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]))
    code = ("import sys; import tensorflow as tf; from pipeline_compiler import evaluation; "
            "loaded = tf.saved_model.load(sys.argv[1]); print(loaded.search(tf.eye(16)[:1])[1].numpy()[0][0])")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "b'0'"
