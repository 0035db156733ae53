"""The baselines a retrieval model is gated against, fitted on the train split in one streaming pass and
scored on the same test rows as the model: most-popular, and EASE where the catalog fits in memory.

EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data", arXiv:1905.03375) is a
closed-form item-item model: with G = XᵀX over the binary user x item matrix X and P = (G + λI)⁻¹,
B = I - P·diag(1/diag(P)), i.e. B_ij = -P_ij / P_jj and B_jj = 0; a user's scores are x_u·B. It needs an
items x items matrix (float32, 4 bytes x items²: 100 MB at 5,000 items), so it runs only up to `max_items`.

Memory: item counts are bounded by the catalog; the (user, item) index pairs EASE needs are kept as
int32 (8 bytes a train row) only while the catalog stays within `max_items`, and dropped as soon as
it does not. What EASE adds on top is bounded by the catalog, not the rows: G is summed densely over
blocks of users (`gram`; a sparse XᵀX grows with the users until it is as dense as G, and then needs
three times G's memory), and inverted in place by Cholesky (`ease_weights`), so the final fit holds one
items² matrix and the λ search two. The test split is scored batch by batch.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Optional, Sequence

import numpy as np

# λ candidates as multiples of the mean item count (the diagonal of G): the ridge must be on G's scale.
LAMBDA_FACTORS = (0.05, 0.2, 1.0, 5.0, 20.0)
VALIDATION_SHARE = 0.1  # of the train rows, held out to choose λ
SEED = 0
GRAM_BLOCK_PRODUCTS = 1 << 22  # Σ (items a user has)² over a block of users: its sparse product's size bound
_CHUNK = 1 << 20  # rows drawn at a time for the validation cut
# Pairs are kept in blocks this long (4 MB of int32 each, mapped apart from the heap): thousands of
# small per-batch arrays left between each batch's freed temporaries would hold the heap at its widest.
PAIR_BLOCK = 1 << 20


def gram(matrix, block_products: int = GRAM_BLOCK_PRODUCTS) -> np.ndarray:
    """G = XᵀX (float32, dense) for the binary user x item CSR matrix X, summed over blocks of users: each
    block's sparse product has at most `block_products` entries, so memory beyond G does not grow with
    the users (counts are exact in float32 up to 2²⁴ users an item)."""
    n_items = matrix.shape[1]
    result = np.zeros((n_items, n_items), np.float32)
    products = np.cumsum(np.diff(matrix.indptr).astype(np.int64) ** 2)
    start = 0
    while start < matrix.shape[0]:
        done = products[start - 1] if start else 0
        end = max(int(np.searchsorted(products, done + block_products, side="right")), start + 1)
        block = matrix[start:end]
        part = (block.T @ block).tocoo()  # no repeated (i, j) in a product: the += below adds each once
        result[part.row, part.col] += part.data
        start = end
    return result


def ease_weights(gram: np.ndarray, lam: float, overwrite: bool = False) -> np.ndarray:
    """EASE's item-item weights B for Gram matrix G = XᵀX and ridge λ (closed form, zero diagonal).
    overwrite: G is a C-contiguous float32 array that may become B (no other items² matrix is made)."""
    from scipy.linalg import lapack

    reusable = overwrite and gram.dtype == np.float32 and gram.flags.c_contiguous
    work = gram if reusable else np.array(gram, dtype=np.float32)  # float32: EASE needs no more precision
    work[np.diag_indices_from(work)] += lam
    # G + λI is symmetric positive definite: Cholesky (potrf), then the inverse from it (potri), both in
    # place on the transpose (a Fortran-ordered view LAPACK overwrites); potri fills one triangle.
    factor, info = lapack.spotrf(work.T, lower=False, clean=False, overwrite_a=True)
    if info:
        raise np.linalg.LinAlgError(f"G + λI is not positive definite (potrf info {info})")
    inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info:
        raise np.linalg.LinAlgError(f"G + λI is singular (potri info {info})")
    weights = inverse.T  # `work` itself when LAPACK wrote in place; its lower triangle holds P
    _mirror_lower(weights)
    weights /= -np.diag(weights)[None, :]  # in place: B_ij = -P_ij / P_jj
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


def _mirror_lower(matrix: np.ndarray, block: int = 256) -> None:
    """Copies the lower triangle onto the upper, a band of rows at a time (no items² temporary)."""
    n = matrix.shape[0]
    for start in range(0, n, block):
        end = min(start + block, n)
        matrix[start:end, end:] = matrix[end:, start:end].T
        square = matrix[start:end, start:end]
        upper = np.triu_indices(end - start, 1)
        square[upper] = square.T[upper]


def _held_out(rows: int) -> np.ndarray:
    """The validation cut as a boolean mask, drawn a chunk at a time (the same draws as one call, without
    a float64 per train row)."""
    rng, held = np.random.default_rng(SEED), np.empty(rows, bool)
    for start in range(0, rows, _CHUNK):
        end = min(start + _CHUNK, rows)
        held[start:end] = rng.random(end - start) < VALIDATION_SHARE
    return held


class TrainInteractions:
    """One streaming pass over the train split: item counts, and the (user, item) pairs for EASE."""

    def __init__(self, max_items: int):
        self.max_items = max_items
        self.counts: Counter = Counter()
        self.item_index: dict[str, int] = {}
        self.user_index: dict[str, int] = {}
        self._users: list[np.ndarray] = []  # blocks of PAIR_BLOCK; the last one filled up to _filled
        self._items: list[np.ndarray] = []
        self._filled = 0
        self.keeps_pairs = max_items > 0
        self.rows = 0

    def add(self, users: Sequence[str], items: Sequence[str]) -> None:
        self.counts.update(items)
        self.rows += len(items)
        if not self.keeps_pairs:
            return
        if len(self.counts) > self.max_items:  # the catalog does not fit: EASE is off, free its pairs
            self.keeps_pairs, self._users, self._items = False, [], []
            self.user_index, self.item_index = {}, {}
            return
        self._keep(np.fromiter((self.user_index.setdefault(u, len(self.user_index)) for u in users),
                               np.int32, len(users)),
                   np.fromiter((self.item_index.setdefault(i, len(self.item_index)) for i in items),
                               np.int32, len(items)))

    def _keep(self, users: np.ndarray, items: np.ndarray) -> None:
        start = 0
        while start < len(users):
            if not self._users or self._filled == len(self._users[-1]):
                self._users.append(np.empty(PAIR_BLOCK, np.int32))
                self._items.append(np.empty(PAIR_BLOCK, np.int32))
                self._filled = 0
            take = min(len(users) - start, len(self._users[-1]) - self._filled)
            self._users[-1][self._filled:self._filled + take] = users[start:start + take]
            self._items[-1][self._filled:self._filled + take] = items[start:start + take]
            self._filled += take
            start += take

    def most_popular(self, k: int) -> list[str]:
        return [item for item, _ in self.counts.most_common(k)]

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._users:
            return np.zeros(0, np.int32), np.zeros(0, np.int32)
        # Kept as the one joined array (full, so a later add starts a new block): never held twice.
        self._users = [np.concatenate(self._users[:-1] + [self._users[-1][:self._filled]])]
        self._items = [np.concatenate(self._items[:-1] + [self._items[-1][:self._filled]])]
        self._filled = len(self._users[0])
        return self._users[0], self._items[0]


def _matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int):
    """Binary user x item matrix (scipy CSR; repeated purchases count once, as in EASE)."""
    from scipy import sparse

    matrix = sparse.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _ranks(matrix, weights: np.ndarray, tiebreak: np.ndarray, users: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Rank of each true item among all items for its user (0 = top); users < 0 have no history."""
    known = np.maximum(users, 0)
    scores = np.asarray((matrix[known] @ weights))
    scores[users < 0] = 0.0
    scores = scores + tiebreak[None, :]  # cold users and ties fall back on popularity
    true_scores = np.take_along_axis(scores, np.maximum(truth, 0)[:, None], axis=1)
    ranks = np.sum(scores > true_scores, axis=1)
    return np.where(truth >= 0, ranks, np.iinfo(np.int64).max)


