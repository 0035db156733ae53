"""Teams and roles: who may do what, on whose resources (docs/security.md, "Teams and roles").

A deployment declares its teams (TRAINYARD_TEAMS, JSON; Terraform's `teams` variable). Each team has
members, each with one role, and what the team owns or may use:

    {"recs": {"members": {"user:alice@example.com": "admin", "group:ml@example.com": "trainer",
                          "serviceAccount:ci@proj.iam.gserviceaccount.com": "trainer"},
              "model_names": ["recs-*"], "endpoints": ["recs-prod"],
              "datasets": ["proj.recs_data"], "buckets": ["gs://recs-data/"],
              "budget": {"gpu_hours_per_month": 500, "usd_per_month": 2000,
                         "max_gpus_per_run": 8, "max_usd_per_run": 300},
              "schedules": {"min_interval_minutes": 60, "max_active": 10}}}

Roles are ordered; each includes the ones before it:
    viewer    reads the team's runs, schedules, catalog, logs and artifacts
    trainer   + creates, submits, cancels and retries runs; creates catalog entries; creates, pauses,
              resumes, triggers and cancels schedules
    deployer  + deploys and pushes anyway
    admin     + everything else on the team's resources (delete, restore, approvals, team assignments)
(shared/services/access.py applies them, route by route.)
The deployment's platform admins (TRAINYARD_ADMINS) are admin on every team.

Members are IAM-style principals (`user:`, `group:`, `serviceAccount:`; a bare address is a user).
A group's members are not known here: the caller's groups come from a GroupDirectory port
(shared/composition.py builds it) and are matched against `group:` members.

What a team may use is a list of patterns: an exact value, a prefix ending in `*`, or `*` (anything; the
local stack's demo team only). shared/domain never reads the environment: shared/settings.py parses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from shared.errors import FieldError, Forbidden

VIEWER, TRAINER, DEPLOYER, ADMIN = "viewer", "trainer", "deployer", "admin"
ROLES = (VIEWER, TRAINER, DEPLOYER, ADMIN)
RANK = {role: rank for rank, role in enumerate(ROLES)}
KINDS = ("user", "group", "serviceAccount")
TEAM_NAME = re.compile(r"^[a-z][a-z0-9-]{0,29}$")  # also a Firestore field value and a label value
DEMO_TEAM = "demo"
ANYTHING = "*"


@dataclass(frozen=True)
class Budget:
    """A team's monthly spend cap and its per-run cap (None: no cap of that kind)."""
    gpu_hours_per_month: Optional[float] = None
    usd_per_month: Optional[float] = None
    max_gpus_per_run: Optional[int] = None
    max_usd_per_run: Optional[float] = None


@dataclass(frozen=True)
class ScheduleLimits:
    min_interval_minutes: int = 60
    max_active: int = 10


@dataclass(frozen=True)
class Team:
    name: str
    members: Mapping[str, str]  # principal ("user:a@x", "group:g@x", "serviceAccount:s@p.iam...") -> role
    model_names: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    budget: Budget = field(default_factory=Budget)
    schedules: ScheduleLimits = field(default_factory=ScheduleLimits)

    def __hash__(self) -> int:  # members is a dict: hash by name (names are unique in a deployment)
        return hash(self.name)


@dataclass(frozen=True)
class Caller:
    """The authenticated caller and what they may do: their role on each team they belong to."""
    email: str
    roles: Mapping[str, str] = field(default_factory=dict)  # team -> the caller's highest role
    platform_admin: bool = False
    groups: frozenset = frozenset()
    # Every check `require` passed or refused, in order: (team, role, needed). The API copies the last one
    # to flask.g.authorization for the audit trail. A list in a frozen dataclass: the caller is per request.
    decisions: list = field(default_factory=list, compare=False, repr=False)

    def role_on(self, team: str) -> Optional[str]:
        return ADMIN if self.platform_admin else self.roles.get(team)

    def may(self, team: str, needed: str) -> bool:
        role = self.role_on(team)
        return role is not None and RANK[role] >= RANK[needed]

    def teams_where(self, needed: str, all_teams: Iterable[str] = ()) -> list[str]:
        """The teams on which the caller holds `needed` (platform admins: every declared team)."""
        names = list(all_teams) if self.platform_admin else list(self.roles)
        return sorted(t for t in names if self.may(t, needed))


