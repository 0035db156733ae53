"""Every list the API serves, at any size: server-side search and filters, a bounded `page_size`, and a
cursor in a signed opaque page token (shared/page_tokens.py), in one stable order — newest first
(created_at desc, then id desc), so a new item arriving never shifts a page already read.

A filter is applied in the Firestore query where an index serves it (terraform/firestore.tf); the rest
are checked here on the rows the query returns ("residual"). A page then reads at most MAX_SCAN rows:
when the filter is rare it may come back short, or empty, with a next_page_token that resumes where
the scan stopped — never a hole, never a row twice.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Callable, Iterable, Optional

from shared import page_tokens
from shared.adapters.repository import SEARCH_KEY, SINCE_KEY, TEAMS_KEY, UNTIL_KEY, Repository
from shared.domain import model_kinds, run_search, runs, schedules
from shared.domain.teams import Caller
from shared.errors import FieldError
from shared.services import access
from shared.validation import moment, whole_number

MAX_PAGE_SIZE = 100
MAX_SCAN = 2000  # rows a page may read past its filters; bounded so a rare filter costs a bounded read
LIST_FILTERS = ("status", "model_type", "dataset_id")  # equalities with a composite index for each combination
TYPED = ("experiments", "model_configs")  # the catalog kinds that have a model type to filter by

Cursor = tuple[datetime, str]
Fetch = Callable[[int, Optional[Cursor]], list[dict]]


def page_size(args: dict, default: int = 20, limit_max: int = MAX_PAGE_SIZE) -> int:
    """`page_size` in [1, MAX_PAGE_SIZE] (a 400 naming it). `limit` is the older name the schedule and
    catalog lists took, kept with its older bound (limit_max) for the clients that still send it."""
    if args.get("limit") not in (None, "") and args.get("page_size") in (None, ""):
        return whole_number(args, "limit", default, 1, limit_max)
    return whole_number(args, "page_size", default, 1, MAX_PAGE_SIZE)


def _cursor(key: bytes, args: dict, bound: dict) -> Optional[Cursor]:
    if not args.get("page_token"):
        return None
    cursor = page_tokens.redeem(key, args["page_token"], bound)
    try:
        return datetime.fromisoformat(cursor["at"]), str(cursor["id"])
    except (KeyError, TypeError, ValueError):  # signed by us: only a change of format gets here
        raise FieldError.one("page_token", "is not a page token of this list; start without one") from None


def _token(key: bytes, bound: dict, at: Optional[Cursor]) -> Optional[str]:
    return page_tokens.issue(key, bound, {"at": at[0].isoformat(), "id": at[1]}) if at else None


def _position(row: dict) -> Cursor:
    return row["created_at"], row["id"]


def scan(fetch: Fetch, keep: Callable[[dict], bool], size: int, after: Optional[Cursor],
         max_scan: int = MAX_SCAN) -> tuple[list[dict], Optional[Cursor]]:
    """One page of rows that `keep` accepts, newest first after `after`, and where the next page starts
    (None: there is no more). Reads in batches, at most max_scan rows past the filter."""
    found: list[dict] = []
    scanned, batch, position = 0, max(size * 2, 50), after
    while True:
        chunk = fetch(batch, position)
        for row in chunk:
            position = _position(row)
            scanned += 1
            if keep(row):
                found.append(row)
                if len(found) > size:
                    return found[:size], _position(found[size - 1])
        if len(chunk) < batch:
            return found, None
        if scanned >= max_scan:  # a rare filter: this page stops here, the next resumes from here
            return found, position


def _flag(args: dict, name: str) -> bool:
    value = str(args.get(name) or "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise FieldError.one(name, "must be true or false")
    return value in ("true", "1")


def _teams(args: dict, who: Caller) -> Optional[list[str]]:
    """The teams listed: those the caller may view (None: every team, a platform admin), narrowed to
    `team` when asked; a team the caller may not view lists nothing (its runs are not theirs to count)."""
    shown = access.team_filter(who)
    wanted = (args.get("team") or "").strip()
    if not wanted:
        return shown
    return [wanted] if shown is None or wanted in shown else []


def _statuses(args: dict, allowed: Iterable[str]) -> list[str]:
    allowed = list(allowed)
    asked = [s.strip() for s in (args.get("status") or "").split(",") if s.strip()]
    if any(s not in allowed for s in asked):
        raise FieldError.one("status", f"must be one or more (comma-separated) of {', '.join(allowed)}")
    return sorted(set(asked))


# --------------------------------------------------------------------------- runs


def run_query(args: dict, who: Caller) -> tuple[dict, dict, list[str]]:
    """(what the Firestore query filters, what is checked here, the search terms) for GET /api/training-runs.

    A search asks for its longest term's token (the index (team, search_tokens, created_at)); the
    equalities are then checked here, as an index per combination with search would be dozens more.
    Without a search the equalities go in the query (an index for each combination), a schedule alone."""
    equal = {"status": _statuses(args, runs.STATUSES) or None, "model_type": args.get("model_type") or None,
             "dataset_id": args.get("dataset_id") or args.get("dataset") or None,
             "schedule_id": args.get("schedule_id") or args.get("schedule") or None}
    if equal["model_type"] and not model_kinds.is_kind(equal["model_type"]):
        raise FieldError.one("model_type", model_kinds.ONE_OF)
    equal = {k: v for k, v in equal.items() if v}
    since, until = moment(args, "since"), moment(args, "until")
    if since and until and since >= until:
        raise FieldError.one("until", "must be later than since")
    terms = run_search.terms(args.get("search") or args.get("q") or "")
    deleted = _flag(args, "deleted")  # the deleted runs (restorable until purge_after), alone
    if deleted and equal:
        raise FieldError.one("deleted", "lists the deleted runs alone; drop status, model_type, dataset and schedule")
    query: dict = {TEAMS_KEY: _teams(args, who), SINCE_KEY: since, UNTIL_KEY: until}
    residual = dict(equal)
    if deleted:
        query["deleted"] = True  # and the search, if any, checked here
    elif terms:
        query[SEARCH_KEY] = run_search.query_token(terms)
    elif "schedule_id" in equal and len(equal) > 1:
        query["schedule_id"] = residual.pop("schedule_id")  # (team, schedule_id, created_at); the rest here
    else:
        query.update(residual)
        residual = {}
    if _flag(args, "registered"):  # the registry's versions: a model was uploaded for the run
        residual["registered"] = True
    return query, residual, terms


def _keeps_run(residual: dict, terms: list[str], deleted: bool) -> Callable[[dict], bool]:
    def keep(run: dict) -> bool:
        if runs.is_deleted(run) != deleted:
            return False
        for key, value in residual.items():
            if key == "registered":
                if not run.get("vertex_model_resource_name"):
                    return False
            elif (run.get(key) not in value) if isinstance(value, list) else run.get(key) != value:
                return False
        return run_search.matches(run, terms)
    return keep


def list_runs(repo: Repository, args: dict, who: Caller, key: bytes) -> dict:
    """A page of runs of the teams the caller may view, newest first; `total` counts every match where
    the query alone decides it (no search, no filter checked here), else None."""
    size = page_size(args)
    query, residual, terms = run_query(args, who)
    deleted = bool(query.get("deleted"))
    bound = {"list": "training_runs", "by": who.email,
             "q": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in sorted(query.items())},
             "r": residual, "s": terms}
    after = _cursor(key, args, bound)
    if query[TEAMS_KEY] == []:
        return {"training_runs": [], "page_size": size, "next_page_token": None, "total": 0}
    page, position = scan(lambda limit, at: repo.list_runs(query, limit, at), _keeps_run(residual, terms, deleted),
                          size, after)
    total = None
    if not residual and not terms:
        total = repo.count_runs(query) if deleted else repo.count_runs(query) - repo.count_runs({**query, "deleted": True})
    return {"training_runs": [runs.public_view(r) for r in page], "page_size": size,
            "next_page_token": _token(key, bound, position), "total": total}


# --------------------------------------------------------------------------- schedules and the catalog


SEARCHED = ("id", "name", "display_name", "description")
# An experiment is also found by the names of what it was made from and by its number ("Exp #65", "#65"),
# as the wizard's experiment picker is searched.
SEARCHED_EXPERIMENT = SEARCHED + ("dataset_name", "feature_config_name", "model_config_name")
_NUMBER_TERM = re.compile(r"#(\d+)")


def _named(terms: list[str], *fields: str, numbered: bool = False) -> Callable[[dict], bool]:
    """A schedule or catalog entry matches when each term is in its id, name or description (a substring:
    these lists are short beside the runs', so they are searched here, not tokenised). Where `numbered`, an
    entry's number reads "exp #N", and a term "#N" is that number exactly (#6 is not #65)."""
    def keep(entry: dict) -> bool:
        text = " ".join(str(entry.get(f) or "") for f in fields).lower()
        number = entry.get("number") if numbered else None
        if number is not None:
            text += f" exp #{number}"

        def has(term: str) -> bool:
            exact = _NUMBER_TERM.fullmatch(term) if number is not None else None
            return int(exact.group(1)) == number if exact else term in text
        return all(has(term) for term in terms)
    return keep


def _page_of(kind: str, fetch: Fetch, keep: Callable[[dict], bool], args: dict, who: Caller, key: bytes,
             bound: dict, default_size: int, limit_max: int) -> tuple[list[dict], Optional[str], int]:
    size = page_size(args, default_size, limit_max)
    bound = {"list": kind, "by": who.email, **bound}
    page, position = scan(fetch, keep, size, _cursor(key, args, bound))
    return page, _token(key, bound, position), size


def list_schedules(repo: Repository, args: dict, who: Caller, key: bytes) -> dict:
    statuses = _statuses(args, schedules.STATUSES)
    teams = _teams(args, who)
    terms = run_search.terms(args.get("search") or "")
    # One status in the query ((team, status, created_at)); several are checked here.
    status = statuses[0] if len(statuses) == 1 else None
    filters = {"status": status, TEAMS_KEY: teams}
    named = _named(terms, "id", "name", "description")

    def keep(doc: dict) -> bool:
        return (not statuses or doc.get("status") in statuses) and named(doc)

    fetch: Fetch = (lambda limit, at: repo.page_schedules(filters, limit, at)) if teams != [] else (lambda limit, at: [])
    page, token, size = _page_of("training_schedules", fetch, keep, args, who, key,
                                 {"status": statuses, "team": teams, "s": terms}, 50, 200)
    return {"schedules": [schedules.public_view(s) for s in page], "page_size": size, "next_page_token": token}


def list_catalog(repo: Repository, kind: str, args: dict, who: Caller, key: bytes) -> dict:
    model_type = args.get("model_type") or None
    if model_type and not model_kinds.is_kind(model_type):
        raise FieldError.one("model_type", model_kinds.ONE_OF)
    if model_type and kind not in TYPED:
        raise FieldError.one("model_type", "filters experiments and model configs only")
    teams = _teams(args, who)
    terms = run_search.terms(args.get("search") or args.get("q") or "")
    filters = {"model_type": model_type, TEAMS_KEY: teams}
    keep = _named(terms, *(SEARCHED_EXPERIMENT if kind == "experiments" else SEARCHED), numbered=kind == "experiments")
    fetch: Fetch = (lambda limit, at: repo.page_catalog(kind, filters, limit, at)) if teams != [] else (lambda limit, at: [])
    page, token, size = _page_of(kind, fetch, keep, args, who, key, {"model_type": model_type, "team": teams,
                                                                       "s": terms}, 50, 500)
    return {"items": page, "page_size": size, "next_page_token": token}
