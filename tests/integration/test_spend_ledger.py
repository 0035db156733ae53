"""The spend ledger on the Firestore emulator, through the real client (shared/adapters/repository.py
FirestoreRepository.mutate_ledger): two reservations racing for the last of a team's budget serialise in
Firestore's transaction, so only one passes; a settle replayed changes nothing."""
from __future__ import annotations

import threading
import uuid

import pytest

from shared.adapters.repository import FirestoreRepository
from shared.domain import runs, spend, teams

pytestmark = pytest.mark.integration


def test_two_reservations_against_the_last_of_the_budget_only_one_passes(local_stack):
    repo = FirestoreRepository(local_stack.stack.config.project)
    team, month = f"t-{uuid.uuid4().hex[:8]}", "2026-12"
    budget = teams.Budget(gpu_hours_per_month=10)
    run_cost = spend.RunCost(gpu_hours=6, usd=1, gpus=2, train_hours=3, method="test")
    barrier, outcomes = threading.Barrier(2), []

    def reserve(key: str) -> None:
        barrier.wait()
        try:
            repo.mutate_ledger(team, month, lambda ledger: spend.reserve(ledger, team, month, key, run_cost, budget,
                                                                         runs.now()))
            outcomes.append("reserved")
        except spend.OverBudget:
            outcomes.append("over budget")

    threads = [threading.Thread(target=reserve, args=(f"run-{n}-a1",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["over budget", "reserved"]
    ledger = repo.get_ledger(team, month)
    assert spend.totals(ledger) == {"gpu_hours": 6, "usd": 1} and len(ledger["entries"]) == 1

    key = next(iter(ledger["entries"]))
    settled = repo.mutate_ledger(team, month, lambda l: spend.settle(l, team, month, key, 2, 0.5, runs.now()))
    assert settled["entries"][key]["state"] == spend.ACTUAL
    assert repo.mutate_ledger(team, month, lambda l: spend.settle(l, team, month, key, 2, 0.5, runs.now())) is None
    assert spend.totals(repo.get_ledger(team, month)) == {"gpu_hours": 2, "usd": 0.5}
