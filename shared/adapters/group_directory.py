"""The caller's groups, matched against the teams' `group:` members (shared/domain/teams.caller).

In the cloud: the Cloud Identity Groups API, `groups.memberships.searchTransitiveGroups`
(https://cloud.google.com/identity/docs/reference/rest/v1/groups.memberships/searchTransitiveGroups):
parent `groups/-` (every group), a CEL query naming the member and a label, every group the member
belongs to directly or through other groups, paged. Called through google-auth's AuthorizedSession
(RestClient, as the Logging and quota readers are). The method is only available to Workspace
Enterprise and Cloud Identity Premium organisations, and the caller (the API's service account) must
be allowed to view the groups: a Google Admin console role such as Groups Reader, not project IAM
(docs/security.md, "How to add a team"). An answer is cached per e-mail for a few minutes; a refusal
(403) gives no groups — never more roles than declared — and is cached alike so it is not asked per request.

Locally: TRAINYARD_GROUPS (JSON e-mail -> groups) through StaticGroups.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Callable, Mapping, Optional

from shared import log

API = "https://cloudidentity.googleapis.com/v1"
# Every Google group (security groups too) carries this label; the query must name a label.
DISCUSSION_FORUM = "cloudidentity.googleapis.com/groups.discussion_forum"
CACHE_S = 300.0
MAX_PAGES = 20  # 1000 groups a page: far beyond any person's memberships
_EMAIL = re.compile(r"^[^'\\\s@]+@[^'\\\s@]+$")  # nothing that could end the CEL string literal


class StaticGroups:
    """The local stack's (and tests') memberships: a fixed map."""

    def __init__(self, groups: Mapping[str, frozenset]):
        self.groups = {k.lower(): frozenset(v) for k, v in groups.items()}

    def __call__(self, email: str) -> frozenset:
        return self.groups.get((email or "").strip().lower(), frozenset())


class CloudIdentityGroups:
    def __init__(self, rest, api: str = API, cache_s: float = CACHE_S, clock: Callable[[], float] = time.monotonic):
        self.rest = rest  # shared/adapters/rest_client.RestClient (built by shared/composition.py)
        self.api = api.rstrip("/")
        self.cache_s = cache_s
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset]] = {}
        self._lock = threading.Lock()

    def __call__(self, email: str) -> frozenset:
        email = (email or "").strip().lower()
        if not _EMAIL.match(email):
            return frozenset()
        with self._lock:
            hit = self._cache.get(email)
            if hit and self.clock() - hit[0] < self.cache_s:
                return hit[1]
        groups = self._search(email)
        with self._lock:
            self._cache[email] = (self.clock(), groups)
        return groups

    def _search(self, email: str) -> frozenset:
        query = f"member_key_id == '{email}' && '{DISCUSSION_FORUM}' in labels"
        found: set[str] = set()
        token: Optional[str] = None
        for _ in range(MAX_PAGES):
            params = {"query": query, "pageSize": 1000, **({"pageToken": token} if token else {})}
            try:
                page = self.rest.call("GET", f"{self.api}/groups/-/memberships:searchTransitiveGroups",
                                      "Cloud Identity groups", params=params)
            except PermissionError as exc:  # not Premium, or the service account may not view the groups
                log.error("group lookup refused: the caller gets no group roles", email=email, error=str(exc))
                return frozenset()
            found |= {m["groupKey"]["id"].lower() for m in page.get("memberships", [])
                      if (m.get("groupKey") or {}).get("id")}
            token = page.get("nextPageToken")
            if not token:
                break
        return frozenset(found)


def names_groups(teams) -> bool:
    """Whether any declared team has a `group:` member (else nobody's groups need looking up)."""
    return any(member.startswith("group:") for team in teams for member in team.members)
