"""Canary deploys and rollbacks on the in-memory fakes: the decisions (shared/domain/canary.py), then the
whole loop through the API, the run-commands consumer and the reconciler: a clean watch is promoted, a
breach is rolled back, a rollback by hand, repeats that change nothing, and the endpoint history."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.contract.messages import RunCommand
from shared.domain import canary, runs
from shared.domain.canary import Observation
from shared.errors import Conflict
from shared.services import commands, reconcile
from tests.unit.scenario import T0
from tests.unit.test_actions import make_run, post, published_commands, world  # noqa: F401 - the fixture

LIMITS = {"percent": 10, "watch_minutes": 30, "max_error_rate": 0.05, "max_p95_latency_ms": 200.0, "min_requests": 20}
OLD = "old-model"

# A run whose canary is being watched, as the CLI tests store it (tests/unit/test_cli_canary.py, test_cli_routes.py).
NOW = runs.now()
CANARY_SERVING = {
    "vertex_model_resource_name": "projects/p/locations/l/models/7", "vertex_model_version": "1",
    "deployment_status": "canary", "is_deployed": True,
    "deployment": {"id": "d-1", "status": "canary", "endpoint_id": "prod", "traffic_split": 10,
                   "endpoint_resource_name": "local/endpoints/prod", "deployed_model_id": "new",
                   "previous_traffic": {"old": 100}, "requested_by": "cli@example.com", "requested_at": NOW,
                   "canary": {"percent": 10, "watch_minutes": 30, "max_error_rate": 0.01, "min_requests": 20,
                              "status": "watching", "watch_started_at": NOW, "watch_until": NOW + timedelta(minutes=30),
                              "last_check": {"requests": 120, "errors": 1, "error_rate": 1 / 120,
                                             "p95_latency_ms": 41.0, "at": NOW}}},
    "endpoint_history": [{"at": NOW, "by": "cli@example.com", "action": "canary_started",
                          "endpoint": "local/endpoints/prod", "deployed_model_id": "new", "from": {"old": 100},
                          "to": {"old": 90, "new": 10}, "reason": "canary: 10 % for 30 min"}]}



# ----------------------------------------------------------------------------- the decisions


def watched(**changes):
    return {**canary.start(LIMITS, T0), **changes}


@pytest.mark.parametrize("seen, minutes, action, says", [
    (Observation(100, 1, 80.0), 5, canary.WAIT, None),
    (Observation(100, 9, 80.0), 5, canary.ROLLBACK, "error rate 9.0% (9 of 100 requests)"),
    (Observation(100, 0, 450.0), 5, canary.ROLLBACK, "p95 latency 450 ms exceeds the limit of 200 ms"),
    (Observation(4, 2, 80.0), 5, canary.WAIT, None),  # 2 of 4: too few requests to judge a rate yet
    (Observation(4, 2, 80.0), 31, canary.ROLLBACK, "2 of 4 requests"),  # the whole watch saw only these
    (Observation(100, 5, 200.0), 31, canary.PROMOTE, "5 errors in 100 requests, p95 200 ms"),  # at the limits
    (Observation(0, 0, None), 31, canary.PROMOTE, "served no requests"),
])
def test_a_canary_is_judged_on_its_limits(seen, minutes, action, says):
    verdict = canary.judge(watched(), seen, T0 + timedelta(minutes=minutes))
    assert verdict.action == action
    assert (verdict.reason is None) if says is None else (says in verdict.reason)


def test_promoting_and_restoring_the_split():
    assert canary.promoted({"a": 90, "b": 10}, "b") == {"a": 0, "b": 100}
    # the split before the deploy comes back, over the models still there, in whole percents summing to 100
    assert canary.restored({"a": 70, "c": 30}, {"a": 60, "c": 30, "b": 10}, "b") == {"a": 70, "c": 30, "b": 0}
    assert canary.restored({"a": 1, "c": 2}, {"a": 0, "c": 0, "b": 100}, "b") == {"a": 33, "c": 67, "b": 0}
    assert canary.restored({}, {"a": 60, "b": 40}, "b") == {"a": 100, "b": 0}  # unknown before: the others now
    with pytest.raises(Conflict, match="nothing to roll back to"):
        canary.restored({"gone": 100}, {"b": 100}, "b")


def test_rolling_back_one_deploy_leaves_a_model_deployed_since_as_it_is():
    """Team A deployed b over a (a 100 before); team B then deployed c. A's rollback undoes A's deploy only:
    c keeps its share, a takes the rest, b goes to 0 (before: a took everything and c was starved)."""
    assert canary.restored({"a": 100}, {"a": 25, "b": 25, "c": 50}, "b") == {"a": 50, "b": 0, "c": 50}
    # several older models share the rest as before the deploy, in whole percents
    assert canary.restored({"a": 70, "d": 30}, {"a": 20, "d": 10, "b": 40, "c": 30}, "b") == {
        "a": 49, "d": 21, "b": 0, "c": 30}
    # the models since hold everything: nothing is taken from them, they keep it between them
    assert canary.restored({"a": 100}, {"a": 0, "b": 0, "c": 100}, "b") == {"a": 0, "b": 0, "c": 100}
    # nothing from before is left: the models since take all
    assert canary.restored({"gone": 100}, {"b": 60, "c": 40}, "b") == {"b": 0, "c": 100}


# ----------------------------------------------------------------------------- the loop on the fakes


class TrafficEndpoints:
    """Endpoints with a real traffic split: `deploy` adds the run's model beside OLD."""

    def __init__(self):
        self.splits: dict[str, dict] = {}
        self.changes: list[dict] = []

    def deploy(self, request, started=None, on_started=None):
        from shared.adapters.serving import DeployResult, split_traffic

        name = f"projects/p/locations/l/endpoints/{request.endpoint_id}"
        before = self.splits.setdefault(name, {OLD: 100})
        self.splits[name] = split_traffic(before, "dm-new", request.traffic_percent)
        return DeployResult(endpoint_resource_name=name, deployed_model_id="dm-new", traffic_split=self.splits[name],
                            previous_traffic_split=dict(before), predict_url=f"https://x/{name}:predict")

    def traffic(self, name):
        return dict(self.splits[name])

    def set_traffic(self, name, split):
        self.changes.append(dict(split))
        self.splits[name] = dict(split)
        return dict(split)


