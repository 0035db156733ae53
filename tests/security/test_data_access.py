"""H1 replayed: a member of one team tries to read data that is not their team's, through the HTTP API
(shared/http/app.py with the in-memory fakes), the submitter and the compiler; every attempt is refused
(docs/security.md, "Data confined to each team")."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from shared.adapters.artifact_store import ArtifactStore
from shared.domain import teams
from shared.errors import PermanentError
from shared.http.app import Dependencies, create_app
from shared.services import catalog_entries, submission
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services.ports import Effects
from shared.settings import get_settings
from tests.builders import dataset_body, feature_config_body, local_settings, model_config_body
from tests.fakes import FakeBackend, FakeCompiler, FakePublisher, InMemoryRepository
from tests.unit.test_schedules import NoJobs

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
MALLORY, ALICE, OPS = "mallory@example.com", "alice@example.com", "ops@example.com"
DECLARED = teams.parse({
    "recs": {"members": {MALLORY: "trainer", ALICE: "admin"}, "model_names": ["*"],
             "datasets": ["warehouse-prj.recs_events"], "buckets": ["gs://recs-data/", "gs://shared-data/recs/"]},
    "hr": {"members": {"hr-lead@example.com": "admin"}, "datasets": ["warehouse-prj.hr"], "buckets": ["gs://hr-data/"]},
})
ADMINS = frozenset({OPS})
# The review's P4 probe (probe_sql.py): closes the table's backticks and unions in another dataset.
P4_TABLE = "warehouse-prj.recs_events.t` AS t UNION ALL SELECT ssn, name, 0 FROM `warehouse-prj.hr.employees"
RECS_TABLE = {"kind": "bigquery", "table": "warehouse-prj.recs_events.purchases"}


@pytest.fixture
def repo():
    return InMemoryRepository()


def client_as(repo, email, declared=DECLARED):
    settings = local_settings(email, TOKEN, teams=declared, admins=ADMINS)
    app = create_app(Dependencies(repo=repo, publisher=FakePublisher(), store=ArtifactStore(), settings=settings,
                                  scheduler_jobs=NoJobs()))
    return app.test_client()


def post(client, path, body):
    return client.post(path, data=json.dumps(body), headers=AUTH)


def fields(response) -> dict:
    return {e["field"]: e["message"] for e in response.get_json().get("errors", [])}


def new_dataset(repo, email=MALLORY, **overrides):
    return post(client_as(repo, email), "/api/datasets", dataset_body(**overrides))


# ----------------------------------------------------------------------------- BigQuery names


def test_the_p4_backtick_probe_is_refused_at_the_api(repo):
    response = new_dataset(repo, source={"kind": "bigquery", "table": P4_TABLE})
    assert response.status_code == 400, response.get_json()
    assert "is not project.dataset.table" in fields(response)["source.bigquery.table"]
    assert repo.list_catalog("datasets", 10) == []


@pytest.mark.parametrize("columns, field", [
    ({"user_id": "customer_id` FROM `warehouse-prj.hr.employees` --"}, "columns.user_id"),
    ({"timestamp": "ts`, (SELECT ssn FROM `warehouse-prj.hr.employees` LIMIT 1) AS `x"}, "columns.timestamp"),
    ({"label": "a b"}, "columns.label"),
])
def test_a_column_name_that_smuggles_sql_is_refused(repo, columns, field):
    body_columns = {**dataset_body()["columns"], **columns}
    response = new_dataset(repo, source=RECS_TABLE, columns=body_columns)
    assert response.status_code == 400 and "is not a column name" in fields(response)[field], response.get_json()


def test_feature_columns_that_smuggle_sql_are_refused(repo):
    extra = new_dataset(repo, source=RECS_TABLE, features=["segment", "city`, `ssn"])
    assert extra.status_code == 400 and "features.1" in fields(extra)
    config = feature_config_body()
    config["features"][0]["column"] = "customer_id` FROM `warehouse-prj.hr.employees` --"
    response = post(client_as(repo, MALLORY), "/api/feature-configs", config)
    assert response.status_code == 400 and "features.0.column" in fields(response), response.get_json()


# ----------------------------------------------------------------------------- the team's datasets


@pytest.mark.parametrize("table", [
    "warehouse-prj.hr.employees",                 # another team's dataset
    "warehouse-prj.recs_events_private.salaries",  # a dataset whose name merely starts like the team's
    "other-prj.recs_events.purchases",           # the same dataset name in another project
])
def test_a_table_outside_the_teams_datasets_is_refused(repo, table):
    response = new_dataset(repo, source={"kind": "bigquery", "table": table})
    assert response.status_code == 400, response.get_json()
    message = fields(response)["source.bigquery.table"]
    assert "not one team 'recs' may read" in message and "warehouse-prj.recs_events" in message


def test_a_table_in_the_teams_dataset_is_accepted(repo):
    response = new_dataset(repo, source=RECS_TABLE)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["item"]["team"] == "recs"


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize("uri, says", [
    ("gs://hr-data/salaries.csv", "not under a bucket team 'recs' may read"),
    ("gs://recs-data/../hr-data/salaries.csv", "'..'"),
    ("gs://shared-data/recs/../hr/salaries.csv", "'..'"),
    ("gs://shared-data/recs-private/x.csv", "not under a bucket"),  # a folder prefix, not a string prefix
    ("gs://shared-data/recs", "not under a bucket"),
    ("/etc/passwd", "a local path is read only by the local stack"),
    ("data/transactions.csv", "a local path is read only by the local stack"),
    ("file:///etc/passwd", "only gs:// addresses"),
    ("https://evil.example/x.csv", "only gs:// addresses"),
    ("gs://HR-DATA/x.csv", "not a bucket name"),
])
def test_a_file_source_outside_the_teams_buckets_is_refused(repo, uri, says):
    response = new_dataset(repo, source={"kind": "files", "uri": uri, "format": "csv"})
    assert response.status_code == 400, response.get_json()
    assert says in fields(response)["source.files.uri"]


@pytest.mark.parametrize("uri", ["gs://recs-data/events.csv", "gs://shared-data/recs/2024/*.csv",
                                 "gs://shared-data//recs/./2024/"])
def test_files_under_the_teams_buckets_are_accepted(repo, uri):
    response = new_dataset(repo, source={"kind": "files", "uri": uri, "format": "csv"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["item"]["source"]["uri"].startswith(("gs://recs-data/", "gs://shared-data/recs/"))


def test_the_local_demo_team_may_still_read_local_files(repo):
    client = client_as(repo, "dev@example.com", declared=teams.demo("dev@example.com"))
    assert post(client, "/api/datasets", dataset_body()).status_code == 201


# ----------------------------------------------------------------------------- free SQL


@pytest.mark.parametrize("email", [MALLORY, ALICE])  # a trainer, and the team's own admin
def test_free_sql_from_anyone_but_a_platform_admin_is_refused(repo, email):
    query = "SELECT ssn AS customer_id, name AS product_id, 0 AS ts FROM `warehouse-prj.hr.employees`"
    response = new_dataset(repo, email, source={"kind": "bigquery", "query": query})
    assert response.status_code == 403, response.get_json()
    assert "platform admins" in response.get_json()["message"]
    assert repo.list_catalog("datasets", 10) == []


def test_a_platform_admin_may_write_free_sql(repo):
    response = new_dataset(repo, OPS, team="recs", source={"kind": "bigquery", "query": "SELECT 1"})
    assert response.status_code == 201, response.get_json()


# ----------------------------------------------------------------------------- runs


def _configs(repo, team="recs"):
    member = (teams.caller(OPS, DECLARED, ADMINS), DECLARED)
    features = catalog_entries.create(repo, "feature_configs", {**feature_config_body(), "team": team}, *member)
    model = catalog_entries.create(repo, "model_configs", {**model_config_body(), "team": team}, *member)
    return {"feature_config_id": features["id"], "model_config_id": model["id"], "model_type": "retrieval"}


def _run_body(dataset_id, configs, name="recs-model"):
    return {"name": name, "dataset_id": dataset_id, "training_params": {"epochs": 1}, **configs}


def test_a_run_on_another_teams_dataset_is_refused(repo):
    hr = catalog_entries.create(repo, "datasets", dataset_body(team="hr", source={
        "kind": "bigquery", "table": "warehouse-prj.hr.employees"}), teams.caller(OPS, DECLARED, ADMINS), DECLARED)
    response = post(client_as(repo, MALLORY), "/api/training-runs", _run_body(hr["id"], _configs(repo)))
    assert response.status_code in (400, 403), response.get_json()
    if response.status_code == 400:
        assert "not one team 'recs' may read" in fields(response)["dataset_id"]
    assert repo.runs == {}


def test_a_schedule_on_another_teams_dataset_is_refused(repo):
    """Its slot runs would fail at Compile anyway; the schedule itself is refused when it is made."""
    hr = catalog_entries.create(repo, "datasets", dataset_body(team="hr", source={
        "kind": "bigquery", "table": "warehouse-prj.hr.employees"}), teams.caller(OPS, DECLARED, ADMINS), DECLARED)
    body = {"name": "nightly", "schedule_type": "daily", "time_of_day": "03:00", "timezone": "UTC",
            "run_template": _run_body(hr["id"], _configs(repo))}
    # With no role on 'hr', Mallory may not even name its dataset (the team check comes first).
    response = post(client_as(repo, MALLORY), "/api/training/schedules", body)
    assert response.status_code == 403 and response.get_json()["team"] == "hr", response.get_json()
    assert repo.schedules == {}
    # A viewer of 'hr' may see the dataset, but the schedule is 'recs''s, and 'recs' may not read it.
    hr_viewer = teams.parse({
        "recs": {"members": {MALLORY: "trainer", ALICE: "admin"}, "model_names": ["*"],
                 "datasets": ["warehouse-prj.recs_events"], "buckets": ["gs://recs-data/", "gs://shared-data/recs/"]},
        "hr": {"members": {"hr-lead@example.com": "admin", MALLORY: "viewer"}, "datasets": ["warehouse-prj.hr"],
               "buckets": ["gs://hr-data/"]}})
    response = post(client_as(repo, MALLORY, declared=hr_viewer), "/api/training/schedules", body)
    assert response.status_code == 400, response.get_json()
    assert "not one team 'recs' may read" in fields(response)["run_template.dataset_id"]
    assert repo.schedules == {}


def test_a_stored_dataset_with_the_p4_probe_cannot_be_run(repo):
    """A document written before these rules (or around the API) is checked as it is now."""
    legacy = repo.create_catalog("datasets", {**dataset_body(source={"kind": "bigquery", "table": P4_TABLE}),
                                              "team": "recs", "created_by": MALLORY})
    response = post(client_as(repo, MALLORY), "/api/training-runs", _run_body(legacy["id"], _configs(repo)))
    assert response.status_code == 400 and "no longer valid" in fields(response)["dataset_id"], response.get_json()


def _submitted(repo, run, settings):
    backend, compiler = FakeBackend(), FakeCompiler()
    outcome = submission.submit(submission.RunSubmit(run_id=run["id"], attempt=1), repo, backend, ArtifactStore(),
                                submission.Compiler(compiler.compile_run, compiler.module_files), settings,
                                Effects(FakePublisher(), LocalTickerJobs()))
    return outcome, repo.get_run(run["id"]), compiler


def _submit_settings(tmp_path, declared):
    return replace(get_settings(), artifacts_root=str(tmp_path / "artifacts"), pipeline_root=str(tmp_path / "root"),
                   project="proj", teams=declared, admins=ADMINS)


def test_a_run_on_a_dataset_its_team_may_no_longer_use_fails_at_compile(repo, tmp_path):
    dataset = new_dataset(repo, source=RECS_TABLE).get_json()["item"]
    run = post(client_as(repo, MALLORY), "/api/training-runs",
               _run_body(dataset["id"], _configs(repo))).get_json()["training_run"]
    # An operator takes the dataset away from the team (Terraform's teams, redeployed) before it compiles.
    shrunk = tuple(replace(t, datasets=()) if t.name == "recs" else t for t in DECLARED)
    outcome, stored, compiler = _submitted(repo, run, _submit_settings(tmp_path, shrunk))
    assert outcome == "failed" and compiler.compiled == []
    assert stored["error_stage"] == "Compile"
    assert "warehouse-prj.recs_events.purchases" in stored["error_message"]
    assert "not one team 'recs' may read" in stored["error_message"]


def test_a_query_dataset_compiles_only_if_a_platform_admin_wrote_it(repo, tmp_path):
    configs = _configs(repo)
    admin_sql = new_dataset(repo, OPS, team="recs", source={"kind": "bigquery", "query": "SELECT 1"}).get_json()["item"]
    forged = repo.create_catalog("datasets", {**dataset_body(source={"kind": "bigquery", "query": "SELECT 1"}),
                                              "team": "recs", "created_by": MALLORY})  # around the API
    settings = _submit_settings(tmp_path, DECLARED)
    client = client_as(repo, MALLORY)
    good = post(client, "/api/training-runs", _run_body(admin_sql["id"], configs, "admin-sql")).get_json()
    assert _submitted(repo, good["training_run"], settings)[0] == "submitted"
    refused = post(client, "/api/training-runs", _run_body(forged["id"], configs, "forged-sql"))
    assert refused.status_code == 400 and "platform admins" in fields(refused)["dataset_id"]


# ----------------------------------------------------------------------------- the compiler


def test_the_compiler_refuses_the_p4_probe_even_if_it_got_past_the_api(tmp_path):
    pytest.importorskip("tfx")
    from pipeline_compiler.demo_data import demo_run_spec
    from pipeline_compiler.pipeline import bigquery_queries

    spec = demo_run_spec(str(tmp_path / "x.csv"), "gs://a/b", str(tmp_path / "root"),
                         dataset={"name": "bq", "source": RECS_TABLE, "columns": {
                             "user_id": "customer_id", "item_id": "product_id", "timestamp": "timestamp"}})
    assert "FROM `warehouse-prj`.`recs_events`.`purchases` AS t" in bigquery_queries(spec)["train"]
    object.__setattr__(spec.dataset.source, "table", P4_TABLE)  # as a document written around the checks
    with pytest.raises(PermanentError, match="cannot be queried safely") as refused:
        bigquery_queries(spec)
    assert refused.value.stage == "Compile"
    object.__setattr__(spec.dataset.source, "table", RECS_TABLE["table"])
    object.__setattr__(spec.dataset.columns, "timestamp", "timestamp` < 0 UNION ALL SELECT ssn FROM `x")
    with pytest.raises(PermanentError, match="is not a column name"):
        bigquery_queries(spec)
