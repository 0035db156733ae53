"""The run document's one declaration (shared/domain/run_document.py): built there, checked by both
repositories on every write, read through its fields, versioned."""
from __future__ import annotations

import ast
import pathlib
from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.repository import FirestoreRepository
from shared.domain import run_document, run_search, runs
from shared.domain.run_document import RunDocumentError, TrainingRun
from shared.services import run_builder
from tests.builders import run_body, seed_catalog
from tests.fakes import InMemoryRepository

AT = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _built(**body) -> dict:
    repo = InMemoryRepository()
    ids = seed_catalog(repo)
    _, doc = run_builder.build_run(repo, run_body(ids["experiment"], **body), "dev@example.com", AT, "demo")
    return doc


def test_a_new_run_is_built_by_the_model_pending_its_first_attempt_in_the_current_version():
    doc = _built(notifications={"webhooks": [{"url": "https://hooks.example.com/x"}]})
    assert doc["schema_version"] == run_document.SCHEMA_VERSION
    assert (doc["status"], doc["attempt"], doc["attempts"], doc["current_stage"]) == (runs.PENDING, 1, [], "Compile")
    assert doc["stage_details"] == runs.initial_stages()
    assert doc["model_config"] == {"id": doc["model_config_id"], "name": "mdl-retrieval-001"}  # stored as model_config
    assert doc["total_epochs"] == doc["training_params"]["epochs"] == 5
    assert doc["ml_model"] == doc["name"] and doc["created_at"] == AT and doc["scheduled_at"] is None
    assert doc["base_experiment"]["display_name"].startswith("Exp #")
    assert set(doc) <= run_document.declared_keys()
    # what is built is what the repositories accept, gaining only its search tokens (shared/domain/run_search.py)
    assert run_document.check(doc) == run_search.indexed(doc)


def test_the_model_reads_back_exactly_the_document_it_was_read_from():
    doc = _built()
    assert TrainingRun.from_document(doc).to_document() == doc


def test_a_document_written_before_versions_reads_and_is_written_back_upgraded():
    legacy = {k: v for k, v in _built().items() if k != "schema_version"}
    legacy.update(id="tr-old", run_number=7, version=12, updated_at=AT, status=runs.COMPLETED, is_blessed=True,
                  recall_at_100=0.61, metrics={"recall_at_100": 0.61}, stopped_early=False,
                  vertex_model_resource_name="projects/p/locations/r/models/9", vertex_model_version="1",
                  deployment={"id": "d1", "status": "deployed", "endpoint_id": None, "endpoint_name": "shop",
                              "traffic_split": 100, "model_resource_name": "projects/p/locations/r/models/9",
                              "model_version_id": "1", "requested_by": "a@b.c", "requested_at": AT,
                              "automatic": True, "queued_at": AT, "operation": None, "error": None,
                              "endpoint_resource_name": "projects/p/locations/r/endpoints/5",
                              "deployed_model_id": "77", "traffic": {"77": 100}, "predict_url": "https://x",
                              "console_url": "https://y", "deployed_at": AT},
                  deployment_status="deployed", is_deployed=True, deployed_at=AT,
                  endpoint_resource_name="projects/p/locations/r/endpoints/5",
                  notifications_sent={"a001-completed-webhook-0": {"status": "sent", "at": AT, "error": None, "tries": 1}},
                  spend={"team": "demo", "month": "2026-03", "key": "tr-old-a1",
                         "estimate": {"gpu_hours": 1.0, "usd": 2.5, "gpus": 1, "train_hours": 1.0, "method": "rule"}})
    run = TrainingRun.from_document(legacy)
    assert run.schema_version == run_document.SCHEMA_VERSION and run.deployment.traffic == {"77": 100}
    assert run.model_config_ref.name == "mdl-retrieval-001" and run.spend.estimate.usd == 2.5
    repo = InMemoryRepository()
    repo.runs["tr-old"] = legacy  # as Firestore holds it
    written = repo.mutate_run("tr-old", lambda doc: {**doc, "warnings": ["seen"]})
    assert written["schema_version"] == run_document.SCHEMA_VERSION
    assert written["search_tokens"] == run_search.tokens(legacy) and "tr-old" in written["search_tokens"]  # gained
    assert {k: v for k, v in written.items()
            if k not in ("schema_version", "version", "updated_at", "warnings", "search_tokens")} == \
        {k: v for k, v in legacy.items() if k not in ("version", "updated_at", "warnings")}


def test_a_document_of_a_newer_version_is_refused_rather_than_misread():
    with pytest.raises(RunDocumentError, match="schema_version 2 is newer"):
        TrainingRun.from_document({**_built(), "schema_version": 2})


