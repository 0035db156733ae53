"""Endpoints as their teams see them: GET /api/endpoints and GET /api/endpoints/{id}.

An endpoint lives in Vertex AI (or the local prediction server); what Trainyard knows of it is on the runs
deployed to it (their `deployment` and `endpoint_history`). So an endpoint belongs to the teams of the runs
deployed to it: a viewer of one of them sees it, a deployer of one of them may change it (the actions:
shared/services/actions/endpoint_traffic.py, undeploy.py; rollback.py for a run's own deploy). An endpoint
no Trainyard run was deployed to is shown to platform admins only.

An endpoint shared by two teams is seen whole by both (it serves both), but a run of a team the caller may
not view is shown only as "a model of another team" (`{"of_another_team": true}`: no id, name or creator), in
the models, the canary, the work under way and the history alike; only its team's deployers may move its
traffic or take it off (endpoint_traffic.py, undeploy.py through `model_runs`).

The endpoint's models, split and creation time are read live through the serving port
(shared/adapters/serving/); the run each model came from, its canary and the history are joined from the runs.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

from shared import page_tokens
from shared.adapters.repository import TEAMS_KEY
from shared.adapters.serving import EndpointView, endpoint_id_for, short_id
from shared.domain import deployments, runs, teams
from shared.domain.teams import Caller
from shared.errors import Conflict, NotFound
from shared.validation import whole_number

# Statuses of a deployment that names its endpoint (a failed deploy may never have reached one).
ON_AN_ENDPOINT = (deployments.DEPLOYING, deployments.CANARY, deployments.DEPLOYED, deployments.ROLLING_BACK,
                  deployments.ROLLED_BACK, deployments.UNDEPLOYED)
RUNS_READ = 1000  # per status: the runs that ever reached an endpoint, newest first
PAGE = "endpoints"
# An endpoint's id as Vertex makes them (numbers, or a user-chosen [a-z0-9-] letter first) and the local files' names:
# anything else names no endpoint, and never reaches a file path or a resource name.
ENDPOINT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def endpoint_of(run: dict) -> Optional[str]:
    """The id of the endpoint a run's deployment is on (or going to: a new endpoint's id is the run's own)."""
    deployment = run.get("deployment") or {}
    name = deployment.get("endpoint_resource_name") or deployment.get("endpoint_id")
    if name:
        return short_id(name)
    return endpoint_id_for(run["id"]) if deployment.get("status") == deployments.DEPLOYING else None


def runs_on_endpoints(repo, shown: Optional[list[str]]) -> dict[str, list[dict]]:
    """Endpoint id → the runs deployed to it, newest first; of the teams `shown` (None: every team's)."""
    found: dict[str, list[dict]] = {}
    for status in ON_AN_ENDPOINT:
        filters = {"deployment_status": status, **({TEAMS_KEY: shown} if shown is not None else {})}
        for run in repo.list_runs(filters, RUNS_READ):
            endpoint = endpoint_of(run)
            if endpoint and not runs.is_deleted(run):
                found.setdefault(endpoint, []).append(run)
    for listed in found.values():
        listed.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return found


def _teams(on_it: Iterable[dict]) -> list[str]:
    return sorted({r["team"] for r in on_it if r.get("team")})


def _may_see(who: Caller, on_it: list[dict]) -> bool:
    return who.platform_admin or any(shown_to(who, r) for r in on_it)


def shown_to(who: Caller, run: dict) -> bool:
    """Whether the caller may see who made this run and what it is: viewer on its team (a run of no team:
    a platform admin)."""
    return who.platform_admin or bool(run.get("team") and who.may(run["team"], teams.VIEWER))


OF_ANOTHER_TEAM = {"of_another_team": True}
# What a history entry of another team's run keeps: what changed and when; not who, why (a reason may name
# them) or on which run.
HISTORY_SHOWN = ("at", "action", "endpoint", "from", "to", "deployed_model_id", "change_id")


def model_runs(on_it: list[dict]) -> dict[str, dict]:
    """Deployed model id → the run it came from (the newest run wins a model id: a redeploy of the same version)."""
    by_model = {}
    for run in reversed(on_it):
        deployment = run.get("deployment") or {}
        if deployment.get("deployed_model_id"):
            by_model[deployment["deployed_model_id"]] = run
    return by_model


def _named(who: Caller, run: dict) -> dict:
    return {"run_id": run["id"], "run_name": run.get("name")} if shown_to(who, run) else OF_ANOTHER_TEAM


def summary(view: EndpointView, on_it: list[dict], who: Caller) -> dict:
    """An endpoint in the list: its models and split, the runs they came from, its canary; another team's
    runs redacted."""
    by_model = model_runs(on_it)
    models = []
    for model in view.deployed_models:
        run = by_model.get(model.id)
        models.append({**vars(model), "traffic_percent": int(view.traffic_split.get(model.id, 0)),
                       "run": None if run is None else OF_ANOTHER_TEAM if not shown_to(who, run) else {
                           "id": run["id"], "name": run.get("name"), "team": run.get("team"),
                           "model_version": run.get("vertex_model_version"),
                           "deployment_status": (run.get("deployment") or {}).get("status")}})
    watching = next(({**_named(who, r), **(r["deployment"].get("canary") or {}),
                      "deployed_model_id": r["deployment"].get("deployed_model_id")}
                     for r in on_it if (r.get("deployment") or {}).get("status") == deployments.CANARY), None)
    under_way = [{**({"run_id": r["id"]} if shown_to(who, r) else OF_ANOTHER_TEAM), "status": r["deployment"]["status"]}
                 for r in on_it if r["deployment"].get("status") in deployments.UNDER_WAY]
    return {**view.as_dict(), "teams": _teams(on_it), "deployed_models": models, "canary": watching,
            "under_way": under_way}


