"""`trainyard schedules create --on-new-data` and what `schedules get` shows of a data trigger, through the
CLI against the HTTP app (the fixtures of test_cli_routes.py)."""
from __future__ import annotations

from datetime import datetime, timezone

from shared.domain.data_triggers import DataEvent
from shared.services import data_triggers
from shared.services.ports import Effects
from tests.unit.test_cli_routes import SCHEDULE_YAML, api, run_cli, write  # noqa: F401 (api is a fixture)
from tests.unit.test_schedules import NoJobs

DATA_YAML = SCHEDULE_YAML.replace("schedule_type: daily", "schedule_type: data").replace('time_of_day: "02:00"\n', "")


def test_a_data_schedule_from_the_cli_shows_its_trigger_and_last_new_data(api, publisher, tmp_path):
    file = write(tmp_path, "s.yaml", DATA_YAML.format(experiment=api["ids"]["experiment"]))
    code, out = run_cli("schedules", "create", "-f", file, "--on-new-data", "gs://acme-landing/interactions/",
                        "--min-interval-minutes", "30")
    assert code == 0, out
    assert "on new data only" in out and "on new data: gs://acme-landing/interactions/ (at most one run per 30 min)" in out
    schedule_id = out.split()[0]
    at = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
    data_triggers.on_data_event(api["repo"], Effects(publisher, NoJobs()),
                                DataEvent("gcs", "gs://acme-landing/interactions/a.csv", "17", at), at)
    code, out = run_cli("schedules", "get", schedule_id)
    assert code == 0 and "last new data: gs://acme-landing/interactions/a.csv #17 at 2026-12-06T09:00:00Z" in out
    assert ": fired, run " in out and " data " in out  # the runs table's BY column


def test_a_clock_schedule_also_on_new_data_and_the_usage_errors(api, tmp_path, capsys):
    file = write(tmp_path, "s.yaml", SCHEDULE_YAML.format(experiment=api["ids"]["experiment"]))
    code, out = run_cli("schedules", "create", "-f", file, "--on-new-data", "bigquery:acme-recs.events.interactions")
    assert code == 0 and "daily at 02:00" in out and "on new data: acme-recs.events.interactions" in out
    code, out = run_cli("schedules", "create", "-f", file, "--on-new-data", "ftp://x")
    assert code == 2 and "--on-new-data 'ftp://x'" in out + capsys.readouterr().err
    code, out = run_cli("schedules", "create", "-f", file, "--min-interval-minutes", "5")
    assert code == 2 and "give --on-new-data" in out + capsys.readouterr().err
    code, out = run_cli("schedules", "create", "-f", file, "--on-new-data", "gs://NOT_A_BUCKET/x")
    assert code == 1 and "data_trigger.bucket" in out + capsys.readouterr().err