@pytest.mark.parametrize("change, named", [
    ({"stauts": "running"}, "stauts"),  # an undeclared key
    ({"attempt": "second"}, "attempt"),  # a wrong type
    ({"status": "finished"}, "status"),  # not a run status
    ({"deployment": {"id": "d1", "status": "deploying", "endpoint": "e"}}, "deployment.endpoint"),  # nested key
    ({"stage_details": [{"name": "Train", "status": "running", "eta": 5}]}, "stage_details.0.eta"),
    ({"notifications_sent": {"a001-failed-pubsub": {"status": "sent", "tries": "many"}}},
     "notifications_sent.a001-failed-pubsub.tries"),
])
def test_the_in_memory_repository_refuses_a_run_that_does_not_fit_naming_the_key(change, named):
    repo = InMemoryRepository()
    with pytest.raises(RunDocumentError, match=f"{named}:"):
        repo.create_run({**_built(), **change}, "m")
    assert repo.runs == {}
    stored, _ = repo.create_run(_built(), "m")
    with pytest.raises(RunDocumentError, match=f"{named}:"):
        repo.mutate_run(stored["id"], lambda doc: {**doc, **change})
    assert repo.get_run(stored["id"]) == stored  # nothing written


class _Ref:
    def __init__(self, doc_id):
        self.id = doc_id
        self.created = []

    def create(self, doc):
        self.created.append(doc)


class _Counter:
    class _Written:
        transform_results = [type("Value", (), {"integer_value": 3})()]

    def set(self, *args, **kwargs):
        return self._Written()


class _Db:
    """Just enough of the Firestore client for create_run: the counter and the new run's reference."""

    def __init__(self):
        self.refs = {}

    def collection(self, name):
        db = self

        class Collection:
            def document(self, doc_id):
                if name == "counters":
                    return _Counter()
                return db.refs.setdefault(doc_id, _Ref(doc_id))

        return Collection()


def test_the_firestore_repository_checks_each_run_before_it_writes_it():
    db = _Db()
    repo = FirestoreRepository("p", client=db)
    with pytest.raises(RunDocumentError, match="stauts:"):
        repo.create_run({**_built(), "stauts": "running"}, "m", run_id="tr-bad")
    assert db.refs["tr-bad"].created == []
    stored, created = repo.create_run(_built(), "m", run_id="tr-good")
    assert created and db.refs["tr-good"].created == [stored] and stored["run_number"] == 3

    written = []

    class Tx:
        def set(self, ref, doc):
            written.append(doc)

    repo._with_document = lambda collection, doc_id, what, act: act(Tx(), db.refs[doc_id], stored)
    with pytest.raises(RunDocumentError, match="progress_percent:"):
        repo.mutate_run("tr-good", lambda doc: {**doc, "progress_percent": "half"})
    assert written == []
    after = repo.mutate_run("tr-good", lambda doc: {**doc, "progress_percent": 50})
    assert written == [after] and after["version"] == 2


def test_every_transition_of_a_run_writes_a_declared_document():
    """The transitions of shared/domain/runs.py, over a run's life, each leave a document that fits."""
    from shared.contract.pipeline_jobs import JobSnapshot
    from shared.contract.labels import job_id_for

    doc = {**_built(), "id": "tr-1", "run_number": 1, "version": 1, "updated_at": AT}
    doc = runs.claim_for_submit(doc, 1, AT)
    doc = runs.record_submitted(doc, 1, "projects/p/locations/r/pipelineJobs/j", "gs://a/tr-1", AT)
    doc = runs.apply_epoch(doc, {"epoch": 1, "total_epochs": 5, "loss": 0.5, "metrics": {"recall_at_100": 0.2}},
                           AT, 0)
    failed = runs.record_failure(doc, 1, "Train", "out of memory", {"job_name": "j"}, AT + timedelta(minutes=5))
    retried = runs.prepare_retry(failed, "dev@example.com", AT, failed["training_params"], failed["gpu_config"], {})
    cancelled = runs.request_cancel(retried, "dev@example.com", AT)
    job = JobSnapshot(job_id=job_id_for("tr-1", 1), name="j", state="PIPELINE_STATE_SUCCEEDED", end_time=AT)
    completed = runs.apply_job_snapshot(doc, job, {"evaluation": {"blessed": True, "metrics": {"recall_at_100": 0.5}},
                                                   "registry": {"model_display_name": "m",
                                                                "model_resource_name": "projects/p/models/1",
                                                                "model_version_id": "1"}})
    deleted = runs.soft_delete(completed, "dev@example.com", AT, AT + timedelta(days=7))
    for each in (doc, failed, retried, cancelled, completed, deleted, runs.restore(deleted, "dev@example.com", AT)):
        run_document.check(each)
    assert TrainingRun.from_document(completed).evaluation_results.blessed is True


