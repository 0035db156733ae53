"""The catalog a training run is built from: datasets, feature configs, model configs, experiments.

These schemas are the contract between the API (which validates them) and pipeline_compiler (which
turns them into ExampleGen queries, a preprocessing_fn and a TFRS model).
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.domain import data_access, model_kinds
from shared.domain.doc_ids import DocumentId

ModelType = Literal[model_kinds.NAMES]  # the kinds declared in model_kinds.py; the API's enum
SplitStrategy = Literal["strict_time", "random"]


def team_field():
    """The `team` a new resource belongs to (shared/domain/teams.team_for_new): one of the caller's teams;
    left out, the caller's only team where they may create it."""
    return Field(None, description="the team it belongs to (left out: your only team with the role it needs)")


# Field limits (review LOW: a 2 MB dataset document was accepted, then refused by Firestore's 1 MiB
# document limit as a 500). Descriptions as long as a run's or a schedule's; list lengths far above any
# real recommender's. A column name's length (BigQuery's 300 characters) is checked with its form below.
MAX_DESCRIPTION = 2000
MAX_FEATURES = 500
MAX_TOWER_LAYERS = 16
MAX_URI = 2048
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION)]


class Strict(BaseModel):
    """Unknown fields are an error (HTTP 400), not silently dropped."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# Names that reach SQL and TensorFlow feature keys (shared/domain/data_access.py has the rules and sources;
# at most 300 characters, as BigQuery allows: https://cloud.google.com/bigquery/docs/schemas#column_names).
ColumnName = Annotated[str, AfterValidator(data_access.column)]


def _table_path(value: str) -> str:
    data_access.table_ref(value)
    return value


# --------------------------------------------------------------------------- datasets


class BigQuerySource(Strict):
    kind: Literal["bigquery"] = "bigquery"
    table: Optional[Annotated[str, AfterValidator(_table_path)]] = Field(
        None, description="project.dataset.table, the dataset one of the team's datasets")
    query: Optional[str] = Field(None, max_length=100_000,
                                 description="a SELECT producing the columns below: platform admins only (the "
                                             "tables it reads cannot be checked against the team's datasets)")

    @model_validator(mode="after")
    def _one_of(self):
        if bool(self.table) == bool(self.query):
            raise ValueError("give exactly one of table or query")
        return self


class FileSource(Strict):
    kind: Literal["files"] = "files"
    uri: Annotated[str, AfterValidator(data_access.file_uri)] = Field(
        ..., min_length=1, description="a file, directory or glob under one of the team's buckets (gs://; a local "
                                       "path only on the local stack)")
    format: Literal["csv", "parquet"] = "csv"


DataSource = Annotated[Union[BigQuerySource, FileSource], Field(discriminator="kind")]


class ColumnMapping(Strict):
    user_id: ColumnName
    item_id: ColumnName
    timestamp: ColumnName = Field(..., description="seconds since the epoch, or ISO 8601")
    label: Optional[ColumnName] = None
    rating: Optional[ColumnName] = None
    quantity: Optional[ColumnName] = None


class DatasetStats(Strict):
    rows: Optional[int] = Field(None, ge=0)
    users: Optional[int] = Field(None, ge=0)
    items: Optional[int] = Field(None, ge=0)


class Dataset(Strict):
    id: Optional[DocumentId] = None
    name: str = Field(..., min_length=1, max_length=200)
    description: Description = ""
    source: DataSource
    columns: ColumnMapping
    features: list[ColumnName] = Field(default_factory=list, max_length=MAX_FEATURES,
                                       description="extra columns used as features")
    split_strategy: SplitStrategy = "strict_time"
    sample_percent: int = Field(100, ge=1, le=100)
    stats: DatasetStats = Field(default_factory=DatasetStats)
    created_at: Optional[datetime] = None
    created_by: Optional[str] = None
    team: Optional[str] = team_field()


# --------------------------------------------------------------------------- feature configs


class VocabularyTransform(Strict):
    type: Literal["vocabulary"] = "vocabulary"
    embedding_dim: int = Field(32, ge=1, le=1024)
    num_oov_buckets: int = Field(1, ge=1, le=1000)
    max_tokens: Optional[int] = Field(None, ge=1)


class HashingTransform(Strict):
    type: Literal["hashing"] = "hashing"
    num_buckets: int = Field(..., ge=2, le=10_000_000)
    embedding_dim: int = Field(32, ge=1, le=1024)


OnNonNumeric = Literal["fail", "missing"]
ON_NON_NUMERIC = Field("fail", description='a value that is not a number: "fail" the run at the data check (naming '
                       'the column and a few values), or treat it as "missing" (it takes the mean of the column\'s '
                       'numbers; counted and reported on the run as data_coercions)')


class NormalizeTransform(Strict):
    type: Literal["normalize"] = "normalize"  # z-score
    log1p: bool = False
    on_non_numeric: OnNonNumeric = ON_NON_NUMERIC


class BucketizeTransform(Strict):
    type: Literal["bucketize"] = "bucketize"
    num_buckets: int = Field(10, ge=2, le=1000)
    embedding_dim: Optional[int] = Field(None, ge=1, le=1024)
    on_non_numeric: OnNonNumeric = ON_NON_NUMERIC


CyclicalComponent = Literal["hour_of_day", "day_of_week", "month"]


class CyclicalTransform(Strict):
    type: Literal["cyclical"] = "cyclical"
    components: list[CyclicalComponent] = Field(
        default_factory=lambda: ["hour_of_day", "day_of_week", "month"], min_length=1
    )


class CrossTransform(Strict):
    type: Literal["cross"] = "cross"
    columns: list[ColumnName] = Field(..., min_length=2, max_length=2)
    hash_buckets: int = Field(1000, ge=2, le=10_000_000)
    embedding_dim: int = Field(16, ge=1, le=1024)


FeatureTransform = Annotated[
    Union[
        VocabularyTransform,
        HashingTransform,
        NormalizeTransform,
        BucketizeTransform,
        CyclicalTransform,
        CrossTransform,
    ],
    Field(discriminator="type"),
]


class FeatureSpec(Strict):
    name: str = Field(..., min_length=1, max_length=100, description="output feature name")
    column: Optional[ColumnName] = Field(None, description="input column; not used by a cross")
    side: Literal["query", "candidate"]
    transform: FeatureTransform

    @model_validator(mode="after")
    def _column_needed(self):
        if self.transform.type != "cross" and not self.column:
            raise ValueError(f"feature {self.name!r}: column is required for a {self.transform.type} transform")
        return self


class FeatureConfig(Strict):
    id: Optional[DocumentId] = None
    name: str = Field(..., min_length=1, max_length=200)
    description: Description = ""
    features: list[FeatureSpec] = Field(..., min_length=1, max_length=MAX_FEATURES)
    created_at: Optional[datetime] = None
    created_by: Optional[str] = None
    team: Optional[str] = team_field()

    @model_validator(mode="after")
    def _unique_names_and_towers(self):
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature names must be unique: {', '.join(dupes)}")
        sides = {f.side for f in self.features}
        if sides != {"query", "candidate"}:
            raise ValueError("needs at least one query-side and one candidate-side feature")
        return self


# --------------------------------------------------------------------------- model configs


class MultitaskWeights(Strict):
    retrieval: float = Field(1.0, ge=0)
    ranking: float = Field(1.0, ge=0)


TOWER_DOC = ("dense layer sizes, ReLU between them; the last is the embedding size. [] (the default) = "
             "embedding-only: the tower's output is its features' vectors concatenated (the TFRS tutorials' "
             "model); when both towers are [] the wider side is linearly projected to the narrower's width")


class ModelConfig(Strict):
    id: Optional[DocumentId] = None
    name: str = Field(..., min_length=1, max_length=200)
    description: Description = ""
    model_type: ModelType
    # Embedding-only by default: dense towers held a no-options run at most-popular's recall on every
    # bench data set (docs/pipeline.md "Model quality").
    query_tower: list[int] = Field(default_factory=list, max_length=MAX_TOWER_LAYERS, description=TOWER_DOC)
    candidate_tower: list[int] = Field(default_factory=list, max_length=MAX_TOWER_LAYERS, description=TOWER_DOC)
    ranking_head: list[int] = Field(default_factory=lambda: [256, 64], max_length=MAX_TOWER_LAYERS,
                                    description="hidden layers before the score")
    multitask_weights: MultitaskWeights = Field(default_factory=MultitaskWeights)
    optimizer: Literal["adagrad", "adam", "sgd"] = "adagrad"
    # Retrieval loss options (docs/pipeline.md "Model options" says what each did on bench/quality.py).
    normalize_embeddings: bool = Field(False, description="L2-normalise both towers' outputs (cosine scores)")
    temperature: float = Field(1.0, gt=0, le=100, description="the retrieval logits are divided by it")
    sampling_bias_correction: bool = Field(
        True, description="subtract log(item frequency) from in-batch negatives' logits (logQ correction)")
    remove_accidental_hits: bool = Field(
        False, description="in-batch copies of a row's own item are not treated as its negatives")
    created_at: Optional[datetime] = None
    created_by: Optional[str] = None
    team: Optional[str] = team_field()

    @model_validator(mode="after")
    def _towers_agree(self):
        for field in ("query_tower", "candidate_tower", "ranking_head"):
            if any(n < 1 or n > 8192 for n in getattr(self, field)):
                raise ValueError(f"{field}: layer sizes must be between 1 and 8192")
        if self.query_tower and self.candidate_tower and self.query_tower[-1] != self.candidate_tower[-1]:
            raise ValueError("query_tower and candidate_tower must end in the same output dimension")
        return self


def feature_width(feature: FeatureSpec) -> int:
    """Width of the vector one feature contributes to its tower."""
    transform = feature.transform
    if transform.type in ("vocabulary", "hashing", "cross"):
        return transform.embedding_dim
    if transform.type == "bucketize":
        return transform.embedding_dim or transform.num_buckets + 1
    if transform.type == "cyclical":
        return 2 * len(transform.components)
    return 1  # normalize


def concatenated_width(features: FeatureConfig, side: str) -> int:
    """Width of one side's features' vectors concatenated: an embedding-only tower's output before any projection."""
    return sum(feature_width(f) for f in features.features if f.side == side)