# --------------------------------------------------------------------------- parsing the declaration


def principal(member: str) -> str:
    """The canonical form of a member: `kind:address`, address lower-cased."""
    kind, sep, address = member.strip().partition(":")
    if not sep:
        kind, address = "user", member.strip()
    if kind not in KINDS:
        raise ValueError(f"{member!r} is not user:, group: or serviceAccount:")
    if not re.fullmatch(r"[^@\s:]+@[^@\s:]+", address):
        raise ValueError(f"{member!r} does not name an e-mail address")
    return f"{kind}:{address.lower()}"


def parse(declared: Mapping, where: str = "TRAINYARD_TEAMS") -> tuple[Team, ...]:
    """Teams from their JSON declaration; a bad one is a FieldError naming the path."""
    if not isinstance(declared, Mapping):
        raise FieldError.one(where, "must be a JSON object of team name -> team")
    problems: list[dict] = []

    def bad(path: str, message: str) -> None:
        problems.append({"field": f"{where}.{path}", "message": message})

    teams = []
    for name, spec in declared.items():
        if not isinstance(name, str) or not TEAM_NAME.match(name):
            bad(str(name), "a team name is 1-30 lower-case letters, digits or '-', starting with a letter")
            continue
        if not isinstance(spec, Mapping):
            bad(name, "must be an object")
            continue
        unknown = set(spec) - {"members", "model_names", "endpoints", "datasets", "buckets", "budget", "schedules"}
        if unknown:
            bad(name, f"unknown keys {sorted(unknown)}")
        members: dict[str, str] = {}
        for member, role in (spec.get("members") or {}).items():
            try:
                key = principal(member)
            except ValueError as exc:
                bad(f"{name}.members", str(exc))
                continue
            if role not in ROLES:
                bad(f"{name}.members.{member}", f"role must be one of {', '.join(ROLES)}, not {role!r}")
                continue
            members[key] = role
        lists = {}
        for key in ("model_names", "endpoints", "datasets", "buckets"):
            value = spec.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                bad(f"{name}.{key}", "must be a list of non-empty strings (exact, prefix*, or *)")
                value = []
            lists[key] = tuple(v.strip() for v in value)
        budget = _numbers(spec.get("budget") or {}, Budget, f"{name}.budget", bad)
        limits = _numbers(spec.get("schedules") or {}, ScheduleLimits, f"{name}.schedules", bad)
        teams.append(Team(name=name, members=members, budget=budget or Budget(),
                          schedules=limits or ScheduleLimits(), **lists))
    if problems:
        raise FieldError(problems)
    return tuple(teams)


def _numbers(spec, kind, path: str, bad):
    if not isinstance(spec, Mapping):
        bad(path, "must be an object")
        return None
    names = kind.__dataclass_fields__
    values = {}
    for key, value in spec.items():
        if key not in names:
            bad(f"{path}.{key}", f"unknown; expected one of {', '.join(names)}")
        elif value is None:
            continue
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            bad(f"{path}.{key}", f"must be a number >= 0, not {value!r}")
        else:
            values[key] = value
    return kind(**values)


# The demo team's schedules: Cloud Scheduler's own floor (one minute, its cron's finest unit) and no practical cap;
# the local stack spends nothing, and its tests fire per-minute schedules.
DEMO_SCHEDULES = ScheduleLimits(min_interval_minutes=1, max_active=1000)


def demo(identity: str) -> tuple[Team, ...]:
    """The local stack's team when none is declared: its developer is its admin; it may use anything."""
    return (Team(name=DEMO_TEAM, members={principal(identity): ADMIN} if "@" in identity else {},
                 model_names=(ANYTHING,), endpoints=(ANYTHING,), datasets=(ANYTHING,), buckets=(ANYTHING,),
                 schedules=DEMO_SCHEDULES),)