def test_a_completed_run_keeps_the_evaluations_lift_over_most_popular_and_over_ease():
    from shared.contract import results
    from shared.contract.labels import job_id_for
    from shared.contract.pipeline_jobs import JobSnapshot

    evaluation = results.Evaluation(
        metrics={"recall_at_100": 0.4}, baseline_metrics={"recall_at_100": 0.3}, threshold_metric="recall_at_100",
        threshold_value=0.3, actual_value=0.4, baseline_value=0.3, lift_percent=33.3, required_lift_percent=10.0,
        ease_metrics={"recall_at_100": 0.412}, ease_lambda=250.0, ease_value=0.412, lift_over_ease_percent=-2.9,
        required_lift_over_ease_percent=-10.0, passed=True, blessed=True).model_dump(mode="json")
    doc = {**_built(), "id": "tr-1", "run_number": 1, "version": 1, "updated_at": AT}
    doc = runs.record_submitted(runs.claim_for_submit(doc, 1, AT), 1, "projects/p/locations/r/pipelineJobs/j",
                                "gs://a/tr-1", AT)
    job = JobSnapshot(job_id=job_id_for("tr-1", 1), name="j", state="PIPELINE_STATE_SUCCEEDED", end_time=AT)
    kept = TrainingRun.from_document(runs.apply_job_snapshot(doc, job, {"evaluation": evaluation})).evaluation_results
    assert (kept.lift_percent, kept.required_lift_percent) == (33.3, 10.0)
    assert (kept.ease_value, kept.lift_over_ease_percent, kept.required_lift_over_ease_percent) == (0.412, -2.9, -10.0)
    assert kept.ease_skipped_reason is None
    skipped = {**evaluation, "ease_value": None, "lift_over_ease_percent": None, "ease_skipped_reason": "too many items"}
    kept = TrainingRun.from_document(runs.apply_job_snapshot(doc, job, {"evaluation": skipped})).evaluation_results
    assert (kept.ease_value, kept.ease_skipped_reason) == (None, "too many items")
    # every field the run declares is copied, and each is one the Evaluator writes
    assert runs.EVALUATION_FIELDS == tuple(run_document.EvaluationResults.model_fields)
    assert set(runs.EVALUATION_FIELDS) <= set(results.Evaluation.model_fields)


# --------------------------------------------------------------------------- reads name declared fields

# Variables that hold a run wherever they appear in shared/ — except in these places, where the same
# name holds another document (its keys are that document's own).
RUN_NAMES = {"run", "doc", "after", "before", "current", "new", "stored", "claimed", "moved", "existing", "updated"}
NOT_A_RUN = {
    ("shared/adapters/repository.py", "stored"): "a catalog entry (create_catalog)",
    ("shared/adapters/repository.py", "doc"): "a catalog entry (create_catalog)",
    ("shared/domain/access.py", "doc"): "an access document",
    ("shared/domain/audit.py", "doc"): "an audit record",
    ("shared/domain/schedules.py", "doc"): "a schedule",
    ("shared/domain/spend.py", "new"): "a spend ledger",
    ("shared/services/catalog_entries.py", "doc"): "a catalog entry",
    ("shared/services/lifecycle.py", "updated"): "a schedule (settle_schedule)",
    ("shared/services/scheduling.py", "doc"): "a schedule",
    ("shared/domain/deployments.py", "current"): "the run's deployment (run_document.Deployment)",
    ("shared/services/actions/deploy.py", "current"): "the run's deployment (run_document.Deployment)",
    ("shared/services/notification_targets.py", "doc"): "a run or a schedule (sealed alike)",
}


def _key_reads(tree: ast.AST):
    """(variable, key, line) of every `variable["key"]` and `variable.get/pop/setdefault("key")`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            yield node.value.id, node.slice.value, node.lineno
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("get", "pop", "setdefault") and isinstance(node.func.value, ast.Name) \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            yield node.func.value.id, node.args[0].value, node.lineno


def test_every_key_read_of_a_run_in_shared_names_a_declared_field():
    declared = run_document.declared_keys()
    undeclared = []
    for path in sorted((ROOT / "shared").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        for variable, key, line in _key_reads(ast.parse(path.read_text())):
            if variable in RUN_NAMES and (where, variable) not in NOT_A_RUN and key not in declared:
                undeclared.append(f"{where}:{line} {variable}[{key!r}]")
    assert undeclared == [], "read as a run's field but not declared in shared/domain/run_document.py"


def test_the_exceptions_to_the_read_check_are_still_needed():
    """An entry of NOT_A_RUN whose variable no longer reads an undeclared key is stale: remove it."""
    declared = run_document.declared_keys()
    used = set()
    for where, variable in NOT_A_RUN:
        tree = ast.parse((ROOT / where).read_text())
        if any(v == variable and key not in declared for v, key, _ in _key_reads(tree)):
            used.add((where, variable))
    assert set(NOT_A_RUN) - used == set()


def test_the_read_check_catches_a_misspelt_field():
    tree = ast.parse("def f(run):\n    return run['stauts'], run.get('attempt')\n")
    assert [(v, k) for v, k, _ in _key_reads(tree) if k not in run_document.declared_keys()] == [("run", "stauts")]