def projection_width(features: FeatureConfig, model: ModelConfig, side: str) -> Optional[int]:
    """When both towers are embedding-only and this side is the wider, the width its one linear projection
    (no bias, no activation) maps it to: the other side's, so the two meet in one space for the dot product
    with no more capacity than the embeddings. None when this side needs none."""
    if model.query_tower or model.candidate_tower:
        return None
    other = "candidate" if side == "query" else "query"
    own_width, other_width = concatenated_width(features, side), concatenated_width(features, other)
    return other_width if own_width > other_width else None


def tower_output_dim(features: FeatureConfig, model: ModelConfig, side: str) -> int:
    layers = model.query_tower if side == "query" else model.candidate_tower
    if layers:
        return layers[-1]
    return projection_width(features, model, side) or concatenated_width(features, side)


def towers_mismatch(features: FeatureConfig, model: ModelConfig) -> Optional[str]:
    """Why the two towers' embeddings cannot be dot-multiplied, or None when their sizes agree. Two
    embedding-only towers always meet (the wider is projected); one embedding-only tower beside a dense
    one must match the dense one's output size."""
    query, candidate = (tower_output_dim(features, model, side) for side in ("query", "candidate"))
    if query == candidate:
        return None
    return (f"the query tower's embeddings have {query} dimensions and the candidate tower's {candidate}: "
            "an embedding-only tower ([]) outputs its features' vectors concatenated, so give the two sides "
            "features of equal total width, make both towers embedding-only (the wider side is then projected "
            "to the narrower's width) or end both in a dense layer of the same size")