class ScriptedMetrics:
    def __init__(self):
        self.seen = Observation(0, 0, None)
        self.reads = []

    def read(self, name, deployed_model_id, since, until):
        self.reads.append((name, deployed_model_id, since, until))
        return self.seen


@pytest.fixture
def staged(world):  # noqa: F811 - the fixture imported above
    world.serving.endpoints, world.serving.metrics = TrafficEndpoints(), ScriptedMetrics()
    return world


def run_commands(w, *, kinds=None):
    """Carry out every queued run command (of `kinds`), as the run-commands consumer would; their outcomes."""
    outcomes = []
    for payload in published_commands(w):
        if kinds is None or payload["command"] in kinds:
            outcomes.append(commands.handle_command(RunCommand.model_validate(payload), w.repo, w.backend, w.store,
                                                    w.serving, effects=w.deps.effects, declared=w.deps.settings.teams))
    w.publisher.messages.clear()
    return outcomes


def reconcile_pass(w, later=timedelta(0)):
    return reconcile.reconcile(w.repo, w.deps.effects, w.backend, w.store, w.deps.settings, at=runs.now() + later)


def start_canary(w, **limits) -> dict:
    run = make_run(w, runs.COMPLETED)
    response = post(w, f"/api/training-runs/{run['id']}/deploy", {"endpoint_id": "123", "canary": {**LIMITS, **limits}})
    assert response.status_code == 202, response.get_json()
    assert run_commands(w) == ["canary"]
    return w.repo.get_run(run["id"])


def end_watch(w, run_id):
    w.repo.mutate_run(run_id, lambda d: {**d, "deployment": {**d["deployment"], "canary": {
        **d["deployment"]["canary"], "watch_until": runs.now() - timedelta(seconds=1)}}})


def test_a_canary_deploy_is_validated_naming_the_field(staged):
    run = make_run(staged, runs.COMPLETED)

    def field_of(body):
        response = post(staged, f"/api/training-runs/{run['id']}/deploy", body)
        assert response.status_code == 400, response.get_json()
        return response.get_json()["errors"][0]["field"]

    assert field_of({"canary": LIMITS}) == "canary"  # a new endpoint serves only this model
    assert field_of({"endpoint_id": "123", "canary": {**LIMITS, "percent": 100}}) == "canary.percent"
    assert field_of({"endpoint_id": "123", "canary": {**LIMITS, "watch_minutes": 0}}) == "canary.watch_minutes"
    assert field_of({"endpoint_id": "123", "canary": {**LIMITS, "max_error_rate": 2}}) == "canary.max_error_rate"
    assert field_of({"endpoint_id": "123", "canary": {**LIMITS, "colour": "red"}}) == "canary.colour"
    assert field_of({"endpoint_id": "123", "traffic_split": 50, "canary": LIMITS}) == "traffic_split"
    assert "deployment" not in staged.repo.get_run(run["id"])


