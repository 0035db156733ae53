"""`trainyard endpoints list|get|traffic|undeploy`: the endpoints of your teams, one endpoint's models, split, runs
and history, a traffic split set by hand and a model taken off (GET /api/endpoints, GET /api/endpoints/{id},
POST …/traffic, POST …/undeploy; docs/lifecycle.md "Endpoints"). A run's rollback is `trainyard runs rollback`."""
from __future__ import annotations

import argparse

from trainyard_cli import format as fmt
from trainyard_cli.output import Output
from trainyard_cli.run_commands import _split


def register(groups, common) -> None:
    endpoints = groups.add_parser("endpoints", help="endpoints: models, traffic, history; change traffic, "
                                                    "undeploy").add_subparsers(dest="command", required=True)
    listing = common(endpoints.add_parser("list", help="the endpoints of your teams, by id"))
    listing.add_argument("--page-size", type=int, default=50)
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.set_defaults(handler=list_endpoints)
    get = common(endpoints.add_parser("get", help="an endpoint's models, split, runs, canary and history"))
    get.add_argument("endpoint_id")
    get.set_defaults(handler=show_endpoint)
    traffic = common(endpoints.add_parser("traffic", help="set the traffic split: MODEL=PERCENT ..., together 100 "
                                                          "(a model left out gets 0)"))
    traffic.add_argument("endpoint_id")
    traffic.add_argument("split", nargs="+", type=_share, metavar="MODEL=PERCENT")
    traffic.add_argument("--reason", help="why (kept in the endpoint's history)")
    traffic.set_defaults(handler=set_traffic)
    undeploy = common(endpoints.add_parser("undeploy", help="take a deployed model off the endpoint (its traffic "
                                                            "goes to the others)"))
    undeploy.add_argument("endpoint_id")
    undeploy.add_argument("deployed_model_id")
    undeploy.add_argument("--force", action="store_true", help="even the last model holding traffic (the endpoint "
                                                               "then serves nothing)")
    undeploy.add_argument("--reason", help="why (kept in the endpoint's history)")
    undeploy.set_defaults(handler=undeploy_model)


def _share(text: str) -> tuple[str, int]:
    model, sep, percent = text.rpartition("=")
    if not sep or not model or not percent.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not MODEL=PERCENT (e.g. 4711=90)")
    return model, int(percent)


def _models(endpoint: dict) -> str:
    return ", ".join(f"{m['id']} {m['traffic_percent']}%" + (f" ({m['run']['name']})" if m.get("run") else "")
                     for m in endpoint["deployed_models"]) or "-"


def list_endpoints(args, client, ui: Output) -> int:
    found, token = [], None
    while True:
        page = client.get("/api/endpoints", page_size=args.page_size, **({"page_token": token} if token else {}))
        found += page["endpoints"]
        token = page.get("next_page_token")
        if not token or not args.all:
            break
    data = {"endpoints": found, "next_page_token": token}

    def human(d: dict) -> None:
        ui.table([{**e, "models": _models(e), "team": ", ".join(e.get("teams") or []) or "-",
                   "canary_run": (e.get("canary") or {}).get("run_id") or ""} for e in d["endpoints"]],
                 [("id", "ID"), ("display_name", "NAME"), ("models", "MODELS (SHARE, RUN)"), ("team", "TEAMS"),
                  ("canary_run", "CANARY")])
        if d["next_page_token"]:
            ui.line("more: --all to list every page")

    ui.result(data, human)
    return 0


def show_endpoint(args, client, ui: Output) -> int:
    data = client.get(f"/api/endpoints/{args.endpoint_id}")

    def human(d: dict) -> None:
        e = d["endpoint"]
        ui.line(f"{e['id']}  {e['display_name']}  teams: {', '.join(e.get('teams') or []) or '-'}")
        ui.line(e["resource_name"])
        ui.table([{**m, "run_name": (m.get("run") or {}).get("name", "-"), "run_id": (m.get("run") or {}).get("id", "-"),
                   "version": m.get("model_version_id")} for m in e["deployed_models"]],
                 [("id", "DEPLOYED MODEL"), ("traffic_percent", "SHARE %"), ("run_name", "RUN"), ("run_id", "RUN ID"),
                  ("version", "VERSION")])
        if e.get("canary"):
            c = e["canary"]
            ui.line(f"canary: run {c['run_id']} at {c.get('percent')} %, {c.get('status')}"
                    + (f" until {c['watch_until']}" if c.get("watch_until") else ""))
        rows = [{**h, "split": f"{_split(h.get('from'))} → {_split(h.get('to'))}"} for h in e.get("history") or []]
        ui.table(rows, [("at", "WHEN", fmt.relative), ("action", "CHANGE"), ("by", "BY"), ("run_name", "RUN"),
                        ("split", "FROM → TO"), ("reason", "WHY")])

    ui.result(data, human)
    return 0


def _changed(ui: Output, data: dict) -> None:
    ui.line(data.get("message") or ("queued" if data.get("changed") else "nothing to do"))
    for warning in data.get("warnings") or []:
        ui.line(f"warning: {warning}")


def set_traffic(args, client, ui: Output) -> int:
    body = {"traffic_split": dict(args.split), **({"reason": args.reason} if args.reason else {})}
    data = client.post(f"/api/endpoints/{args.endpoint_id}/traffic", body)
    ui.result(data, lambda d: _changed(ui, d))
    return 0


def undeploy_model(args, client, ui: Output) -> int:
    body = {"deployed_model_id": args.deployed_model_id, "force": args.force,
            **({"reason": args.reason} if args.reason else {})}
    data = client.post(f"/api/endpoints/{args.endpoint_id}/undeploy", body)
    ui.result(data, lambda d: _changed(ui, d))
    return 0
