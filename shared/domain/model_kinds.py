"""The model kinds Trainyard trains, each declared once. Start here to add one.

A kind says what the model learns — to retrieve candidates for a query (two towers whose dot product
scores every candidate, served from a top-K index) and/or to rank a (query, candidate) pair (a head over
both towers fitted to the label) — and how its runs are judged: the metrics a gate may use, each with
its direction, and the primary one that ranks experiments and gates a run when no threshold names one.

Everything else derives from this table: `catalog.ModelType` (the API's enum and its OpenAPI schema),
the error strings, the vocabulary route (and so the dashboard and the CLI), the run-spec rule that the
towers must fit, the data check's label rule, the Evaluator's signatures and the trainer's tasks
(pipeline_compiler/modules/model.py maps `tasks` to TFRS tasks). Plain data: shared/ never imports
TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# The metrics a gate may name; recall@k is the share of test interactions whose item is in the top k,
# rmse/mae are the predicted label's errors on the test split.
RETRIEVAL_METRICS = ("recall_at_5", "recall_at_10", "recall_at_50", "recall_at_100")
RANKING_METRICS = ("test_rmse", "test_mae")
LOWER_IS_BETTER = frozenset(RANKING_METRICS)

RETRIEVAL, RANKING = "retrieval", "ranking"  # the two tasks a kind may train


@dataclass(frozen=True)
class ModelKind:
    name: str
    summary: str  # what it retrieves or ranks, in the user's words
    retrieves: bool  # in-batch softmax over the two towers; serves top-K candidate ids from an index
    ranks: bool  # MSE of a head over both towers against the label; serves a score
    primary_metric: str

    @property
    def tasks(self) -> tuple[str, ...]:
        """The training tasks, in the order their losses add up."""
        return (RETRIEVAL,) * self.retrieves + (RANKING,) * self.ranks

    @property
    def weighted(self) -> bool:
        """Several tasks: each loss is scaled by the model config's multitask_weights."""
        return len(self.tasks) > 1

    @property
    def gate_metrics(self) -> tuple[str, ...]:
        return RETRIEVAL_METRICS * self.retrieves + RANKING_METRICS * self.ranks

    @property
    def towers(self) -> tuple[str, ...]:
        """The model config's layer lists this kind trains."""
        return ("query_tower", "candidate_tower") + ("ranking_head",) * self.ranks

    @property
    def towers_must_fit(self) -> bool:
        """Retrieval scores are dot products of the two towers' outputs, so their sizes must agree."""
        return self.retrieves

    @property
    def needs_label(self) -> bool:
        return self.ranks

    @property
    def rank_signature(self) -> Optional[str]:
        """The serving signature that scores pairs (none when it does not rank): the default one unless
        retrieval holds it."""
        if not self.ranks:
            return None
        return "rank" if self.retrieves else "serving_default"


KINDS: tuple[ModelKind, ...] = (
    ModelKind("retrieval", "the top 100 candidates for a query, from an index of all candidates",
              retrieves=True, ranks=False, primary_metric="recall_at_100"),
    ModelKind("ranking", "a score for a (query, candidate) pair, fitted to the label (rating, label or quantity)",
              retrieves=False, ranks=True, primary_metric="test_rmse"),
    ModelKind("multitask", "both: retrieval's top 100 and ranking's score, trained together with weighted losses",
              retrieves=True, ranks=True, primary_metric="recall_at_100"),
)
NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
_BY_NAME = {k.name: k for k in KINDS}
ONE_OF = "must be one of " + ", ".join(NAMES)  # the error a request naming no kind gets


def kind(name: str) -> ModelKind:
    """The declaration of a kind by name (KeyError for a name that is not one)."""
    return _BY_NAME[name]


def is_kind(name: object) -> bool:
    return name in _BY_NAME


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER
