"""`trainyard runs …` beyond create/list/get/watch/cancel/delete: the run actions (retry, deploy [--canary-percent],
rollback, batch-predict, push-anyway, submit, run-now, restore, approve, reject) and the run's data (logs [-f],
history, artifacts, errors, endpoint-history), one command per API route, named as the route is; and
`trainyard models card`."""
from __future__ import annotations

import time

from shared.domain.log_severity import SEVERITIES
from trainyard_cli import format as fmt, gpu_fallback_option
from trainyard_cli.output import Output, read_document
from trainyard_cli.watch import TERMINAL

STAGES = ("Compile", "Examples", "Stats", "Schema", "Transform", "Train", "Evaluate", "Push")
LOG_POLL_S = 2.0


def register(runs, common) -> None:
    """Add the commands to the `runs` sub-parsers; `common(parser)` adds --json to each."""
    retry = common(runs.add_parser("retry", help="retry a failed or cancelled run as its next attempt"))
    retry.add_argument("run_id")
    retry.add_argument("--attempt", type=int, help="the attempt being retried (a repeat for it is a no-op)")
    retry.add_argument("--gpu-type", help="e.g. NVIDIA_TESLA_A100 (the machine type is re-derived)")
    retry.add_argument("--gpu-count", type=int)
    retry.add_argument("--machine-type")
    retry.add_argument("--machine-count", type=int, help="machines training together (a chief + workers on Vertex)")
    retry.add_argument("--on-demand", action="store_true", help="not Spot (preemptible) this time")
    gpu_fallback_option.add(retry)
    retry.add_argument("--epochs", type=int)
    retry.add_argument("--batch-size", type=int)
    retry.add_argument("--learning-rate", type=float)
    retry.add_argument("--body", help="a YAML/JSON file with more of the request (flags win)")
    retry.set_defaults(handler=retry_run)

    deploy = common(runs.add_parser("deploy", help="deploy the run's registered model to an endpoint"))
    deploy.add_argument("run_id")
    target = deploy.add_mutually_exclusive_group()
    target.add_argument("--endpoint-id", help="an existing endpoint (id or resource name)")
    target.add_argument("--endpoint-name", help="display name of a new endpoint (default the run name)")
    deploy.add_argument("--traffic-split", type=int, help="percent of the existing endpoint's traffic")
    staged = deploy.add_argument_group("canary", "stage the deploy on an existing endpoint: watched, then 100 % or "
                                                 "rolled back automatically")
    staged.add_argument("--canary-percent", type=int, help="the new model's share while it is watched")
    staged.add_argument("--watch-minutes", type=int, help="how long it is watched")
    staged.add_argument("--max-error-rate", type=float, help="errors / requests above which it is rolled back "
                                                             "(default 0.01)")
    staged.add_argument("--max-p95-latency-ms", type=float, help="p95 latency above which it is rolled back")
    staged.add_argument("--min-requests", type=int, help="requests before the error rate is judged (default 20)")
    deploy.set_defaults(handler=deploy_run)

    rollback = common(runs.add_parser("rollback", help="send the run's endpoint traffic back to the split before its "
                                                       "deploy (deployer; the model stays deployed at 0 %%)"))
    rollback.add_argument("run_id")
    rollback.add_argument("--reason", help="why (kept in the endpoint history)")
    rollback.set_defaults(handler=rollback_run)

    endpoint_history = common(runs.add_parser("endpoint-history", help="every traffic change of the run's "
                                                                       "deployment: who, when, from → to, why"))
    endpoint_history.add_argument("run_id")
    endpoint_history.set_defaults(handler=show_endpoint_history)
    batch = common(runs.add_parser("batch-predict", help="write top-K items per user to GCS JSONL and/or BigQuery"))
    batch.add_argument("run_id")
    batch.add_argument("--users", required=True, type=_users_file,
                       help="a file of user ids, one a line (or JSON lines of whole instances)")
    batch.add_argument("--k", type=int, help="items per user (default 10, at most the model's K)")
    batch.add_argument("--gcs-output", help="gs:// prefix under one of the team's buckets")
    batch.add_argument("--bigquery-output", help="project.dataset of the team (Vertex writes a predictions table)")
    batch.set_defaults(handler=batch_predict_run)

    for name, helptext in (("push-anyway", "register a not-blessed run's model anyway"),
                           ("submit", "submit a draft, or queue a pending run again"),
                           ("run-now", "start a scheduled run now (its one-time schedule is consumed)"),
                           ("restore", "bring a deleted run back before its grace period ends"),
                           ("approve", "a team admin approves a run above the team's per-run cap: it is queued")):
        action = common(runs.add_parser(name, help=helptext))
        action.add_argument("run_id")
        action.set_defaults(handler=simple_action, route=name)

    reject = common(runs.add_parser("reject", help="a team admin rejects a run awaiting approval: it is cancelled"))
    reject.add_argument("run_id")
    reject.add_argument("--reason", help="why (shown on the run)")
    reject.set_defaults(handler=reject_run)

    logs = common(runs.add_parser("logs", help="every stage's logs — its tasks, Dataflow jobs and the Trainer's job — "
                                               "each line labelled by stage (-f follows until the run ends)"))
    logs.add_argument("run_id")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the run is terminal")
    logs.add_argument("--stage", choices=STAGES)
    logs.add_argument("--severity", type=str.upper, choices=SEVERITIES, help="this severity and worse only")
    logs.add_argument("--attempt", type=int)
    logs.add_argument("--page-size", type=int, default=200)
    logs.set_defaults(handler=run_logs)

    history = common(runs.add_parser("history", help="per-epoch training history"))
    history.add_argument("run_id")
    history.add_argument("--attempt", type=int)
    history.set_defaults(handler=training_history)

    for name, handler, helptext in (("artifacts", artifacts, "where the run's artifacts, model and endpoint are"),
                                    ("errors", errors, "what went wrong, per attempt")):
        parser = common(runs.add_parser(name, help=helptext))
        parser.add_argument("run_id")
        parser.set_defaults(handler=handler)