def test_a_clean_watch_is_promoted_once(staged):
    run = start_canary(staged)
    deployment = run["deployment"]
    assert run["deployment_status"] == "canary" and deployment["canary"]["status"] == "watching"
    assert deployment["traffic"] == {"dm-new": 10, OLD: 90} and deployment["previous_traffic"] == {OLD: 100}
    assert deployment["canary"]["watch_until"] - deployment["canary"]["watch_started_at"] == timedelta(minutes=30)
    # every reconciler pass sends a check; inside the watch, a clean check waits and keeps its figures
    staged.serving.metrics.seen = Observation(200, 2, 90.0)
    report = reconcile_pass(staged)
    assert report["checked"] == {"canary": 1} and report["repaired"] == {}  # a routine check, not a repair
    assert run_commands(staged) == ["watching"]
    stored = staged.repo.get_run(run["id"])
    assert stored["deployment"]["canary"]["last_check"]["requests"] == 200 and stored["deployment_status"] == "canary"
    assert staged.serving.metrics.reads[0][2] == deployment["canary"]["watch_started_at"]  # since the watch began
    # the watch is over: promoted to 100 %, the old model kept at 0 for a later rollback
    end_watch(staged, run["id"])
    reconcile_pass(staged)
    check = published_commands(staged)
    assert run_commands(staged) == ["promoted"]
    stored = staged.repo.get_run(run["id"])
    assert stored["deployment_status"] == "deployed" and stored["deployment"]["canary"]["status"] == "promoted"
    assert staged.serving.endpoints.splits["projects/p/locations/l/endpoints/123"] == {"dm-new": 100, OLD: 0}
    assert [e["action"] for e in stored["endpoint_history"]] == ["canary_started", "promoted"]
    promoted = stored["endpoint_history"][1]
    assert promoted["from"] == {"dm-new": 10, OLD: 90} and promoted["to"] == {"dm-new": 100, OLD: 0}
    assert promoted["by"] == "trainyard (canary watch)" and "no breach" in promoted["reason"]
    # a late or repeated check changes nothing; the reconciler no longer watches it
    staged.publisher.messages.extend((t, p, a) for t, p, a in [("run-commands", check[0], {})])
    assert run_commands(staged) == ["skipped"]
    assert len(staged.serving.endpoints.changes) == 1 and reconcile_pass(staged)["checked"] == {}


def test_a_breach_rolls_traffic_back_automatically(staged):
    run = start_canary(staged)
    staged.serving.metrics.seen = Observation(120, 30, 95.0)
    reconcile_pass(staged)
    assert run_commands(staged) == ["rolled_back"]
    stored = staged.repo.get_run(run["id"])
    deployment = stored["deployment"]
    assert stored["deployment_status"] == "rolled_back" and stored["is_deployed"] is False
    assert deployment["canary"]["status"] == "breached" and "error rate 25.0%" in deployment["canary"]["reason"]
    assert deployment["rollback"]["automatic"] is True and deployment["canary"]["last_check"]["errors"] == 30
    assert staged.serving.endpoints.splits["projects/p/locations/l/endpoints/123"] == {"dm-new": 0, OLD: 100}
    last = stored["endpoint_history"][-1]
    assert last["action"] == "rolled_back" and last["from"] == {"dm-new": 10, OLD: 90}
    assert last["to"] == {"dm-new": 0, OLD: 100} and "25.0%" in last["reason"]
    # nothing further: no more checks, a repeat rollback command is skipped, a rollback by hand is a no-op
    assert reconcile_pass(staged)["checked"] == {}
    again = post(staged, f"/api/training-runs/{run['id']}/rollback")
    assert again.status_code == 200 and again.get_json()["changed"] is False
    assert len(staged.serving.endpoints.changes) == 1


def test_a_rollback_by_hand_stops_a_canary_and_is_resent_until_done(staged):
    run = start_canary(staged)
    response = post(staged, f"/api/training-runs/{run['id']}/rollback", {"reason": "bad recommendations in QA"})
    assert response.status_code == 202 and response.get_json()["training_run"]["deployment_status"] == "rolling_back"
    (command,) = published_commands(staged)
    assert command == {"command": "rollback", "run_id": run["id"], "deployment_id": run["deployment"]["id"]}
    staged.publisher.messages.clear()  # the command is lost: the reconciler sends it again once it is stale
    assert reconcile_pass(staged)["repaired"] == {}
    assert reconcile_pass(staged, timedelta(days=1))["repaired"] == {"rollback_resent": 1}
    assert run_commands(staged) == ["rolled_back"]
    stored = staged.repo.get_run(run["id"])
    assert stored["deployment"]["canary"]["status"] == "stopped"
    assert stored["endpoint_history"][-1]["by"] == "dev@example.com"
    assert stored["endpoint_history"][-1]["reason"] == "bad recommendations in QA"


