"""Every run carries what started its current attempt in one typed block (`trigger`, shared/domain/triggers.py):
a person through the API or the CLI, a schedule's clock, run now, new data (the object), a retry, a GPU
fallback; `trainyard runs get` prints it."""
from __future__ import annotations

import json
from datetime import timedelta

from shared.domain import data_triggers, run_document, triggers
from shared.services import scheduling
from shared.services.actions import retry
from tests.builders import demo_member, run_body
from tests.unit.test_actions import AUTH, make_run, world  # noqa: F401 - the fixture
from tests.unit.test_data_triggers import T0, deliver, landed, make
from tests.unit.test_gpu_fallback import CAPACITY, World
from tests.unit.test_schedules import body, env  # noqa: F401 - the fixture
from trainyard_cli.__main__ import describe


def created(w, user_agent=None) -> dict:
    headers = {**AUTH, **({"User-Agent": user_agent} if user_agent else {})}
    response = w.client.post("/api/training-runs", data=json.dumps(run_body(w.ids["experiment"])), headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["training_run"]


def test_a_run_made_through_the_api_or_the_cli_says_who_and_which(world):
    by_cli = created(world, f"{triggers.CLI_USER_AGENT}/1")["trigger"]
    assert by_cli["kind"] == "manual" and by_cli["by"] == "dev@example.com" and by_cli["via"] == "cli"
    assert by_cli["attempt"] == 1 and by_cli["at"]
    assert created(world, "Mozilla/5.0")["trigger"]["via"] == "api"
    run_document.TrainingRun.from_document(world.repo.get_run(created(world)["id"]))  # declared, typed


def test_the_cli_client_says_it_is_the_cli():
    from trainyard_cli.client import ApiClient

    assert ApiClient("http://x", token="t").session.headers["User-Agent"].startswith(triggers.CLI_USER_AGENT)


def test_a_retry_and_a_gpu_fallback_say_so_and_keep_what_started_the_run(world):
    run = make_run(world, "failed")
    world.repo.mutate_run(run["id"], lambda d: {**d, "trigger": triggers.manual("owner@example.com", T0, "cli")})
    again = retry.start(world.repo, world.deps.effects, run["id"], "ops@example.com", retry.RetryBody(attempt=1))
    trigger = again["training_run"]["trigger"]
    assert trigger["kind"] == "retry" and trigger["by"] == "ops@example.com" and trigger["attempt"] == 2
    assert trigger["first"]["kind"] == "manual" and trigger["first"]["via"] == "cli"
    assert "triggered: retry by ops@example.com (attempt 2); first: manual, by owner@example.com (CLI)" in \
        describe(world.repo.get_run(run["id"]))
    w = World()
    w.fail(CAPACITY)
    fallback = w.repo.get_run(w.run["id"])["trigger"]
    assert fallback["kind"] == "gpu_fallback" and fallback["attempt"] == 2 and fallback["first"]["kind"] == "manual"


def test_a_schedules_runs_say_clock_run_now_or_the_data_that_landed(env):  # noqa: F811
    schedule = scheduling.create_schedule(env["repo"], body(env["ids"]), *demo_member("dev@example.com"),
                                          env["jobs"], at=T0 - timedelta(days=1))
    slot = T0 + timedelta(hours=1)
    fired = scheduling.fire_slot(env["repo"], env["effects"], schedule["id"], "tr-slot-1", slot, slot)["run"]
    assert fired["trigger"]["kind"] == "schedule" and fired["trigger"]["slot"] == slot
    assert fired["trigger"]["schedule_id"] == schedule["id"] and fired["trigger"]["by"] == triggers.SCHEDULE_CLOCK
    other = scheduling.create_schedule(env["repo"], body(env["ids"]), *demo_member("dev@example.com"),
                                       env["jobs"], at=T0 - timedelta(days=1))  # none of its runs active yet
    now = scheduling.trigger_schedule(env["repo"], env["effects"], other["id"], demo_member("ops@example.com")[0])
    assert now["training_run"] is not None, now["outcome"]
    stored = env["repo"].get_run(now["training_run"]["id"])["trigger"]
    assert stored["kind"] == "run_now" and stored["by"] == "ops@example.com"
    data_schedule = make(env)
    assert deliver(env, landed()) == {data_schedule["id"]: "fired"}
    run = env["repo"].get_run(data_triggers.run_id_for(data_schedule["id"], landed()))
    assert run["trigger"]["kind"] == "data"
    assert run["trigger"]["data"]["location"] == "gs://acme-recs-landing/interactions/part-1.csv"
    assert "new data on schedule" in triggers.describe(run["trigger"]) and "part-1.csv (version 1)" in \
        triggers.describe(run["trigger"])
