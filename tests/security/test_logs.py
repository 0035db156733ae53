"""H2 (security review): the logs route sent the Cloud Logging filter a client wrote into the page token.
Each attack is replayed through the HTTP app, with Cloud Logging and Vertex answered by the protocol fakes'
logic (tests/protocol_fakes/logging.py, the official request types, in process), and must be refused with the
filter never leaving the server. The logs are every stage's now (tasks, Dataflow jobs, the Trainer's job): the
token carries one cursor over all of them, bound to the run, attempt, stage and severity."""
from __future__ import annotations

import base64
import json

import pytest

from shared.adapters.run_data_sources import RunDataSources
from shared.adapters.run_logs import CloudLoggingLogs
from shared.composition import Dependencies
from shared.http.app import create_app
from shared.domain import teams
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services import intake
from shared.services.ports import Effects
from shared.settings import Settings
from tests.builders import demo_member, local_settings, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository
from tests.protocol_fakes.logging import RunJobs

TOKEN = "security-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Alice's team, on which mallory may read (a viewer): she may page through the logs of its runs, and what
# she tries is to make a page token read other logs than the run's. Eve is on another team only.
TEAMS = teams.parse({"recs": {"members": {"alice@example.com": "admin", "mallory@example.com": "viewer"},
                              "model_names": ["*"], "buckets": ["*"]},
                     "ads": {"members": {"eve@example.com": "admin"}, "model_names": ["*"], "buckets": ["*"]}})
PROBE = 'logName:"cloudaudit.googleapis.com" OR resource.type="cloud_run_revision"'  # the review's probe_logs.py


class NoQuota:
    def check(self, *args):
        raise AssertionError("not asked")


class World:
    def __init__(self, main_jobs=("111",), caller="mallory@example.com"):
        self.jobs = RunJobs()
        self.main_jobs = main_jobs
        self.repo = InMemoryRepository()
        settings = local_settings(caller, TOKEN, teams=TEAMS)
        deps = Dependencies(repo=self.repo, publisher=FakePublisher(), store=None, settings=settings,
                            run_data=RunDataSources(self.jobs.logs, NoQuota()))
        self.client = create_app(deps).test_client()
        self.ids = seed_catalog(self.repo, member=demo_member("alice@example.com", TEAMS))

    @property
    def filters(self) -> list[str]:
        return [r.filter for r in self.jobs.logging.requests]

    def run(self, name: str) -> str:
        run_id = intake.create_run(self.repo, Effects(FakePublisher(), LocalTickerJobs()),
                                   run_body(self.ids["experiment"], name=name),
                                   *demo_member("alice@example.com", TEAMS))["id"]
        self.jobs.pipeline(run_id, 1, {f"Trainer-{n}": job for n, job in enumerate(self.main_jobs)})
        for n, job in enumerate(self.main_jobs):
            self.jobs.task_line(job, n, "secret audit entry")
            self.jobs.task_line(job, n + 0.5, "second line")
        self.jobs.dataflow_line(run_id, 1, "Transform", 0.7, "a worker line", "ERROR")
        return run_id

    def logs(self, run_id: str, **params):
        return self.client.get(f"/api/training-runs/{run_id}/logs", query_string=params, headers=AUTH)


def _refused(response) -> bool:
    return response.status_code == 400 and "page_token" in json.dumps(response.get_json())


