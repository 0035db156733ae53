"""GET /api/me: who the caller is, and the access document that lets their dashboard listen to their
teams' documents (shared/domain/access.py says why a document)."""
from __future__ import annotations

from typing import Iterable

from shared.adapters.repository import Repository
from shared.domain import access
from shared.domain.runs import now
from shared.domain.teams import Caller, Team


def grant(repo: Repository, who: Caller, declared: Iterable[Team]) -> dict:
    """Write the caller's access document afresh (teams and expiry recomputed now) and describe the caller."""
    names = [team.name for team in declared]
    doc = access.document(who, names, now())
    repo.put_access(access.key(who.email), doc)
    return access.view(who, names, doc)
