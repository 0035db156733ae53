"""The backfill of the runs' search tokens: a run written before runs carried them (or before the
tokenising changed) is found by a search only once it is written again. Each reconciler pass writes the
tokens of the next BATCH runs, newest first from where the last pass stopped (its place kept in the
`search_index` status document), until it has been through them all; a run written meanwhile gets
its tokens on that write (run_document.check), so one sweep suffices. Idempotent: a run whose tokens
are current is not written.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from shared.adapters.repository import Repository
from shared.domain import run_search
from shared.domain.runs import now
from shared.services import run_writes

STATUS = "search_index"  # {version, after: [created_at, id] or None, done_at, indexed}
BATCH = 500


def _stale(doc: dict) -> Optional[dict]:
    return run_search.indexed(doc) if doc.get(run_search.FIELD) != run_search.tokens(doc) else None


def backfill(repo: Repository, batch: int = BATCH) -> int:
    """One step of the sweep: how many runs it gave their tokens (0 once the sweep is done)."""
    state = repo.get_status(STATUS) or {}
    if state.get("version") != run_search.VERSION:  # never swept, or the tokens changed since: from the top
        state = {}
    if state.get("done_at"):
        return 0
    after = state.get("after")
    position = (after[0] if isinstance(after[0], datetime) else datetime.fromisoformat(after[0]), after[1]) \
        if after else None
    page = repo.list_runs({}, batch, position)
    indexed = sum(1 for run in page if _stale(run) is not None and run_writes.write(repo, run["id"], _stale))
    last = [page[-1]["created_at"].isoformat(), page[-1]["id"]] if page else None
    finished = len(page) < batch

    def fold(status: Optional[dict]) -> dict:
        before = (status or {}).get("indexed", 0) if (status or {}).get("version") == run_search.VERSION else 0
        return {"version": run_search.VERSION, "after": None if finished else last,
                "done_at": now() if finished else None, "indexed": before + indexed}
    repo.mutate_status(STATUS, fold)
    return indexed
