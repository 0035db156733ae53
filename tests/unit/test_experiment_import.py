"""POST /api/experiments:import-from (shared/services/experiment_import.py, docs/import.md): the API reads a
tracked experiment's runs (a fake source here; the real MLflow server in tests/browser/test_import.py) and
imports each through the same code as the CLI, answering per run; a re-import is `unchanged`; a bad field,
a wrong mapping and an unreadable source each answer what is wrong, never a 500. Every answer is the
documented one."""
from __future__ import annotations

import json

import jsonschema
import pytest

from shared.domain.import_mapping import SourceError
from shared.http.app import Dependencies, create_app
from shared.http.openapi import document
from shared.services.experiment_import import SourcePolicy
from tests.builders import local_settings
from tests.unit.test_import_mapping import a_logged_run

TOKEN = "test-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
MLFLOW = {"source": "mlflow", "tracking_uri": "http://localhost:5000", "experiment": "quick"}


class FakeRuns:
    """The runs of one source experiment, and what the route asked of it."""

    def __init__(self, runs=(), error=None):
        self.runs_list, self.error, self.opened = list(runs), error, []
        self.name, self.location = "mlflow", "http://localhost:5000"

    def __call__(self, source, **where):
        self.opened.append({"source": source, **where})
        return self

    def runs(self, experiment):
        if self.error:
            raise SourceError(self.error)
        yield from self.runs_list


@pytest.fixture
def source():
    return FakeRuns([a_logged_run("r1"), a_logged_run("r2", epochs="7"),
                     a_logged_run("r3", model_type="no-such-kind"), a_logged_run("r4")])