class Ease:
    """EASE fitted on the train pairs, λ chosen on a validation cut of them; scores test batches."""

    def __init__(self, train: TrainInteractions, gate_k: int, lambda_factors: Iterable[float] = LAMBDA_FACTORS,
                 batch_size: int = 1024):
        users, items = train.pairs()
        self.item_index, self.user_index = train.item_index, train.user_index
        n_users, n_items = len(train.user_index), len(train.item_index)
        counts = np.bincount(items, minlength=n_items).astype(np.float64)
        # Ties broken by popularity, small enough never to outweigh a real EASE score difference.
        self.tiebreak = 1e-9 * counts / max(counts.max(initial=1.0), 1.0)
        held = _held_out(len(users))
        held_users, held_items = users[held], items[held]
        fit_matrix = _matrix(users[~held], items[~held], n_users, n_items)
        fit_gram = gram(fit_matrix)
        mean_count = float(np.mean(np.diag(fit_gram))) or 1.0
        self.validation_recall: dict[float, float] = {}
        weights = np.empty_like(fit_gram)  # each λ's B, overwritten in place: two items² matrices at most
        for factor in lambda_factors:
            lam = factor * mean_count
            np.copyto(weights, fit_gram)
            weights = ease_weights(weights, lam, overwrite=True)
            found = 0
            for start in range(0, len(held_users), batch_size):
                chunk = slice(start, start + batch_size)
                ranks = _ranks(fit_matrix, weights, self.tiebreak, held_users[chunk], held_items[chunk])
                found += int(np.sum(ranks < gate_k))
            self.validation_recall[lam] = found / max(len(held_users), 1)
        del fit_matrix, fit_gram, weights, held, held_users, held_items
        self.lam = max(self.validation_recall, key=lambda lam: (self.validation_recall[lam], -lam))
        self.matrix = _matrix(users, items, n_users, n_items)
        self.weights = ease_weights(gram(self.matrix), self.lam, overwrite=True)

    def ranks(self, users: Sequence[str], items: Sequence[str]) -> np.ndarray:
        user_rows = np.array([self.user_index.get(u, -1) for u in users], dtype=np.int64)
        truth = np.array([self.item_index.get(i, -1) for i in items], dtype=np.int64)
        return _ranks(self.matrix, self.weights, self.tiebreak, user_rows, truth)


def fit_ease(train: TrainInteractions, gate_k: int) -> tuple[Optional[Ease], Optional[str]]:
    """EASE when the catalog fits, else None and why (the Evaluation reports the reason)."""
    if train.max_items <= 0:
        return None, "EASE is turned off (evaluator_config.ease_max_items = 0)"
    if not train.keeps_pairs:
        return None, f"the catalog has more than {train.max_items:,} items (evaluator_config.ease_max_items)"
    if not train.item_index:
        return None, "the train split is empty"
    return Ease(train, gate_k), None