def test_a_promoted_deploy_can_be_rolled_back_by_hand(staged):
    run = start_canary(staged)
    end_watch(staged, run["id"])
    reconcile_pass(staged)
    assert run_commands(staged) == ["promoted"]
    assert post(staged, f"/api/training-runs/{run['id']}/rollback").status_code == 202
    assert run_commands(staged) == ["rolled_back"]
    assert staged.serving.endpoints.splits["projects/p/locations/l/endpoints/123"] == {"dm-new": 0, OLD: 100}


def test_rollback_is_refused_where_nothing_can_go_back(staged):
    run = make_run(staged, runs.COMPLETED)
    refused = post(staged, f"/api/training-runs/{run['id']}/rollback")
    assert refused.status_code == 409 and "no model serving" in refused.get_json()["message"]
    post(staged, f"/api/training-runs/{run['id']}/deploy")  # its own new endpoint
    staged.serving.endpoints.deploy = lambda request, **_: TrafficEndpoints().deploy(
        type(request)(**{**request.__dict__, "endpoint_id": "own"}))
    run_commands(staged)
    refused = post(staged, f"/api/training-runs/{run['id']}/rollback")
    assert refused.status_code == 409 and "own endpoint" in refused.get_json()["message"]
    assert post(staged, f"/api/training-runs/{run['id']}/rollback", {"colour": "red"}).status_code == 400


def test_a_canary_in_deployment_config_is_staged_after_training(staged):
    from shared.services.actions import deploy

    run = make_run(staged, runs.COMPLETED, deployment_config={
        "action": "deploy_existing", "existing_endpoint_id": "123", "traffic_split": 10, "canary": LIMITS})
    assert deploy.after_training(staged.repo, staged.publisher, run) == "deploy_requested"
    assert run_commands(staged) == ["canary"]
    stored = staged.repo.get_run(run["id"])
    assert stored["deployment"]["canary"]["status"] == "watching" and stored["deployment"]["automatic"] is True


def test_deployment_configs_canary_stages_only_a_deploy_to_its_endpoint(staged):
    run = make_run(staged, runs.COMPLETED, deployment_config={
        "action": "deploy_existing", "existing_endpoint_id": "123", "traffic_split": 10, "canary": LIMITS})
    assert post(staged, f"/api/training-runs/{run['id']}/deploy", {"endpoint_name": "fresh"}).status_code == 202
    assert staged.repo.get_run(run["id"])["deployment"]["canary"] is None  # a new endpoint: all at once
    other = make_run(staged, runs.COMPLETED, deployment_config={
        "action": "deploy_existing", "existing_endpoint_id": "123", "traffic_split": 10, "canary": LIMITS})
    assert post(staged, f"/api/training-runs/{other['id']}/deploy").status_code == 202  # no body: the config's
    assert staged.repo.get_run(other["id"])["deployment"]["canary"]["percent"] == 10


def test_a_canary_in_deployment_config_is_validated_naming_the_field(staged):
    from tests.builders import run_body

    def errors(config):
        response = post(staged, "/api/training-runs", {**run_body(staged.ids["experiment"]), "deployment_config": config})
        assert response.status_code == 400, response.get_json()
        return " ".join(f"{e['field']}: {e['message']}" for e in response.get_json()["errors"])

    existing = {"action": "deploy_existing", "existing_endpoint_id": "123"}
    assert "deployment_config.canary.percent" in errors({**existing, "canary": {**LIMITS, "percent": 0}})
    assert "deployment_config.canary.watch_minutes" in errors({**existing, "canary": {"percent": 5}})
    assert "canary only goes with deploy_existing" in errors({"action": "deploy_new", "canary": LIMITS})
    assert "leave traffic_split out" in errors({**existing, "traffic_split": 30, "canary": LIMITS})
    made = post(staged, "/api/training-runs", {**run_body(staged.ids["experiment"]),
                                               "deployment_config": {**existing, "canary": LIMITS}})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["training_run"]["deployment_config"]["traffic_split"] == 10