def action_result(ui: Output, data: dict) -> None:
    run = data.get("training_run") or {}
    ui.line(f"{run.get('id')}  {run.get('name')} #{run.get('run_number')}  {ui.state(run.get('status'))}"
            f"  attempt {run.get('attempt')}")
    ui.line(data.get("message") or ("done" if data.get("changed", True) else "nothing to do"))
    for warning in data.get("warnings") or []:
        ui.line(f"warning: {warning}")


def retry_run(args, client, ui: Output) -> int:
    body = read_document(args.body) if args.body else {}
    if args.attempt is not None:
        body["attempt"] = args.attempt
    gpu = body.setdefault("gpu_config", {})
    for flag, key in (("gpu_type", "gpu_type"), ("gpu_count", "gpu_count"), ("machine_type", "machine_type"),
                      ("machine_count", "machine_count")):
        if getattr(args, flag) is not None:
            gpu[key] = getattr(args, flag)
    if args.on_demand:
        gpu["preemptible"] = False
    gpu_fallback_option.apply(body, args)
    params = body.setdefault("training_params", {})
    for flag in ("epochs", "batch_size", "learning_rate"):
        if getattr(args, flag) is not None:
            params[flag] = getattr(args, flag)
    data = client.post(f"/api/training-runs/{args.run_id}/retry", body)
    ui.result(data, lambda d: action_result(ui, d))
    return 0


CANARY_FLAGS = (("percent", "canary_percent"), ("watch_minutes", "watch_minutes"), ("max_error_rate", "max_error_rate"),
                ("max_p95_latency_ms", "max_p95_latency_ms"), ("min_requests", "min_requests"))


def deploy_run(args, client, ui: Output) -> int:
    body = {k: v for k, v in (("endpoint_id", args.endpoint_id), ("endpoint_name", args.endpoint_name),
                              ("traffic_split", args.traffic_split)) if v is not None}
    canary = {key: getattr(args, flag) for key, flag in CANARY_FLAGS if getattr(args, flag) is not None}
    if canary:  # the API names what is missing (canary.percent, canary.watch_minutes)
        body["canary"] = canary
    data = client.post(f"/api/training-runs/{args.run_id}/deploy", body)
    ui.result(data, lambda d: action_result(ui, d))
    return 0


def rollback_run(args, client, ui: Output) -> int:
    data = client.post(f"/api/training-runs/{args.run_id}/rollback", {"reason": args.reason} if args.reason else {})
    ui.result(data, lambda d: action_result(ui, d))
    return 0