def history(view: EndpointView, on_it: list[dict], who: Optional[Caller] = None) -> list[dict]:
    """Every recorded change of the endpoint (deploys, canaries, promotions, rollbacks, traffic changes,
    undeploys), oldest first, each with the run it is recorded on; for a `who`, another team's entries
    redacted (without one, whole: for the actions' own checks)."""
    entries = [{**entry, "run_id": run["id"], "run_name": run.get("name")} if who is None or shown_to(who, run)
               else {**{k: entry[k] for k in HISTORY_SHOWN if k in entry}, **OF_ANOTHER_TEAM}
               for run in on_it for entry in run.get("endpoint_history") or []
               if entry.get("endpoint") and short_id(entry["endpoint"]) == view.id]
    unique = {(e["at"], e["action"], e.get("change_id"), e.get("deployed_model_id")): e for e in entries}
    return sorted(unique.values(), key=lambda e: e["at"])


def list_endpoints(repo, endpoints, args: dict, who: Caller, key: bytes) -> dict:
    """The endpoints the caller may see, by id, a page at a time (a signed token: shared/page_tokens.py)."""
    page_size = whole_number(args, "page_size", 50, 1, 200)
    after = page_tokens.redeem(key, args["page_token"], {"page": PAGE})["after"] if args.get("page_token") else ""
    on = runs_on_endpoints(repo, None)  # every team's: a shared endpoint's other models are shown, redacted
    visible = [e for e in endpoints.list_endpoints() if _may_see(who, on.get(e.id, []))]
    rest = [e for e in sorted(visible, key=lambda e: e.id) if e.id > after]
    page = rest[:page_size]
    token = page_tokens.issue(key, {"page": PAGE}, {"after": page[-1].id}) if len(rest) > page_size else None
    return {"endpoints": [summary(e, on.get(e.id, []), who) for e in page], "next_page_token": token}


def seen(repo, endpoints, endpoint_id: str, who: Caller) -> tuple[EndpointView, list[dict]]:
    """The endpoint and every run deployed to it, if the caller may see it: 404 otherwise (an endpoint of
    another team's is not theirs to know of)."""
    view = endpoints.get_endpoint(endpoint_id) if ENDPOINT_ID.fullmatch(endpoint_id) else None
    on_it = runs_on_endpoints(repo, None).get(short_id(endpoint_id), []) if view is not None else []
    if view is None or not _may_see(who, on_it):
        raise NotFound(f"endpoint {endpoint_id}")
    return view, on_it


def get_endpoint(repo, endpoints, endpoint_id: str, who: Caller) -> dict:
    view, on_it = seen(repo, endpoints, endpoint_id, who)
    return {"endpoint": {**summary(view, on_it, who), "history": history(view, on_it, who)}}


def acting_run(who: Caller, on_it: list[dict], action: str, model_id: Optional[str] = None) -> dict:
    """The run a change of the endpoint is recorded on and checked against: the caller must be deployer on
    its team (403 naming the team otherwise). The run of `model_id` when it has one, else the newest run of a
    team the caller deploys for (else the newest, which refuses them).
    Refused while a deploy, a canary or a rollback is at work on the endpoint: it owns the split."""
    if not on_it:
        raise Conflict("no Trainyard run was deployed to this endpoint: change it where it was made")
    busy = [r for r in on_it if (r.get("deployment") or {}).get("status") in deployments.UNDER_WAY]
    mine = [r for r in on_it if (r.get("deployment") or {}).get("deployed_model_id") == model_id] if model_id else []
    # a model's own run decides who may take it off; a split, any run whose team the caller deploys for
    run = mine[0] if mine else next((r for r in on_it if r.get("team") and who.may(r["team"], teams.DEPLOYER)),
                                     on_it[0])
    teams.require_on(who, run, teams.DEPLOYER, action)
    if busy:
        doing = busy[0]["deployment"]["status"]
        raise Conflict(f"run {busy[0]['id']} is {doing} on this endpoint; wait for it to finish"
                       + (" or roll it back" if doing == deployments.CANARY else ""))
    return run


def require_models_of(who: Caller, on_it: list[dict], model_ids: Iterable[str], action: str) -> None:
    """A change that moves a model's traffic needs deployer on the team of the run it came from: on an endpoint
    shared by two teams, one team may not starve the other's model (403 naming that team)."""
    by_model = model_runs(on_it)
    for model_id in sorted(model_ids):
        if model_id in by_model:
            teams.require_on(who, by_model[model_id], teams.DEPLOYER, f"{action} (model {model_id})")
