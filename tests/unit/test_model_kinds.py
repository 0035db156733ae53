"""Each model kind is declared once (shared/domain/model_kinds.py); the API's enum, the OpenAPI document,
the error strings, the vocabulary, the CLI's choices and the towers rule are checked here to derive from it."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import get_args

import pytest

from shared.domain import model_kinds, run_config
from shared.domain.catalog import FeatureConfig, ModelConfig, ModelType, towers_problem
from shared.contract.vocabulary import vocabulary
from shared.errors import FieldError
from shared.http.openapi import document
from shared.services import catalog_entries, listing, run_builder
from tests.builders import demo_member, feature_config_body, model_config_body, run_body, seed_catalog
from tests.fakes import InMemoryRepository


def test_each_kind_declares_what_it_learns_and_how_it_is_judged():
    assert model_kinds.NAMES == ("retrieval", "ranking", "multitask")
    for kind in model_kinds.KINDS:
        assert kind.retrieves or kind.ranks, kind.name
        assert kind.primary_metric in kind.gate_metrics
        assert kind.summary
    retrieval, ranking, multitask = model_kinds.KINDS
    assert (retrieval.tasks, ranking.tasks, multitask.tasks) == (("retrieval",), ("ranking",), ("retrieval", "ranking"))
    assert [k.weighted for k in model_kinds.KINDS] == [False, False, True]
    assert [k.towers_must_fit for k in model_kinds.KINDS] == [True, False, True]
    assert [k.needs_label for k in model_kinds.KINDS] == [False, True, True]
    assert [k.rank_signature for k in model_kinds.KINDS] == [None, "serving_default", "rank"]
    assert "ranking_head" in ranking.towers and "ranking_head" not in retrieval.towers
    assert multitask.gate_metrics == model_kinds.RETRIEVAL_METRICS + model_kinds.RANKING_METRICS
    assert [model_kinds.lower_is_better(k.primary_metric) for k in model_kinds.KINDS] == [False, True, False]
    assert model_kinds.kind("ranking") is ranking and not model_kinds.is_kind("sequential")
    with pytest.raises(KeyError):
        model_kinds.kind("sequential")


def test_the_api_enum_the_tables_and_the_openapi_document_derive_from_the_kinds():
    assert get_args(ModelType) == model_kinds.NAMES
    assert run_config.PRIMARY_METRIC == {k.name: k.primary_metric for k in model_kinds.KINDS}
    assert run_config.METRICS_FOR_MODEL_TYPE == {k.name: k.gate_metrics for k in model_kinds.KINDS}
    assert set(get_args(run_config.GateMetric)) == set(model_kinds.RETRIEVAL_METRICS + model_kinds.RANKING_METRICS)
    assert catalog_entries.PRIMARY_METRIC == {"retrieval": ("recall_at_100", True), "ranking": ("test_rmse", False),
                                              "multitask": ("recall_at_100", True)}
    top = document()["paths"]["/api/experiments/top-for-training"]["get"]["parameters"]
    assert next(p for p in top if p["name"] == "model_type")["schema"]["enum"] == list(model_kinds.NAMES)
    schemas = document()["components"]["schemas"]
    assert schemas["ModelConfig"]["properties"]["model_type"]["enum"] == list(model_kinds.NAMES)


def test_an_unknown_kind_is_refused_with_the_declared_names():
    repo = InMemoryRepository()
    who, _ = demo_member()
    for call in (lambda: catalog_entries.top_for_training(repo, "sequential", who),
                 lambda: listing.list_runs(repo, {"model_type": "sequential"}, who, b"k" * 32)):
        with pytest.raises(FieldError) as raised:
            call()
        assert raised.value.errors == [{"field": "model_type", "message": "must be one of retrieval, ranking, multitask"}]


def test_the_vocabulary_serves_each_kind_as_declared():
    served = {m["name"]: m for m in vocabulary()["model_types"]}
    assert list(served) == list(model_kinds.NAMES)
    for kind in model_kinds.KINDS:
        assert served[kind.name] == {"name": kind.name, "summary": kind.summary, "retrieves": kind.retrieves,
                                     "ranks": kind.ranks, "tasks": list(kind.tasks), "towers": list(kind.towers),
                                     "primary_metric": kind.primary_metric, "gate_metrics": list(kind.gate_metrics)}


def test_the_vocabulary_serves_the_training_defaults_and_the_min_lr_rule():
    training = vocabulary()["training"]
    assert training["defaults"] == run_config.TrainingParams().model_dump(mode="json")
    assert training["defaults"]["lr_schedule"]["min_lr"] == run_config.TrainingParams().lr_schedule.min_lr
    assert set(training["lr_schedules"]) == {"constant", "reduce_on_plateau", "cosine", "warmup_cosine"}
    assert training["lr_schedules"]["reduce_on_plateau"] == run_config.ReduceOnPlateauLR().model_dump(
        mode="json", exclude={"type"})
    assert training["lr_schedules"]["warmup_cosine"] == {"warmup_epochs": 1}
    rule = training["min_lr"]
    for rate in (10.0, 0.1, 0.002, 0.001, 0.0005):  # a client applying the served rule gets the server's floor
        served = rule["default"] if rate > rule["default"] else rate * rule["share_of_rate"]
        assert served == run_config.ReduceOnPlateauLR().floor(rate), rate
        assert served == run_config.TrainingParams(learning_rate=rate).lr_schedule.min_lr


@pytest.mark.parametrize("model_type", model_kinds.NAMES)
def test_the_towers_rule_is_one_for_the_request_and_the_run_spec(model_type):
    """An embedding-only tower beside a dense one of another output width: refused for a kind that retrieves,
    by the API (run_builder) and by the frozen run spec alike, with the same words; a ranking model does not
    care. (Two embedding-only towers always meet: the wider is projected, catalog.projection_width.)"""
    features = feature_config_body(features=[
        {"name": "customer_id", "column": "customer_id", "side": "query", "transform": {"type": "vocabulary", "embedding_dim": 32}},
        {"name": "product_id", "column": "product_id", "side": "candidate", "transform": {"type": "vocabulary", "embedding_dim": 16}}])
    model = model_config_body(model_type, query_tower=[], candidate_tower=[64, 16])
    expected = towers_problem(model_type, FeatureConfig.model_validate(features), ModelConfig.model_validate(model))
    assert (expected is not None) is model_kinds.kind(model_type).towers_must_fit
    repo = InMemoryRepository()
    member = demo_member()
    ids = seed_catalog(repo, model_type, rmse=0.9 if model_type == "ranking" else None, member=member)
    repo.catalog["feature_configs"][ids["features"]].update(features)
    repo.catalog["model_configs"][ids["model"]].update(model)
    build = lambda: run_builder.build_run(repo, run_body(ids["experiment"]), member[0].email,  # noqa: E731
                                          datetime.now(timezone.utc), "demo")
    if expected is None:
        build()
    else:
        with pytest.raises(FieldError) as raised:
            build()
        assert raised.value.errors == [{"field": "model_config_id", "message": expected}]


def test_the_cli_offers_the_declared_kinds():
    from trainyard_cli.__main__ import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["runs", "create", "--name", "x", "--best", "sequential"])
    for name in model_kinds.NAMES:
        assert parser.parse_args(["runs", "create", "--name", "x", "--best", name]).best == name
        assert parser.parse_args(["catalog", "list", "experiments", "--model-type", name]).model_type == name
    assert parser.parse_args(["experiments", "top"]).model_type == model_kinds.NAMES[0]


def test_the_cli_threshold_is_on_the_served_primary_metric_in_its_direction():
    from trainyard_cli.__main__ import primary_threshold

    class Served:
        def get(self, path, **params):
            assert path == "/api/vocabulary"
            return {"vocabulary": vocabulary()}

    assert primary_threshold(Served(), "ranking", 0.9) == {"metric": "test_rmse", "max_value": 0.9}
    assert primary_threshold(Served(), "multitask", 0.3) == {"metric": "recall_at_100", "min_value": 0.3}
    from trainyard_cli.output import UsageError

    with pytest.raises(UsageError, match="no model type 'sequential'"):
        primary_threshold(Served(), "sequential", 0.3)