# --------------------------------------------------------------------------- who the caller is


def caller(email: str, teams: Iterable[Team], admins: Iterable[str] = (), groups: Iterable[str] = ()) -> Caller:
    """The caller's role on each team: the highest role any of their principals holds there."""
    email = (email or "").strip().lower()
    kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    mine = {f"{kind}:{email}"} | {f"group:{g.strip().lower()}" for g in groups}
    roles = {}
    for team in teams:
        held = [team.members[p] for p in mine if p in team.members]
        if held:
            roles[team.name] = max(held, key=RANK.__getitem__)
    return Caller(email=email, roles=roles, platform_admin=email in {a.strip().lower() for a in admins},
                  groups=frozenset(g.strip().lower() for g in groups))


def by_name(teams: Iterable[Team], name: str) -> Optional[Team]:
    return next((t for t in teams if t.name == name), None)


# --------------------------------------------------------------------------- checks


def require(who: Caller, team: str, needed: str, action: str) -> str:
    """The caller's role on `team` if it is at least `needed`; else Forbidden saying what is missing."""
    role = who.role_on(team)
    who.decisions.append((team, role, needed))
    if role is not None and RANK[role] >= RANK[needed]:
        return role
    held = f"is {role} on team {team!r}" if role else f"has no role on team {team!r}"
    raise Forbidden(f"{who.email} {held}; {action} needs {needed} (ask an admin of {team!r} to grant it)",
                    team=team, needed=needed, role=role)


def require_on(who: Caller, resource: Mapping, needed: str, action: str) -> str:
    """The caller's role on a stored resource's team, at least `needed`. A resource made before teams
    existed has no `team`: it belongs to nobody, so only a platform admin may see or act on it (and
    give it a team: POST /api/admin/team-assignments)."""
    team = resource.get("team")
    if team:
        return require(who, team, needed, action)
    who.decisions.append((None, ADMIN if who.platform_admin else None, needed))
    if who.platform_admin:
        return ADMIN
    raise Forbidden(f"{who.email} may not do this: {action} needs a platform admin (TRAINYARD_ADMINS), as it "
                    f"belongs to no team (made before teams were declared; an admin can assign it one)",
                    team=None, needed=ADMIN, role=None)


def team_for_new(who: Caller, requested: Optional[str], teams: Iterable[Team], needed: str, action: str,
                 field_name: str = "team") -> Optional[str]:
    """The team a new resource belongs to: the one named, or the caller's only team with `needed`.
    A deployment that declares no team is run by its platform admins alone: what they make belongs
    to no team (None), like a resource made before teams, and only platform admins see it."""
    names = [t.name for t in teams]
    if not names and who.platform_admin and requested in (None, ""):
        who.decisions.append((None, ADMIN, needed))
        return None
    if requested not in (None, ""):
        if not isinstance(requested, str) or requested not in names:
            raise FieldError.one(field_name, f"{requested!r} is not a team of this deployment "
                                             f"(teams: {', '.join(names) or 'none declared'})")
        require(who, requested, needed, action)
        return requested
    mine = who.teams_where(needed, names)
    if len(mine) == 1:
        who.decisions.append((mine[0], who.role_on(mine[0]), needed))
        return mine[0]
    if not mine:
        who.decisions.append((None, None, needed))
        raise Forbidden(f"{who.email} has no team on which they are {needed} or above; {action} needs one "
                        f"(teams: {', '.join(names) or 'none declared'})", team=None, needed=needed, role=None)
    raise FieldError.one(field_name, f"name the team this belongs to: one of {', '.join(mine)}")


def allows(patterns: Iterable[str], value: str) -> bool:
    """Whether a team's list admits `value`: an exact match, a `prefix*`, or `*`."""
    for pattern in patterns:
        if pattern == ANYTHING or pattern == value or (pattern.endswith("*") and value.startswith(pattern[:-1])):
            return True
    return False
