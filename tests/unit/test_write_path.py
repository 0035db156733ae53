"""The one write path of a run (shared/services/run_writes.py): no other module of shared/ or functions/
writes a run document, a change that moves a run (status or attempt) goes through lifecycle.move_run so
what follows it runs, and a plain write cannot move a run."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services.ports import Effects
from shared.domain import runs
from shared.services import lifecycle, run_writes
from tests.builders import demo_member, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository

ROOT = Path(__file__).resolve().parents[2]
# The repository adapter defines the writes; run_writes is the only module that makes them.
WRITE_PATH = {"shared/services/run_writes.py", "shared/adapters/repository.py"}
WRITES = {"mutate_run", "mutate_or_read_run"}


def run_writes_outside(paths) -> list[str]:
    found = []
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        if rel in WRITE_PATH:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in WRITES:
                    found.append(f"{rel}:{node.lineno} {name}")
            if isinstance(node, ast.ImportFrom) and any(a.name in WRITES for a in node.names):
                found.append(f"{rel}:{node.lineno} imports {[a.name for a in node.names if a.name in WRITES]}")
    return found


def test_only_the_write_path_writes_runs():
    sources = sorted((ROOT / "shared").rglob("*.py")) + sorted((ROOT / "functions").rglob("*.py"))
    assert run_writes_outside(sources) == []


def test_the_write_path_check_sees_a_direct_write():
    module = ROOT / "shared" / "services" / "_probe_direct_write.py"
    try:
        module.write_text("def f(repo):\n    return repo.mutate_run('r', lambda d: d)\n")
        assert run_writes_outside([module]) == ["shared/services/_probe_direct_write.py:2 mutate_run"]
    finally:
        module.unlink()


@pytest.fixture
def stored():
    repo = InMemoryRepository()
    ids = seed_catalog(repo)
    from shared.services import intake

    run = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                            run_body(ids["experiment"]), *demo_member("dev@example.com"))
    return repo, run


def test_a_write_that_would_move_a_run_is_refused_and_changes_nothing(stored):
    repo, run = stored
    with pytest.raises(ValueError, match="move_run"):
        run_writes.write(repo, run["id"], lambda d: {**d, "status": runs.CANCELLED})
    assert repo.get_run(run["id"])["status"] == run["status"]
    with pytest.raises(ValueError, match="move_run"):
        run_writes.write_or_read(repo, run["id"], lambda d: {**d, "attempt": 2})
    assert run_writes.write(repo, run["id"], lambda d: {**d, "team": "demo"})["team"] == "demo"


def test_a_move_runs_what_follows_it_with_the_effects_given():
    from tests.unit.test_notifications import HOOK, TARGETS
    from shared.services import intake

    repo = InMemoryRepository()
    run = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                            run_body(seed_catalog(repo)["experiment"], notifications=HOOK),
                            *demo_member("dev@example.com"), targets=TARGETS)
    publisher = FakePublisher()
    moved = lifecycle.move_run(repo, run["id"], lambda d: runs.request_cancel(d, "dev@example.com", runs.now()),
                               Effects(publisher, LocalTickerJobs()))
    assert moved["status"] == runs.CANCELLED  # pending: cancelled outright
    assert [m[1]["event"] for m in publisher.messages if m[1].get("command") == "notify"] == ["cancelled"]
