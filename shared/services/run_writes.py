"""The one write path of a run document. Every change of a run is made here, in one transaction over a
pure function of the run (shared/domain/), in one of two kinds (tests/unit/test_write_path.py holds it):

- a move (its status or attempt changes) is made only by shared/services/lifecycle.move_run or
  move_or_read, which then do what follows from it (`after_change`);
- a `write` cannot move the run — a lease, a ledger, a deployment's fields, a deletion mark, its team —
  so nothing follows from it. A change handed to `write` that would move the run is refused, so what
  follows a move can never be skipped by mistake.

This module sits below lifecycle because what follows a move (a deploy, a notification) writes runs too.
"""
from __future__ import annotations

import copy
from typing import Callable, Optional

from shared.adapters.repository import Repository, mutate_or_read_run
from shared.domain import runs

Change = Callable[[dict], Optional[dict]]


def _still(change: Change) -> Change:
    def apply(doc: dict) -> Optional[dict]:
        new = change(doc)
        if new is not None and runs.moves(doc, new):
            raise ValueError(f"run {doc.get('id')}: a change of status or attempt goes through lifecycle.move_run")
        return new
    return apply


def write(repo: Repository, run_id: str, change: Change) -> Optional[dict]:
    """A change that cannot move the run. Returns the run as changed, or None (nothing changed)."""
    return repo.mutate_run(run_id, _still(change))


def write_or_read(repo: Repository, run_id: str, change: Change) -> tuple[dict, bool]:
    """write for a request: (the run, whether it changed); NotFound when there is no such run (or it is deleted)."""
    return mutate_or_read_run(repo, run_id, _still(change))


def _watching(transition: Change, seen: dict) -> Change:
    def apply(doc: dict) -> Optional[dict]:
        seen["before"] = copy.deepcopy(doc)  # the transaction's last attempt is the one that counts
        return transition(doc)
    return apply


def move(repo: Repository, run_id: str, transition: Change) -> tuple[Optional[dict], Optional[dict]]:
    """For lifecycle.move_run only: (the run before, after) a transition that may move it (after None: unchanged)."""
    seen: dict = {}
    after = repo.mutate_run(run_id, _watching(transition, seen))
    return seen.get("before"), after


def move_or_read(repo: Repository, run_id: str, transition: Change) -> tuple[Optional[dict], dict, bool]:
    """For lifecycle.move_or_read only: (before, the run, whether it changed); NotFound when there is none."""
    seen: dict = {}
    run, changed = mutate_or_read_run(repo, run_id, _watching(transition, seen))
    return seen.get("before"), run, changed