def batch_lines(run: dict) -> list[str]:
    """What `runs get` shows of the run's batch predictions: status, progress and, per output, rows and where."""
    batch = run.get("batch_prediction") or {}
    if not batch:
        return []
    if batch.get("status") == "skipped":  # after training, for a run that is not blessed: why none were written
        return [f"batch predictions after training: none — {batch.get('error')}"]
    rows = sum(o.get("rows") or 0 for o in batch.get("outputs", {}).values())
    share = min(100, int(100 * rows / (batch["users"] * max(1, len(batch.get("outputs") or {}))) + 0.5)) if batch.get("users") else 0  # as the dashboard rounds
    users = batch.get("users") or batch.get("users_from")  # "all" or a file until the consumer has read them
    lines = [f"batch predictions: {batch.get('status')}" + (" (after training)" if batch.get("automatic") else "")
             + f"  top-{batch.get('k')} for {users} users  "
             f"{share}%  ({batch.get('machine_count')} machine(s))"]
    if batch.get("error"):
        lines.append(f"  failed: {batch['error']}")
    for kind, output in (batch.get("outputs") or {}).items():
        lines.append(f"  {kind}: {output.get('state') or 'queued'}  {output.get('rows') or 0} rows"
                     + (f", {output['failed_rows']} failed" if output.get("failed_rows") else "")
                     + f"  → {output.get('location') or output.get('destination')}")
    return lines


def _users_file(path: str) -> list:
    """One user id a line; a line starting with `{` is a whole instance (JSON)."""
    import argparse
    import json

    try:
        with open(path) as handle:
            lines = [line.strip() for line in handle if line.strip()]
        return [json.loads(line) if line.startswith("{") else line for line in lines]
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{path}: {exc}") from None


def batch_predict_run(args, client, ui: Output) -> int:
    body = {"users": args.users, **{k: v for k, v in (("k", args.k), ("gcs_output", args.gcs_output),
                                                       ("bigquery_output", args.bigquery_output)) if v is not None}}
    data = client.post(f"/api/training-runs/{args.run_id}/batch-predictions", body)
    ui.result(data, lambda d: action_result(ui, d))
    return 0


def _split(split: dict) -> str:
    return ", ".join(f"{k} {v}%" for k, v in sorted((split or {}).items(), key=lambda kv: -kv[1])) or "-"


def show_endpoint_history(args, client, ui: Output) -> int:
    run = client.get(f"/api/training-runs/{args.run_id}")["training_run"]
    data = {"run_id": run["id"], "deployment": run.get("deployment"), "endpoint_history": run.get("endpoint_history") or []}

    def human(d):
        deployment = d["deployment"] or {}
        watched = deployment.get("canary") or {}
        ui.line(f"{d['run_id']}  deployment {ui.state(deployment.get('status') or 'none')}"
                + (f"  canary {watched.get('status')}" + (f" until {watched['watch_until']}"
                                                           if watched.get("status") == "watching" else "")
                   if watched else ""))
        if watched.get("last_check"):
            check = watched["last_check"]
            ui.line(f"last check: {check.get('requests')} requests, {check.get('errors')} errors"
                    + (f", p95 {check['p95_latency_ms']:.0f} ms" if check.get("p95_latency_ms") is not None else ""))
        rows = [{**e, "split": f"{_split(e.get('from'))} → {_split(e.get('to'))}"} for e in d["endpoint_history"]]
        ui.table(rows, [("at", "WHEN", fmt.relative), ("action", "CHANGE"), ("by", "BY"), ("split", "FROM → TO"),
                        ("reason", "WHY")])

    ui.result(data, human)
    return 0


def simple_action(args, client, ui: Output) -> int:
    data = client.post(f"/api/training-runs/{args.run_id}/{args.route}")
    ui.result(data, lambda d: action_result(ui, d))
    return 0


def reject_run(args, client, ui: Output) -> int:
    data = client.post(f"/api/training-runs/{args.run_id}/reject", {"reason": args.reason} if args.reason else {})
    ui.result(data, lambda d: action_result(ui, d))
    return 0


def _log_line(ui: Output, entry: dict) -> str:
    stage = f"[{entry.get('stage')}] " if entry.get("stage") else ""
    when = f"{entry['timestamp']} " if entry.get("timestamp") else ""
    text = f"{when}{stage}{entry.get('message') or ''}"
    colour = {"ERROR": "31", "WARNING": "33"}.get(entry.get("severity") or "") if ui.colour else None
    return f"\033[{colour}m{text}\033[0m" if colour else text


