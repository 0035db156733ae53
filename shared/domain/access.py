"""The dashboard's access document: which teams' documents a signed-in person may read straight from
Firestore (docs/security.md, "The dashboard's Firestore listeners").

The page reads runs, schedules and the catalog with Firestore listeners, so the API's role checks do
not stand between it and the data: terraform/firestore.rules do. The rules cannot see
TRAINYARD_TEAMS, groups or platform admins; they can read a document. GET /api/me writes one per
caller, `access/{email}`, naming the teams the caller may view and when that stops being true. A
membership document, not a custom claim: the CLI's Google ID tokens carry no custom claims, group
membership changes between token refreshes, and a document can expire (request.time in the rules)
— a removed member loses the dashboard within TTL without anyone revoking a token.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from shared.domain.teams import VIEWER, Caller

# Long enough that the page refreshes it a few times an hour (dashboard/src/access.js refreshes at
# 3/4 of it); short enough that a member removed from a team stops seeing it within the hour.
TTL = timedelta(hours=1)


def key(email: str) -> str:
    """The access document's id: the address as the rules read it (request.auth.token.email.lower())."""
    return (email or "").strip().lower()


def document(who: Caller, declared: Iterable[str], at: datetime) -> dict:
    """What the rules read: the teams on which the caller is at least viewer, until `expires_at`."""
    return {"email": key(who.email), "teams": who.teams_where(VIEWER, declared),
            "platform_admin": who.platform_admin, "written_at": at, "expires_at": at + TTL}


def view(who: Caller, declared: Iterable[str], doc: dict) -> dict:
    """GET /api/me's answer: who the caller is, their role per team, and the teams the page may listen to."""
    names = list(declared)
    return {"email": key(who.email), "platform_admin": who.platform_admin,
            "roles": {team: who.role_on(team) for team in who.teams_where(VIEWER, names)},
            "groups": sorted(who.groups), "teams": doc["teams"], "access_expires_at": doc["expires_at"]}
