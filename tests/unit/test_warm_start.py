"""Warm starts (issue 27 part 7): resolving what a run starts from when it is created (and a schedule's
each firing), the 400s, and carrying embedding rows across a vocabulary change by id (pure numpy)."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from pipeline_compiler.modules import embedding_rows as R
from shared.domain import warm_start as W
from shared.services import catalog_entries, run_builder, scheduling
from tests.builders import demo_member, run_body, seed_catalog
from tests.unit.test_api import client, fields, post, settings  # noqa: F401 - fixtures

WARM = "training_params.warm_restart"


def _experiment_with_model(repo, uri="/models/exp/saved_model") -> str:
    ids = seed_catalog(repo)
    base = repo.get_catalog("experiments", ids["experiment"])
    made = catalog_entries.create(repo, "experiments", {
        **{k: base[k] for k in ("model_type", "dataset_id", "feature_config_id", "model_config_id", "params",
                                "metrics")}, "name": "with a model", "saved_model_uri": uri}, *demo_member())
    return made["id"]


def _create(client, experiment, warm):
    return post(client, "/api/training-runs", run_body(experiment, training_params={"epochs": 5,
                                                                                    "warm_restart": warm}))


def test_an_explicit_experiment_id_is_the_source_not_the_base_experiment(client, repo, ids):
    other = _experiment_with_model(repo)
    made = _create(client, ids["experiment"], {"enabled": True, "experiment_id": other})  # today's shape
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["training_run"]["warm_source"] == {"source": "experiment", "source_id": other,
                                                              "uri": "/models/exp/saved_model"}
    assert made.get_json()["training_run"]["training_params"]["warm_restart"]["source"] == "experiment"


def test_a_run_id_is_the_source_with_its_trained_model(client, repo, ids):
    source = _create(client, ids["experiment"], {"enabled": False}).get_json()["training_run"]["id"]
    untrained = _create(client, ids["experiment"], {"enabled": True, "run_id": source})
    assert untrained.status_code == 400
    assert "has no trained model" in fields(untrained)[f"{WARM}.run_id"]
    repo.mutate_run(source, lambda d: {**d, "status": "completed",
                                       "artifacts": {"saved_model": "/artifacts/r1/model/saved_model"}})
    made = _create(client, ids["experiment"], {"enabled": True, "source": "run", "run_id": source})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["training_run"]["warm_source"] == {
        "source": "run", "source_id": source, "uri": "/artifacts/r1/model/saved_model"}


def test_champion_is_left_for_the_trainer_to_find(client, ids):
    made = _create(client, ids["experiment"], {"enabled": True, "source": "champion"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["training_run"]["warm_source"] == {"source": "champion", "source_id": None, "uri": None}


def test_no_warm_restart_no_source(client, ids):
    assert _create(client, ids["experiment"], {"enabled": False}).get_json()["training_run"].get("warm_source") is None


@pytest.mark.parametrize("warm,field,words", [
    ({"enabled": True, "experiment_id": "nope"}, f"{WARM}.experiment_id", "no experiment with id 'nope'"),
    ({"enabled": True, "run_id": "tr-nope"}, f"{WARM}.run_id", "no training run with id 'tr-nope'"),
    ({"enabled": True}, f"{WARM}.experiment_id", "has no saved_model_uri"),  # the base experiment has none
    ({"enabled": True, "source": "run"}, WARM, "needs a run_id"),
    ({"enabled": True, "source": "champion", "run_id": "tr-1"}, WARM, "run_id is for source 'run'"),
    ({"enabled": True, "source": "rumour"}, f"{WARM}.source", "Input should be"),
])
def test_bad_warm_restarts_are_400_naming_the_field(client, ids, warm, field, words):
    response = _create(client, ids["experiment"], warm)
    assert response.status_code == 400, response.get_json()
    assert words in fields(response)[field], fields(response)


def test_a_schedule_freezes_what_was_asked_and_each_firing_resolves_it(client, repo, ids):
    """The template keeps the ask (a run id, or champion); each firing builds its run through run_builder,
    which resolves the source as it is then: here the source run's model moved (a retry trained again)."""
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    source = _create(client, ids["experiment"], {"enabled": False}).get_json()["training_run"]["id"]
    repo.mutate_run(source, lambda d: {**d, "artifacts": {"saved_model": "/artifacts/first"}})
    template = scheduling.freeze_template(repo, run_body(ids["experiment"], training_params={
        "warm_restart": {"enabled": True, "run_id": source}}), "dev@example.com", at, None)
    assert "warm_source" not in template and template["training_params"]["warm_restart"]["run_id"] == source
    repo.mutate_run(source, lambda d: {**d, "artifacts": {"saved_model": "/artifacts/second"}})
    _, fired = run_builder.build_run(repo, template, "dev@example.com", at, None)
    assert fired["warm_source"]["uri"] == "/artifacts/second"
    champion = scheduling.freeze_template(repo, run_body(ids["experiment"], training_params={
        "warm_restart": {"enabled": True, "source": "champion"}}), "dev@example.com", at, None)
    assert run_builder.build_run(repo, champion, "dev@example.com", at, None)[1]["warm_source"] == {
        "source": "champion", "source_id": None, "uri": None}  # the Trainer finds the champion of its moment


