"""The Evaluator's baselines (issue 25): EASE's closed form against hand-computed and ridge solutions,
the train pass that keeps EASE's pairs only while the catalog fits, and EASE's λ chosen on validation."""
import numpy as np
import pytest

pytest.importorskip("scipy")

from pipeline_compiler.baselines import (  # noqa: E402
    LAMBDA_FACTORS, SEED, VALIDATION_SHARE, Ease, TrainInteractions, _held_out, ease_weights, fit_ease, gram)


def test_ease_on_two_items_is_the_hand_computed_solution():
    # X = [[1,1],[1,0],[0,1]] -> G = [[2,1],[1,2]]; λ = 1: P = (G + I)⁻¹ = [[3,-1],[-1,3]] / 8,
    # B_12 = -P_12 / P_22 = (1/8) / (3/8) = 1/3, and the same by symmetry; the diagonal is 0.
    weights = ease_weights(np.array([[2.0, 1.0], [1.0, 2.0]]), lam=1.0)
    assert weights == pytest.approx(np.array([[0.0, 1 / 3], [1 / 3, 0.0]]), abs=1e-6)


def test_each_column_is_the_ridge_regression_of_that_item_on_the_others():
    x = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]], dtype=np.float64)
    lam = 0.5
    weights = ease_weights(x.T @ x, lam)
    for j in range(3):
        others = [i for i in range(3) if i != j]
        a = x[:, others]
        expected = np.linalg.solve(a.T @ a + lam * np.eye(2), a.T @ x[:, j])  # argmin |x_j - A b|² + λ|b|²
        assert weights[others, j] == pytest.approx(expected, abs=1e-5)
        assert weights[j, j] == 0.0


def test_the_train_pass_counts_items_and_drops_pairs_when_the_catalog_is_too_big():
    train = TrainInteractions(max_items=3)
    train.add(["u1", "u2", "u1"], ["a", "b", "a"])
    assert train.most_popular(2) == ["a", "b"] and train.keeps_pairs
    users, items = train.pairs()
    assert users.tolist() == [0, 1, 0] and items.tolist() == [0, 1, 0]
    train.add(["u3", "u3"], ["c", "d"])  # four items > 3
    assert not train.keeps_pairs and train.pairs()[0].size == 0
    assert train.most_popular(1) == ["a"] and train.rows == 5  # counting goes on
    ease, reason = fit_ease(train, gate_k=10)
    assert ease is None and "more than 3 items" in reason
    assert fit_ease(TrainInteractions(max_items=0), 10)[1].startswith("EASE is turned off")


def _planted(users=300, seed=3):
    """Items come in pairs (0,1), (2,3), ...: who bought one of a pair bought the other; item 0 is the
    most popular alone."""
    rng = np.random.default_rng(seed)
    rows_u, rows_i = [], []
    for u in range(users):
        pair = rng.integers(0, 10)
        rows_u += [f"u{u}", f"u{u}", f"u{u}"]
        rows_i += [f"i{2 * pair}", f"i{2 * pair + 1}", "i0"]
    return rows_u, rows_i


def test_ease_learns_the_planted_pairs_and_beats_popularity():
    users, items = _planted()
    train = TrainInteractions(max_items=100)
    users, items = users + ["probe"], items + ["i6"]
    for start in range(0, len(users), 64):  # streamed in batches, as the Evaluator does
        train.add(users[start:start + 64], items[start:start + 64])
    ease = Ease(train, gate_k=1)
    assert set(ease.validation_recall) and ease.lam in ease.validation_recall
    # A user who bought only i6 is shown i7 first; an unknown user gets the most popular item.
    ranks = ease.ranks(["probe", "probe", "stranger"], ["i7", "i0", "i0"])
    assert ranks[0] == 0 and ranks[1] > 0 and ranks[2] == 0
    assert ease.ranks(["u1"], ["never-seen"])[0] > 10**9  # an item outside the catalog is never found


# Memory bounded by the catalog (issue 25): the Gram summed over blocks of users, B inverted in place.