def towers_problem(model_type: str, features: FeatureConfig, model: ModelConfig) -> Optional[str]:
    """Why these configs cannot train a `model_type` model (its towers must fit when it retrieves), or None."""
    if not model_kinds.kind(model_type).towers_must_fit:
        return None
    return towers_mismatch(features, model)


# --------------------------------------------------------------------------- experiments (quick tests)


def _metric(meaning: str):
    return Field(None, description=meaning)


class ExperimentMetrics(Strict):
    """What the quick test measured, on its test split: what ranks experiments for promotion and what a
    promoted run's default gate derives from."""
    loss: Optional[float] = _metric("the quick test's final loss")
    recall_at_5: Optional[float] = _metric("retrieval: share of test interactions whose item is in the top 5")
    recall_at_10: Optional[float] = _metric("retrieval: … in the top 10")
    recall_at_50: Optional[float] = _metric("retrieval: … in the top 50")
    recall_at_100: Optional[float] = _metric("retrieval: … in the top 100 (the primary metric)")
    test_rmse: Optional[float] = _metric("ranking: root mean squared error of the predicted rating (lower is better)")
    test_mae: Optional[float] = _metric("ranking: mean absolute error of the predicted rating (lower is better)")


class ExperimentParams(Strict):
    epochs: Optional[int] = Field(None, ge=1)
    batch_size: Optional[int] = Field(None, ge=1)
    learning_rate: Optional[float] = Field(None, gt=0)
    data_sample_percent: Optional[int] = Field(None, ge=1, le=100)


class Experiment(Strict):
    """A quick test: a short run on sampled data whose winner gets promoted to full training."""

    id: Optional[DocumentId] = None
    number: Optional[int] = Field(None, ge=1, description="shown as 'Exp #N'; assigned when omitted")
    name: str = Field(..., min_length=1, max_length=200)
    model_type: ModelType
    dataset_id: DocumentId
    feature_config_id: DocumentId
    model_config_id: DocumentId
    params: ExperimentParams = Field(default_factory=ExperimentParams)
    metrics: ExperimentMetrics = Field(default_factory=ExperimentMetrics)
    saved_model_uri: Optional[str] = Field(None, max_length=MAX_URI, description="for warm restart")
    created_at: Optional[datetime] = None
    created_by: Optional[str] = None
    team: Optional[str] = team_field()

    @property
    def display_name(self) -> str:
        return f"Exp #{self.number}" if self.number else self.name
