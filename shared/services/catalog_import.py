"""Importing catalog entries from where experiments are tracked (MLflow, Vertex AI Experiments).

The CLI or the API reads the source and maps each run to catalog items (shared/services/experiment_import.py); each item
comes here through POST /api/<kind>:import with the run it came from. It is validated, checked against
the caller's role on its team and audited like any entry, and stored under a deterministic id
(shared/domain/catalog_origin.py): a re-import of an unchanged run changes nothing, a changed run
updates its experiment in place, and nothing is ever duplicated.
"""
from __future__ import annotations

from typing import Iterable

from google.api_core.exceptions import AlreadyExists

from shared.adapters.repository import Repository
from shared.domain import teams
from shared.domain.catalog_origin import Origin, entry_id
from shared.domain.runs import now
from shared.domain.teams import Caller
from shared.errors import FieldError
from shared.services import access, catalog_entries
from shared.validation import parse

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
RESULTS = (CREATED, UPDATED, UNCHANGED)
# What an entry's identity and change detection leave out: when and by whom it was written, where from.
_BOOKKEEPING = {"id", "number", "created_at", "created_by", "updated_at", "updated_by", "origin", "source"}


def _content(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in _BOOKKEEPING}


def import_entry(repo: Repository, kind: str, body: dict, who: Caller,
                 declared: Iterable[teams.Team]) -> tuple[dict, str]:
    """Create or update the entry a source run maps to: (the entry, created | updated | unchanged)."""
    if not isinstance(body, dict):
        raise FieldError.one("body", "must be a JSON object")
    unknown = sorted(set(body) - {"origin", "item"})
    if unknown:
        raise FieldError([{"field": key, "message": "unknown field"} for key in unknown])
    origin = parse(Origin, body.get("origin"), "origin")
    source = {"kind": origin.source, "by": who.email, "run_id": origin.run_id}
    if origin.url:
        source["url"] = origin.url
    entry = catalog_entries.prepare(repo, kind, body.get("item"), who, declared, source, prefix="item")
    entry["origin"] = origin.model_dump(exclude_none=True)
    entry["id"] = entry_id(kind, origin, _content(entry))
    prior = repo.get_catalog(kind, entry["id"])
    if prior is None:
        try:
            return repo.create_catalog(kind, entry), CREATED
        except AlreadyExists:  # a concurrent import of the same run made it a moment ago
            prior = repo.get_catalog(kind, entry["id"])
    teams.require_on(who, prior, teams.TRAINER, f"re-importing a {access.WHAT[kind]}")
    if _content(prior) == _content(entry):
        return prior, UNCHANGED
    # Only an experiment can differ here (a config's id is its content): the run's params, metrics or
    # configs changed at the source. Its number and creation stay; the change is stamped.
    changed = {**entry, "number": prior.get("number"), "created_at": prior.get("created_at"),
               "created_by": prior.get("created_by"), "updated_at": now(), "updated_by": who.email}
    return repo.replace_catalog(kind, {k: v for k, v in changed.items() if v is not None}), UPDATED