def _random_binary(users=60, items=25, density=0.2, seed=5):
    from scipy import sparse

    rng = np.random.default_rng(seed)
    dense = (rng.random((users, items)) < density).astype(np.float32)
    return dense, sparse.csr_matrix(dense)


def test_the_gram_summed_over_blocks_of_users_is_the_whole_products():
    dense, matrix = _random_binary()
    for block_products in (1, 50, 10**9):  # one user a block, a few, all at once
        assert np.array_equal(gram(matrix, block_products), dense.T @ dense)
    assert gram(matrix).dtype == np.float32


def _ease_weights_by_explicit_inverse(g: np.ndarray, lam: float) -> np.ndarray:
    """The closed form written out (float64, the general inverse): what the in-place Cholesky must equal."""
    p = np.linalg.inv(g.astype(np.float64) + lam * np.eye(len(g)))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def test_in_place_weights_equal_the_explicit_inverse_to_float32_tolerance_and_reuse_the_gram():
    dense, matrix = _random_binary(users=400, items=300, density=0.05)  # 300 items: several mirrored bands
    g = gram(matrix)
    expected = _ease_weights_by_explicit_inverse(g, lam=3.0)
    weights = ease_weights(g, lam=3.0, overwrite=True)
    assert np.shares_memory(weights, g) and weights.flags.c_contiguous  # no second items² matrix
    assert weights == pytest.approx(expected, abs=1e-5)
    kept = dense.T @ dense
    untouched = ease_weights(kept, lam=3.0)  # without overwrite the caller's G stays as it was
    assert np.array_equal(kept, dense.T @ dense) and untouched == pytest.approx(expected, abs=1e-5)


def test_the_validation_cut_is_the_same_draws_as_one_call():
    rows = 2 * (1 << 20) + 7  # crosses two chunk boundaries
    one_call = np.random.default_rng(SEED).random(rows) < VALIDATION_SHARE
    assert np.array_equal(_held_out(rows), one_call)


def test_scores_and_the_chosen_lambda_are_the_explicit_inverses():
    """Ease's λ search and scores against the same steps with the explicit float64 inverse, on the planted data."""
    users, items = _planted(users=500, seed=11)
    train = TrainInteractions(max_items=100)
    train.add(users, items)
    ease = Ease(train, gate_k=1)
    u, i = train.pairs()
    x = np.zeros((len(train.user_index), len(train.item_index)), np.float32)
    x[u, i] = 1.0
    expected = _ease_weights_by_explicit_inverse(x.T @ x, ease.lam)
    assert ease.weights == pytest.approx(expected, abs=1e-5)
    held = _held_out(len(u))
    fit = np.zeros_like(x)
    fit[u[~held], i[~held]] = 1.0
    mean_count = float(np.mean(np.diag(fit.T @ fit)))
    recall = {}
    for factor in LAMBDA_FACTORS:
        scores = fit[u[held]] @ _ease_weights_by_explicit_inverse(fit.T @ fit, factor * mean_count)
        scores = scores + ease.tiebreak[None, :]
        truth = scores[np.arange(len(scores)), i[held]]
        recall[factor * mean_count] = float(np.mean(np.sum(scores > truth[:, None], axis=1) < 1))
    assert ease.validation_recall == pytest.approx(recall)
    assert ease.lam == max(recall, key=lambda lam: (recall[lam], -lam))


def test_pairs_cross_block_boundaries_and_a_later_batch_starts_a_new_block(monkeypatch):
    from pipeline_compiler import baselines

    monkeypatch.setattr(baselines, "PAIR_BLOCK", 4)
    train = TrainInteractions(max_items=100)
    users = [f"u{n % 5}" for n in range(10)]
    items = [f"i{n % 7}" for n in range(10)]
    for start in range(0, 10, 3):  # batches of 3 into blocks of 4
        train.add(users[start:start + 3], items[start:start + 3])
    assert len(train._users) == 3  # 4 + 4 + 2 of 4
    u, i = train.pairs()
    assert u.tolist() == [n % 5 for n in range(10)] and i.tolist() == [n % 7 for n in range(10)]
    train.add(["u0"], ["i0"])
    assert train.pairs()[0].tolist() == [n % 5 for n in range(10)] + [0]