def run_logs(args, client, ui: Output) -> int:
    """Page through the logs; with -f, keep asking from where the last page ended (its follow_token), or,
    from a source that gives none, re-read the last page and print what is new, until the run is terminal
    and nothing more is written. --json prints one entry per line."""
    path = f"/api/training-runs/{args.run_id}/logs"
    token, seen = None, 0
    while True:
        ended = args.follow and client.get(f"/api/training-runs/{args.run_id}")["training_run"]["status"] in TERMINAL
        page = client.get(path, stage=args.stage, severity=args.severity, attempt=args.attempt,
                          page_size=args.page_size, page_token=token)
        for entry in page.get("entries", [])[seen:]:
            ui.line(fmt_json(entry) if ui.as_json else _log_line(ui, entry))
        ui.out.flush()
        if page.get("next_page_token"):
            token, seen = page["next_page_token"], 0
            continue
        if page.get("follow_token"):
            token, seen = page["follow_token"], 0
        else:
            seen = len(page.get("entries", []))
        if not args.follow or ended:
            return 0
        time.sleep(LOG_POLL_S)


def fmt_json(entry: dict) -> str:
    import json

    return json.dumps(entry, default=str)


HISTORY_COLUMNS = [("epoch", "EPOCH"), ("loss", "LOSS"), ("val_loss", "VAL_LOSS"), ("learning_rate", "LR"),
                   ("metrics.recall_at_100", "R@100"), ("metrics.rmse", "RMSE"), ("timestamp", "WHEN", fmt.relative)]


def training_history(args, client, ui: Output) -> int:
    data = client.get(f"/api/training-runs/{args.run_id}/training-history", attempt=args.attempt)

    def human(d):
        ui.line(f"attempt {d['attempt']}, {len(d['epochs'])} epoch(s) from {d['source']}"
                + (f", best epoch {d['best_epoch']}" if d.get("best_epoch") else ""))
        ui.table(d["epochs"], HISTORY_COLUMNS)

    ui.result(data, human)
    return 0


def register_models(groups, common) -> None:
    """`trainyard models card RUN_ID`: the registered version's model card."""
    models = groups.add_parser("models", help="registered model versions").add_subparsers(dest="command", required=True,
                                                                                       metavar="COMMAND")
    card = common(models.add_parser("card", help="the model card of a run's registered version (Markdown; --json: "
                                                 "the card's fields)"))
    card.add_argument("run_id")
    card.set_defaults(handler=model_card)


def model_card(args, client, ui: Output) -> int:
    data = client.get(f"/api/training-runs/{args.run_id}/model-card")
    ui.result(data, lambda d: ui.line(d["markdown"].rstrip("\n") + f"\n\n(stored at {d['uri']})"))
    return 0


def artifacts(args, client, ui: Output) -> int:
    data = client.get(f"/api/training-runs/{args.run_id}/artifacts")

    def human(d):
        ui.line(f"artifacts: {d.get('artifacts_uri') or '(none yet)'}")
        if d.get("console_url"):
            ui.line(f"console: {d['console_url']}")
        width = max([len(name) for name in d.get("artifacts", {})] + [0])
        for name, item in sorted((d.get("artifacts") or {}).items()):
            ui.line(f"  {name.ljust(width)}  {item.get('uri')}")
        registry = d.get("registry")
        if registry:
            ui.line(f"model: {registry['model_resource_name']} (version {registry.get('model_version')})"
                    + (" pushed anyway" if registry.get("pushed_anyway") else ""))
        endpoint = d.get("endpoint")
        if endpoint:
            ui.line(f"endpoint: {ui.state(endpoint.get('status'))} {endpoint.get('endpoint_resource_name') or ''}".rstrip())
            if endpoint.get("predict_url"):
                ui.line(f"predict URL: {endpoint['predict_url']}")

    ui.result(data, human)
    return 0


def errors(args, client, ui: Output) -> int:
    data = client.get(f"/api/training-runs/{args.run_id}/errors")

    def human(d):
        ui.line(f"{d['run_id']}  {ui.state(d['status'])}")
        for attempt in d.get("attempts", []):
            where = attempt.get("error_stage") or attempt.get("cancelled_at_stage")
            what = attempt.get("error_message") or (f"cancelled by {attempt['cancelled_by']}" if attempt.get("cancelled_by") else "")
            ui.line(f"attempt {attempt['attempt']}: {ui.state(attempt.get('status'))}"
                    + (f" at {where}" if where else "") + (f": {what}" if what else ""))
        for name, problem in (d.get("action_errors") or {}).items():
            ui.line(f"{name}: {problem.get('status')}: {problem.get('error')}")
        if not d.get("attempts") and not d.get("action_errors"):
            ui.line("no errors")

    ui.result(data, human)
    return 0