@pytest.fixture
def post(repo, publisher, store, source):
    client = create_app(Dependencies(repo=repo, publisher=publisher, store=store, experiment_runs=source,
                                     settings=local_settings("dev@example.com", TOKEN))).test_client()
    doc = document()["paths"]["/api/experiments:import-from"]["post"]

    def _post(body) -> tuple[int, dict]:
        response = client.post("/api/experiments:import-from", headers=HEADERS, data=json.dumps(body))
        documented = doc["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
        jsonschema.validate(response.get_json(), {**documented, "components": document()["components"]})
        return response.status_code, response.get_json()
    return _post


def test_every_run_is_imported_and_a_re_import_is_unchanged(post, repo, source):
    source.runs_list[3].status = "RUNNING"
    code, answer = post(MLFLOW)
    assert code == 200, answer
    assert answer["counts"] == {"created": 2, "failed": 1, "skipped": 1}
    rows = {row["run_id"]: row for row in answer["runs"]}
    assert rows["r4"]["result"] == "skipped (running)"
    assert rows["r3"]["result"] == "failed" and rows["r3"]["errors"][0]["field"].startswith("model_configs.model_type")
    made = repo.get_catalog("experiments", rows["r1"]["experiment_id"])
    assert made["source"]["kind"] == "mlflow" and made["dataset_id"] == rows["r1"]["ids"]["datasets"]
    # r1 and r2 share their dataset, feature config and model config: one entry each
    assert rows["r1"]["ids"] == {**rows["r2"]["ids"]} and len(repo.catalog["datasets"]) == 1
    assert source.opened[0]["tracking_uri"] == "http://localhost:5000" and source.opened[0]["allowed"] is not None

    code, again = post(MLFLOW)
    assert code == 200 and again["counts"] == {"unchanged": 2, "failed": 1, "skipped": 1}
    assert len(repo.catalog["experiments"]) == 2


def test_an_import_past_one_requests_time_limit_goes_on_in_parts_that_add_up_to_one_import(repo, publisher, store, source):
    """With no time left after the first run (TRAINYARD_IMPORT_REQUEST_S = 0) each request imports one run and
    answers next_after; asked again from there until it is null, every run is imported once, in run-id order,
    and the parts' configs are the same entries (content-addressed), as one request would have made them."""
    source.runs_list.reverse()  # the source's own order is not the parts' order
    client = create_app(Dependencies(repo=repo, publisher=publisher, store=store, experiment_runs=source,
                                     settings=local_settings("dev@example.com", TOKEN, import_request_s=0))).test_client()
    doc = document()["paths"]["/api/experiments:import-from"]["post"]["responses"]["200"]["content"]
    parts, body = [], dict(MLFLOW)
    while True:
        response = client.post("/api/experiments:import-from", headers=HEADERS, data=json.dumps(body))
        answer = response.get_json()
        assert response.status_code == 200, answer
        jsonschema.validate(answer, {**doc["application/json"]["schema"], "components": document()["components"]})
        parts.append([row["run_id"] for row in answer["runs"]])
        if answer["next_after"] is None:
            break
        assert answer["next_after"] == parts[-1][-1]
        body["after"] = answer["next_after"]
    assert parts == [["r1"], ["r2"], ["r3"], ["r4"]]
    assert len(repo.catalog["experiments"]) == 3 and len(repo.catalog["datasets"]) == 1  # r3 fails alone

    whole = import_runs_at_once(repo, source)
    assert whole["counts"] == {"unchanged": 3, "failed": 1} and whole["next_after"] is None


def import_runs_at_once(repo, source):
    """The same import in one part (no deadline), as the CLI does."""
    from shared.domain.teams import caller
    from shared.services import experiment_import

    who = caller("dev@example.com", local_settings().teams, admins=["dev@example.com"])
    post = experiment_import.stored_by(repo, who, local_settings().teams)
    return experiment_import.import_runs(source, experiment_import.mapping_for("mlflow", None), "quick", post)


def test_a_dry_run_checks_every_run_and_writes_nothing(post, repo):
    code, answer = post({**MLFLOW, "dry_run": True})
    assert code == 200 and answer["counts"] == {"valid": 3, "failed": 1} and answer["dry_run"] is True
    assert repo.catalog.get("experiments", {}) == {}


def test_a_mapping_given_as_text_is_used_and_a_wrong_one_names_the_mapping(post, repo):
    from shared.services.experiment_import import default_mapping_text

    renamed = default_mapping_text("mlflow").replace('name: "{run.name}"', 'name: "imported {run.name}"')
    code, answer = post({**MLFLOW, "mapping": renamed})
    assert code == 200 and answer["counts"]["created"] == 3
    assert sorted(e["name"] for e in repo.catalog["experiments"].values())[0].startswith("imported ")
    code, answer = post({**MLFLOW, "mapping": "version: 1\nexperimentz: {}\n"})
    assert code == 400 and answer["errors"][0]["field"] == "mapping"
    assert "unknown key 'experimentz'" in answer["errors"][0]["message"]
    code, answer = post({**MLFLOW, "mapping": "datasets: [unclosed"})
    assert code == 400 and "not YAML/JSON" in answer["errors"][0]["message"]


@pytest.mark.parametrize("body,fields", [
    ({"source": "wandb", "experiment": "quick"}, ["source"]),
    ({"source": "mlflow", "experiment": "quick"}, ["tracking_uri"]),
    ({**MLFLOW, "experiment": " "}, ["experiment"]),
    ({**MLFLOW, "colour": "red"}, ["colour"]),
    ({**MLFLOW, "dry_run": "yes"}, ["dry_run"]),
    ({"source": "vertex", "experiment": "q"}, ["project", "location"]),
    ({"source": "vertex", "experiment": "q", "project": "trainyard-local", "location": "evil.example/x"}, ["location"]),
    ({**MLFLOW, "team": 7}, ["team"]),
])
def test_bad_input_is_a_400_naming_the_field_and_reads_nothing(post, source, body, fields):
    code, answer = post(body)
    assert code == 400 and [e["field"] for e in answer["errors"]] == fields
    assert source.opened == []


def test_an_unreadable_source_is_a_502_naming_it(post, source):
    source.error = "MLflow at http://localhost:5000: Connection refused"
    code, answer = post(MLFLOW)
    assert code == 502 and answer["error"] == "source_unavailable" and "MLflow at http://localhost:5000" in answer["message"]


def test_vertex_is_read_in_the_deployments_project_only(post, source):
    code, answer = post({"source": "vertex", "experiment": "q", "project": "someone-elses", "location": "europe-west4"})
    assert code == 400 and answer["errors"][0]["field"] == "project" and "TRAINYARD_IMPORT_VERTEX_PROJECTS" in \
        answer["errors"][0]["message"]
    source.name, source.location = "vertex", "projects/trainyard-local/locations/europe-west4"
    code, answer = post({"source": "vertex", "experiment": "q", "project": "trainyard-local", "location": "europe-west4"})
    assert code == 200, answer
    assert source.opened[-1] | {"allowed": None} == {"source": "vertex", "project": "trainyard-local",
                                                       "location": "europe-west4", "tracking_uri": None, "allowed": None}


@pytest.mark.parametrize("url,allowed", [
    ("http://localhost:5000", True), ("https://mlflow.internal", True), ("http://mlflow.internal:8080/x", True),
    ("http://MLFLOW.internal", True), ("http://mlflow.internal.evil.io", False), ("http://evil.io/?mlflow.internal", False),
    ("http://mlflow.internal@169.254.169.254/", False), ("http://169.254.169.254/computeMetadata/v1/", False),
    ("ftp://localhost/", False), ("http://tracking:5000", True), ("http://tracking:5001", False),
    ("http://localhost:99999", False), ("file:///etc/passwd", False)])
def test_the_policy_admits_only_the_listed_hosts(url, allowed):
    policy = SourcePolicy(("localhost", "mlflow.internal", "tracking:5000"), ())
    assert policy.host_allowed(url) is allowed


def test_the_clis_by_api_import_asks_again_from_next_after_until_the_import_is_whole():
    from types import SimpleNamespace

    from trainyard_cli.import_commands import _by_api

    parts = {None: {"runs": [{"run_id": "r1"}, {"run_id": "r2"}], "counts": {"created": 2}, "next_after": "r2"},
             "r2": {"runs": [{"run_id": "r3"}], "counts": {"created": 1, "failed": 0}, "next_after": None}}
    asked = []

    class Client:
        def post(self, path, body):
            asked.append((path, body.get("after")))
            return parts[body.get("after")]

    args = SimpleNamespace(token_file=None, api_endpoint=None, source="mlflow", experiment="quick", dry_run=False,
                           tracking_uri="http://localhost:5000", team=None, mapping=None)
    done = _by_api(args, Client())
    assert asked == [("/api/experiments:import-from", None), ("/api/experiments:import-from", "r2")]
    assert [r["run_id"] for r in done["runs"]] == ["r1", "r2", "r3"] and done["counts"] == {"created": 3, "failed": 0}