# ----------------------------------------------------------------------------- rows by id


def test_row_map_keeps_kept_ids_rows_leaves_new_ids_fresh_and_counts_dropped():
    mapping = R.row_map([b"a", b"b", b"c"], [b"c", b"a", b"d", b"e"], old_oov_buckets=1, new_oov_buckets=1)
    assert mapping.rows.tolist() == [2, 0, -1, -1, 3]  # c, a kept; d, e new; the OOV bucket carried
    assert (mapping.kept, mapping.new, mapping.dropped) == (3, 2, 1)  # b dropped
    old = np.arange(8, dtype=np.float32).reshape(4, 2)  # rows a, b, c, oov
    fresh = np.full((5, 2), -1.0, dtype=np.float32)
    table = R.carry_rows(old, fresh, mapping)
    assert table.tolist() == [[4, 5], [0, 1], [-1, -1], [-1, -1], [6, 7]]


def test_oov_buckets_start_fresh_when_their_count_changes():
    mapping = R.row_map([b"a"], [b"a"], old_oov_buckets=1, new_oov_buckets=2)
    assert mapping.rows.tolist() == [0, -1, -1] and (mapping.kept, mapping.new, mapping.dropped) == (1, 2, 0)


def test_carry_rows_refuses_another_embedding_width():
    with pytest.raises(ValueError, match="embedding shapes differ"):
        R.carry_rows(np.zeros((3, 4)), np.zeros((3, 8)), R.row_map([1, 2], [1, 2], 1, 1))


def test_vocabulary_lines_are_the_ids_in_order():
    assert R.vocabulary_lines(b"x\ny\n") == [b"x", b"y"] and R.vocabulary_lines(b"") == []


def test_the_record_says_what_was_carried():
    record = W.WarmStartRecord(status="partial", source="run", source_id="tr-1", tables=2, rows_kept=90,
                               rows_new=10, rows_dropped=3, reason="1 variable kept its fresh values")
    assert record.summary() == ("partial from run tr-1; 2 embedding table(s): 90 rows kept, 10 new, 3 dropped "
                                "(1 variable kept its fresh values)")
    assert W.WarmStartRecord().summary() == "none"


def test_a_completed_run_records_what_it_started_from():
    from shared.contract import results
    from shared.contract.labels import job_id_for
    from shared.contract.pipeline_jobs import JobSnapshot
    from shared.domain import run_document, runs
    from tests.unit.test_run_document import AT, _built

    warm = W.WarmStartRecord(status="partial", source="run", source_id="tr-0", uri="gs://a/tr-0/model/saved_model",
                             variables_loaded=7, variables_fresh=1, tables=2, rows_kept=300, rows_new=20,
                             rows_dropped=4, reason="1 variable(s) kept their fresh values")
    training = results.TrainingMetrics(warm_start="partial", warm_start_warning=warm.reason,
                                       warm_start_record=warm).model_dump(mode="json")
    doc = {**_built(), "id": "tr-1", "run_number": 1, "version": 1, "updated_at": AT}
    doc = runs.record_submitted(runs.claim_for_submit(doc, 1, AT), 1, "projects/p/locations/r/pipelineJobs/j",
                                "gs://a/tr-1", AT)
    job = JobSnapshot(job_id=job_id_for("tr-1", 1), name="j", state="PIPELINE_STATE_SUCCEEDED", end_time=AT)
    completed = runs.apply_job_snapshot(doc, job, {"evaluation": {"blessed": True}, "training_metrics": training})
    run_document.check(completed)
    assert run_document.TrainingRun.from_document(completed).warm_start == warm
    assert warm.reason in completed["warnings"]