def _rewrite(token: str, change) -> str:
    """The token's readable part decoded, changed, encoded again; a signature, if any, kept as it was."""
    body, dot, signature = token.partition(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    change(data)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode() + dot + signature


def test_the_reviews_probe_filter_in_a_page_token_is_refused_and_never_sent():
    world = World()
    run_id = world.run("alice-run")
    forged = base64.urlsafe_b64encode(json.dumps({"f": PROBE, "m": {}, "t": None}).encode()).decode()
    response = world.logs(run_id, page_token=forged)
    assert _refused(response), response.get_json()
    assert all("cloudaudit" not in f and "cloud_run_revision" not in f for f in world.filters)


def test_the_filter_is_the_servers_own_built_from_the_run():
    world = World(main_jobs=("111",))
    run_id = world.run("alice-run")
    first = world.logs(run_id, stage="Train", page_size=1).get_json()
    assert first["next_page_token"] and world.filters == [
        '((resource.type="ml_job" AND (resource.labels.job_id="111")))']
    second = world.logs(run_id, stage="Train", page_size=1, page_token=first["next_page_token"])
    assert second.status_code == 200 and world.filters[1] == world.filters[0]  # the token never carries a filter
    sent = world.jobs.logging.requests
    assert sent[1].page_token and sent[1].page_token != first["next_page_token"]  # Logging's own, kept server-side
    assert [e["message"] for e in first["entries"] + second.get_json()["entries"]] == ["secret audit entry",
                                                                                       "second line"]


def test_a_token_of_run_a_is_refused_on_run_b():
    world = World()
    run_a, run_b = world.run("alice-run"), world.run("bob-run")
    token = world.logs(run_a, stage="Train", page_size=1).get_json()["next_page_token"]
    sent = len(world.filters)
    assert _refused(world.logs(run_b, stage="Train", page_size=1, page_token=token))
    assert _refused(world.logs(run_a, stage="Examples", page_size=1, page_token=token))  # another stage either
    assert _refused(world.logs(run_a, stage="Train", severity="ERROR", page_size=1, page_token=token))  # or severity
    assert len(world.filters) == sent


def test_a_tampered_token_is_refused():
    world = World()
    run_id = world.run("alice-run")
    token = world.logs(run_id, stage="Train", page_size=1).get_json()["next_page_token"]

    def point_elsewhere(data):  # another project's job, whatever the token's layout
        for holder in (data, data.get("c") or {}):
            if "m" in holder:
                holder["m"] = {"999": "Train"}
            if "f" in holder:
                holder["f"] = 'resource.labels.job_id="999"'
    sent = len(world.filters)
    assert _refused(world.logs(run_id, stage="Train", page_size=1, page_token=_rewrite(token, point_elsewhere)))
    assert _refused(world.logs(run_id, stage="Train", page_size=1, page_token=token[:-2] + "AA"))
    assert len(world.filters) == sent


def test_an_expired_token_is_refused(monkeypatch):
    import shared.page_tokens as page_tokens

    world = World()
    run_id = world.run("alice-run")
    token = world.logs(run_id, stage="Train", page_size=1).get_json()["next_page_token"]
    later = page_tokens.time.time() + page_tokens.TTL_S + 60
    monkeypatch.setattr(page_tokens.time, "time", lambda: later)
    assert _refused(world.logs(run_id, stage="Train", page_size=1, page_token=token))


def test_a_job_id_vertex_reports_cannot_extend_the_filter():
    """Not in the review: a value interpolated into the filter comes from Vertex's answer; one that is not
    a job id (here one closing its quote) is left out rather than trusted."""
    world = World(main_jobs=("111", '222" OR logName:"cloudaudit.googleapis.com'))
    run_id = world.run("alice-run")
    assert world.logs(run_id, stage="Train").status_code == 200
    assert world.filters == ['((resource.type="ml_job" AND (resource.labels.job_id="111")))']


def test_another_teams_run_shows_no_logs_and_logging_is_never_asked():
    world = World(caller="eve@example.com")
    run_id = world.run("alice-run")
    assert world.logs(run_id).status_code == 403
    assert world.filters == []


def test_a_combined_token_of_all_stages_is_refused_for_one_stage_and_its_jobs_cannot_be_swapped():
    """The token of the all-stages stream holds one cursor over the tasks, the Dataflow jobs and the
    Trainer's job: it pages that stream only, and the jobs it carries (signed) cannot be pointed elsewhere."""
    world = World(main_jobs=("111",))
    run_id = world.run("alice-run")
    first = world.logs(run_id, page_size=1).get_json()
    assert {e["stage"] for e in first["entries"]} == {"Train"} and first["next_page_token"]
    assert 'resource.type="dataflow_step"' in world.filters[0]
    sent = len(world.filters)
    assert _refused(world.logs(run_id, stage="Transform", page_size=1, page_token=first["next_page_token"]))

    def other_dataflow_job(data):
        data["c"]["f"] = {"someone-elses-job": "Transform"}
    assert _refused(world.logs(run_id, page_size=1, page_token=_rewrite(first["next_page_token"], other_dataflow_job)))
    assert len(world.filters) == sent
    rest = world.logs(run_id, page_size=10, page_token=first["next_page_token"]).get_json()
    assert [e["stage"] for e in rest["entries"]] == ["Train", "Transform"]


def test_a_severity_that_is_not_one_is_refused_before_any_filter_is_built():
    world = World()
    run_id = world.run("alice-run")
    response = world.logs(run_id, severity='ERROR" OR logName:"x')
    assert response.status_code == 400 and "severity" in json.dumps(response.get_json())
    assert world.filters == []


def test_the_api_does_not_start_in_the_cloud_without_its_token_key():
    """Not in the review: a per-instance key would make tokens fail across instances, an empty one forgeable."""
    cloud = Settings.from_environ({"TRAINYARD_PIPELINE_BACKEND": "vertex", "GOOGLE_CLOUD_PROJECT": "p"})
    with pytest.raises(RuntimeError, match="TRAINYARD_CURSOR_KEY"):
        create_app(Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=None, settings=cloud,
                                run_data=RunDataSources(CloudLoggingLogs("p", "l"), NoQuota()),
                                scheduler_jobs=object(), dead_letters=object()))
    with pytest.raises(ValueError, match="at least 32"):
        Settings.from_environ({"TRAINYARD_CURSOR_KEY": "short"})
