"""`trainyard runs|schedules|catalog list`: search and filters sent to the server, one page with the
token of the next, or --all pages (trainyard_cli/paging.py)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from tests.builders import dataset_body, demo_member, run_body
from tests.unit.test_cli import api, run_cli  # noqa: F401 (the fixture)

T0 = datetime(2026, 2, 1, tzinfo=timezone.utc)


def seed(repo, ids, count: int) -> list[str]:
    from shared.services import intake
    from tests.unit.test_listing import _Effects

    who, declared = demo_member("cli@example.com")
    return [intake.create_run(repo, _Effects(), run_body(ids["experiment"], name=f"cli-run-{n:03d}"), who, declared,
                              at=T0 + timedelta(hours=n))["id"] for n in range(count)]


def test_runs_list_pages_with_the_next_command_and_all_reads_every_page(api):
    repo, ids = api
    made = seed(repo, ids, 45)
    code, out = run_cli("runs", "list", "--page-size", "10")
    assert code == 0 and "cli-run-044" in out and "cli-run-034" not in out
    hint = out.splitlines()[-1]
    assert hint.startswith("more: --page-token ") and hint.endswith("(or --all)")
    token = hint.split("--page-token ")[1].split()[0]
    code, out = run_cli("runs", "list", "--page-size", "10", "--page-token", token)
    assert code == 0 and "cli-run-034" in out and "cli-run-044" not in out
    code, out = run_cli("--json", "runs", "list", "--all", "--page-size", "7")
    listed = json.loads(out)
    assert [r["id"] for r in listed["training_runs"]] == made[::-1] and listed["next_page_token"] is None


def test_runs_list_search_and_filters_go_to_the_server(api, capsys):
    repo, ids = api
    made = seed(repo, ids, 30)
    code, out = run_cli("--json", "runs", "list", "--search", "CLI-RUN-000", "--all")
    assert code == 0 and [r["id"] for r in json.loads(out)["training_runs"]] == [made[0]]
    code, out = run_cli("--json", "runs", "list", "--since", "2026-02-01T05:00:00Z", "--until", "2026-02-01T08:00:00Z")
    assert [r["id"] for r in json.loads(out)["training_runs"]] == made[7:4:-1]
    code, out = run_cli("runs", "list", "--page-size", "500")
    assert code != 0 and "page_size" in out + capsys.readouterr().err


def test_schedules_and_catalog_lists_search_and_page(api):
    repo, _ = api
    from shared.services import catalog_entries

    for n in range(12):
        catalog_entries.create(repo, "datasets", dataset_body(name=f"events-{n:02d}"), *demo_member("cli@example.com"))
        repo.create_schedule({"id": f"sch-{n:02d}", "name": f"refresh {n:02d}", "status": "active" if n % 2 else "paused",
                              "team": "demo", "created_at": T0 + timedelta(hours=n)})
    code, out = run_cli("--json", "catalog", "list", "datasets", "--search", "events-03")
    assert code == 0 and [d["name"] for d in json.loads(out)["items"]] == ["events-03"]
    code, out = run_cli("--json", "catalog", "list", "datasets", "--all", "--page-size", "5")
    assert len(json.loads(out)["items"]) == 13  # with seed_catalog's dataset
    code, out = run_cli("--json", "schedules", "list", "--status", "active", "--all", "--page-size", "2")
    assert [s["id"] for s in json.loads(out)["schedules"]] == [f"sch-{n:02d}" for n in (11, 9, 7, 5, 3, 1)]
    code, out = run_cli("schedules", "list", "--search", "refresh 1", "--page-size", "1")
    assert "sch-11" in out and "sch-10" not in out and "--page-token" in out.splitlines()[-1]
