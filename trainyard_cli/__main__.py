"""trainyard — command-line client of the Trainyard API (one command per API route, named as the route is).

Every command is listed below; `trainyard GROUP COMMAND --help` gives its flags. Start with:
    trainyard experiments top --model-type retrieval
    trainyard runs create --name my-model --best retrieval --epochs 10 --watch
    source <(trainyard completion bash)

Files (--file, --body) are YAML or JSON ('-' reads standard input). --json (before or after the command)
prints the API's own answer; `runs logs --json` prints one JSON entry per line. Human output rounds
metrics to 4 significant digits, shows times relative to now and durations, and colours states on a
terminal only (not in a pipe, not with NO_COLOR set).

Exit codes: 0 ok; 1 the API refused or failed (its message on stderr, e.g. `HTTP 409: run … is running`)
or could not be reached; 2 usage (a wrong flag, an unreadable file). `runs watch` (and `runs create
--watch`) end with the run: 0 completed (and deployed when it deploys), 1 failed or cancelled, 2 not
blessed, 3 completed but the deployment failed.

`admin dead-letters` shows what a topic's `<topic>-dead-letter-hold` subscription keeps (`list`, nothing
consumed) or republishes it onto its topic, marked trainyard_replay_of, acknowledging each message only
after its publish (`replay`). It calls the admin-only API routes (your e-mail must be in the
deployment's TRAINYARD_ADMINS); with --direct it goes straight to Pub/Sub with your own credentials
instead (GOOGLE_CLOUD_PROJECT; PUBSUB_EMULATOR_HOST locally), for when the API itself is down. Every
consumer is idempotent, so a replay is safe to repeat.

`admin audit` shows the audit trail (admins only): every state-changing request, refused ones included,
newest first — who, which role on which team, what, when, the result. Filter with --actor, --team,
--action 'POST /api/training-runs/<run_id>/cancel', --result ok|refused|failed|403, --since/--until
(ISO 8601); --cursor continues where the previous page stopped.

The API URL comes from TRAINYARD_API_URL (default the local stack), the identity from TRAINYARD_TOKEN
(default: the local developer token on localhost, else `gcloud auth print-identity-token`).
"""
from __future__ import annotations

import argparse
import json
import sys

from shared.contract import topics
from shared.domain import model_kinds, triggers
from shared.domain.runs import gate_lifts
from shared.domain.warm_start import WarmStartRecord
from shared.adapters.dead_letters import MAX_LIMIT as MAX_DEAD_LETTERS
from trainyard_cli import (catalog_commands, completion, endpoint_commands, paging, run_commands, schedule_commands,
                           spend_commands, team_option)
from trainyard_cli import tensorboard_command
from trainyard_cli import format as fmt
from trainyard_cli.client import ApiClient, ApiError
from trainyard_cli import gpu_fallback_option
from trainyard_cli.output import Output, UsageError, read_document
from trainyard_cli.watch import deployment_lines, exit_code, watch

RUN_COLUMNS = [("id", "ID"), ("name", "NAME"), ("team", "TEAM"), ("run_number", "#"), ("status", "STATUS", fmt.state),
               ("current_stage", "STAGE"), ("progress_percent", "%"), ("model_type", "TYPE"),
               ("recall_at_100", "R@100"), ("duration_seconds", "DURATION", fmt.duration),
               ("estimated_cost.total", "COST", fmt.money), ("created_at", "CREATED", fmt.relative)]
EXP_COLUMNS = [("id", "ID"), ("number", "EXP #"), ("name", "NAME"), ("team", "TEAM"), ("model_type", "TYPE"),
               ("metrics.recall_at_100", "R@100"), ("metrics.test_rmse", "RMSE"), ("dataset_name", "DATASET"),
               ("source.by", "POSTED BY")]


def common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--json and --url on every command too (so `trainyard runs get X --json` works as well as before it);
    SUPPRESS keeps a flag given before the command when it is not repeated after it."""
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    parser.add_argument("--url", default=argparse.SUPPRESS, help="API URL (default TRAINYARD_API_URL)")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainyard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--url", help="API URL (default TRAINYARD_API_URL)")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")

    runs = groups.add_parser("runs", help="training runs").add_subparsers(dest="command", required=True,
                                                                          metavar="COMMAND")
    create = common(runs.add_parser("create", help="create a run from an experiment"))
    create.add_argument("--name", required=True)
    team_option.add(create)
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--experiment", help="base experiment id")
    source.add_argument("--best", choices=model_kinds.NAMES,
                        help="use the best experiment of this model type")
    create.add_argument("--epochs", type=int)
    create.add_argument("--batch-size", type=int)
    create.add_argument("--learning-rate", type=float)
    create.add_argument("--threshold", type=float, help="blessing threshold of the primary metric")
    create.add_argument("--warm-start", metavar="SOURCE", type=warm_start_option,
                        help="start from trained weights: experiment (the base one), experiment:ID, run:ID, or "
                             "champion (found when the run trains; none yet: a fresh start)")
    gpu_fallback_option.add(create)
    create.add_argument("--body", help="a YAML/JSON file with more of the request (merged under the flags)")
    create.add_argument("--notify-webhook", action="append", metavar="URL",
                        help="tell this https:// webhook on a public address (Slack-compatible JSON) when the run "
                             "ends; repeatable; stored as a secret, shown by host only")
    create.add_argument("--notify-secret", metavar="NAME",
                        help="the signing secret's name for the webhooks (it must be declared for their URLs)")
    create.add_argument("--notify-topic", metavar="TOPIC",
                        help="publish to this Pub/Sub topic of the project (not one of Trainyard's own) when the run ends")
    create.add_argument("--watch", action="store_true", help="follow the run to its end")
    create.add_argument("--draft", action="store_true", help="save it as a draft, not submitted (`runs submit` later)")
    listing = common(runs.add_parser("list", help="runs, newest first"))
    listing.add_argument("--status", help="one or more, comma-separated (failed,cancelled)")
    listing.add_argument("--model-type")
    listing.add_argument("--dataset", help="a dataset id")
    listing.add_argument("--schedule", help="a schedule id: its runs")
    listing.add_argument("--since", help="made at or after (ISO 8601 date or time)")
    listing.add_argument("--until", help="made before (ISO 8601 date or time)")
    listing.add_argument("--registered", action="store_true", help="only runs whose model is in the registry")
    paging.add(listing, "words of the name, id, description, model, creator or dataset, each the start of a word")
    listing.add_argument("--deleted", action="store_true",
                         help="the deleted runs, restorable until their purge_after (`runs restore`)")
    for name, helptext in (("get", "one run: stages, gate metric, cost, model, deployment"),
                           ("watch", "follow a run until it is terminal"), ("cancel", "cancel a run"),
                           ("delete", "delete a finished run (restorable for the grace period, then purged "
                                      "with its artifacts)")):
        common(runs.add_parser(name, help=helptext)).add_argument("run_id")
    run_commands.register(runs, common)
    tensorboard_command.register(runs, common)
    run_commands.register_models(groups, common)

    experiments = groups.add_parser("experiments", help="find the experiment to train from").add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    top = common(experiments.add_parser("top", help="the best experiments of a model type"))
    top.add_argument("--model-type", default=model_kinds.NAMES[0])
    top.add_argument("--limit", type=int, default=5)
    common(experiments.add_parser("search", help="experiments by name or number")).add_argument("query")

    schedule_commands.register(groups, common)
    catalog_commands.register(groups, common)
    spend_commands.register(groups, common)
    endpoint_commands.register(groups, common)

    admin = groups.add_parser("admin", help="operator tools (the reconciler, dead letters, the audit trail, team assignments)").add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    common(admin.add_parser("reconciler", help="what the reconciler checked and repaired")).set_defaults(
        handler=show_reconciler)
    dead = admin.add_parser("dead-letters", help="list or replay what a topic gave up on").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    for name in ("list", "replay"):
        action = common(dead.add_parser(name, help="show what the hold keeps" if name == "list"
                                        else "republish it to its topic, then acknowledge it"))
        action.add_argument("topic", choices=topics.ALL, metavar="TOPIC", help=", ".join(topics.ALL))
        action.add_argument("--limit", type=int, default=10, help=f"at most this many (1 to {MAX_DEAD_LETTERS})")
        action.add_argument("--direct", action="store_true",
                            help="straight to Pub/Sub with your own credentials, not through the API")
        action.set_defaults(handler=dead_letters)

    trail = common(admin.add_parser("audit", help="who did what: every state-changing request, newest first"))
    trail.add_argument("--actor", help="an e-mail, or 'unauthenticated'")
    trail.add_argument("--team")
    trail.add_argument("--action", help="method and route, e.g. 'POST /api/training-runs/<run_id>/cancel'")
    trail.add_argument("--result", help="ok, refused, failed, or an HTTP status such as 403")
    trail.add_argument("--since", help="ISO 8601 time (inclusive)")
    trail.add_argument("--until", help="ISO 8601 time (exclusive)")
    trail.add_argument("--limit", type=int, default=50)
    trail.add_argument("--cursor", help="the next page (printed under the table)")
    trail.set_defaults(handler=show_audit)
    assign = common(admin.add_parser("assign-team", help="give a run, schedule or catalog entry a team (admins of "
                                                         "both teams; a platform admin for one made before teams)"))
    assign.add_argument("kind", choices=ASSIGNABLE, metavar="KIND", help=", ".join(ASSIGNABLE))
    assign.add_argument("item_id", metavar="ID")
    assign.add_argument("team", metavar="TEAM")
    assign.set_defaults(handler=assign_team)

    common(groups.add_parser("whoami", help="who the API says you are: your role per team, platform admin or "
                                            "not")).set_defaults(handler=whoami)
    common(groups.add_parser("vocabulary", help="the API's statuses, stages, metrics, GPU types and which action "
                                                "a run offers in which status")).set_defaults(handler=show_vocabulary)

    shells = groups.add_parser("completion", help="print a shell-completion script (bash or zsh)")
    shells.add_argument("shell", choices=("bash", "zsh"))
    parser.epilog = "commands:\n" + command_list(parser)
    return parser


def command_list(parser: argparse.ArgumentParser) -> str:
    """One line per command, generated from the parser so --help can never miss one."""
    rows = []
    for path, node, text in completion.commands(parser):
        if completion.is_leaf(node) and path != "trainyard":
            positional = " ".join(a.metavar or a.dest.upper() for a in node._actions
                                  if not a.option_strings and a.dest != "help")
            rows.append((f"{path} {positional}".strip(), text))
    width = max(len(usage) for usage, _ in rows)
    return "\n".join(f"  {usage.ljust(width)}  {text}" for usage, text in rows)


def show_reconciler(args, client, ui) -> int:
    """`admin reconciler`: GET /api/reconciler — its passes, totals per repair and latest repairs."""
    status = client.get("/api/reconciler")["reconciler"]

    def human(data):
        ui.line(f"passes: {data['passes']}, last {fmt.relative(data.get('last_pass_at'))}")
        last = data.get("last_pass") or {}
        ui.line(f"last pass: checked {last.get('checked') or {}}, repaired {last.get('repaired') or {}}")
        ui.line(f"repaired in all: {data.get('totals') or {}}")
        for repair in data.get("recent_repairs") or []:
            ui.line(f"  {fmt.relative(repair.get('at'))}  {repair.get('run_id')}  {repair.get('action')}")

    ui.result(status, human)
    return 0


AUDIT_COLUMNS = [("at", "AT"), ("actor", "ACTOR"), ("action", "ACTION"), ("path_params", "PARAMS", fmt.pairs),
                 ("authorization", "ROLE", lambda a: f"{a.get('role')}@{a.get('team')}" if a else ""),
                 ("status", "RESULT", str), ("error", "ERROR", lambda e: e or "")]


def show_audit(args, client, ui) -> int:
    """`admin audit`: GET /api/admin/audit (admins only) — the audit trail, filtered, newest first."""
    data = client.get("/api/admin/audit", actor=args.actor, team=args.team, action=args.action, result=args.result,
                      since=args.since, until=args.until, limit=args.limit, cursor=args.cursor)

    def human(d):
        ui.table(d["records"], AUDIT_COLUMNS)
        if d.get("next_cursor"):
            ui.line(f"more: --cursor {d['next_cursor']}")

    ui.result(data, human)
    return 0


def whoami(args, client, ui) -> int:
    """`whoami`: GET /api/me — the identity the API verified and what it may do on each team."""
    me = client.get("/api/me")["me"]

    def human(data):
        ui.line(data["email"] + ("  (platform admin: admin on every team)" if data["platform_admin"] else ""))
        for team, role in sorted(data["roles"].items()):
            ui.line(f"  {team}: {role}")
        if not data["roles"]:
            ui.line("  no role on any team: ask a team's admin to add you (docs/security.md, \"Teams and roles\")")
        if data.get("groups"):
            ui.line("groups: " + ", ".join(data["groups"]))

    ui.result(me, human)
    return 0


def show_vocabulary(args, client, ui) -> int:
    """`vocabulary`: GET /api/vocabulary — the words the API (and the dashboard) use."""
    data = client.get("/api/vocabulary")["vocabulary"]

    def human(v):
        ui.line("statuses: " + ", ".join(v["statuses"]))
        for group, members in v["status_groups"].items():
            ui.line(f"  {group}: {', '.join(members)}")
        ui.line("stages: " + " → ".join(s["name"] for s in v["stages"]))
        for model in v["model_types"]:
            ui.line(f"{model['name']}: primary metric {model['primary_metric']}; gate metrics "
                    f"{', '.join(model['gate_metrics'])}")
        ui.line("lower is better: " + ", ".join(m["name"] for m in v["metrics"] if m["lower_is_better"]))
        ui.line("training defaults: " + ", ".join(f"{k} {json.dumps(d)}" for k, d in v["training"]["defaults"].items()))
        ui.line("GPUs: " + ", ".join(f"{g['name']} x{'/'.join(map(str, g['counts']))}" for g in v["gpu_types"]))
        for g in v["gpu_types"]:  # the machine each count gets, then the others Vertex accepts with it
            ui.line(f"  {g['name']}: " + "; ".join(
                f"x{n} {m['default']}" + (f" (or {', '.join(t for t in m['admitted'] if t != m['default'])})"
                                          if len(m["admitted"]) > 1 else "") for n, m in g["machines"].items()))
        for action in v["actions"]:
            conditions = [f"with {f}" for f in action["requires"]] + [f"without {f}" for f in action["unless"]]
            ui.line(f"{action['name']}: {', '.join(action['statuses'])}{' (' + ', '.join(conditions) + ')' if conditions else ''}"
                    f"  {action['method']} {action['path']}")

    ui.result(data, human)
    return 0


# The kinds as the API names its routes, and the collections POST /api/admin/team-assignments takes.
ASSIGNABLE = {"runs": "training_runs", "schedules": "training_schedules", "datasets": "datasets",
              "feature-configs": "feature_configs", "model-configs": "model_configs", "experiments": "experiments"}


def assign_team(args, client, ui) -> int:
    """`admin assign-team KIND ID TEAM`: POST /api/admin/team-assignments."""
    data = client.post("/api/admin/team-assignments",
                       {"kind": ASSIGNABLE[args.kind], "id": args.item_id, "team": args.team})
    ui.result(data, lambda d: ui.line(f"{args.kind} {d['id']} now belongs to team {d['team']}"))
    return 0


def dead_letters(args, client, ui) -> int:
    """`admin dead-letters list|replay TOPIC`: GET /api/admin/dead-letters/TOPIC or POST …/replay (admins
    only); --direct: the same shared/adapters/dead_letters.py, straight to Pub/Sub with the operator's credentials."""
    if args.direct:
        from dataclasses import asdict

        from shared.adapters.dead_letters import DeadLetters
        from shared.errors import FieldError, NotFound, TransientError
        from shared.settings import get_settings

        letters = DeadLetters(get_settings().project)
        try:
            found = (letters.list if args.action == "list" else letters.replay)(args.topic, args.limit)
        except (FieldError, NotFound) as exc:
            raise UsageError(str(exc)) from None
        except TransientError as exc:
            raise ApiError(0, {"message": str(exc)}) from None
        found = [asdict(letter) for letter in found]
    elif args.action == "list":
        found = client.get(f"/api/admin/dead-letters/{args.topic}", limit=args.limit)["dead_letters"]
    else:
        found = client.post(f"/api/admin/dead-letters/{args.topic}/replay", limit=args.limit)["dead_letters"]

    def human(letters):
        ui.line(f"{len(letters)} message(s) {'held' if args.action == 'list' else 'replayed'} from {args.topic}")
        for letter in letters:
            ui.line(f"{letter['message_id']}  {letter['publish_time']}  {letter['data'][:120]}"
                    + (f"  -> {letter['replayed_as']}" if letter.get("replayed_as") else ""))

    ui.result(found, human)
    return 0


def create_body(args, client: ApiClient) -> dict:
    body = team_option.apply(read_document(args.body) if args.body else {}, args)
    body["name"] = args.name
    if args.best:
        top = client.get("/api/experiments/top-for-training", model_type=args.best, limit=1)["experiments"]
        if not top:
            raise UsageError(f"no {args.best} experiment with metrics to start from")
        body["base_experiment_id"] = top[0]["id"]
    else:
        body["base_experiment_id"] = args.experiment
    params = body.setdefault("training_params", {})
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("learning_rate", "learning_rate")):
        if getattr(args, flag) is not None:
            params[key] = getattr(args, flag)
    if args.notify_webhook or args.notify_topic:
        notifications = body.setdefault("notifications", {})
        notifications.setdefault("webhooks", []).extend(
            {"url": url, **({"secret": args.notify_secret} if args.notify_secret else {})}
            for url in args.notify_webhook or [])
        if args.notify_topic:
            notifications["pubsub_topic"] = args.notify_topic
    elif args.notify_secret:
        raise UsageError("--notify-secret signs --notify-webhook: give a webhook too")
    if args.warm_start:
        params["warm_restart"] = args.warm_start
    gpu_fallback_option.apply(body, args)
    if args.draft:
        body["draft"] = True
    if args.threshold is not None:
        model_type = args.best or client.get(f"/api/experiments/{args.experiment}")["item"]["model_type"]
        body["evaluator_config"] = {"enabled": True,
                                    "blessing_threshold": primary_threshold(client, model_type, args.threshold)}
    return body


def warm_start_option(value: str) -> dict:
    """--warm-start SOURCE[:ID] as the request's training_params.warm_restart."""
    source, _, source_id = value.partition(":")
    if source not in ("experiment", "run", "champion") or (source == "champion" and source_id) or \
            (source == "run" and not source_id):
        raise argparse.ArgumentTypeError("give experiment, experiment:ID, run:ID or champion")
    return {"enabled": True, "source": source, **({f"{source}_id": source_id} if source_id else {})}


def primary_threshold(client: ApiClient, model_type: str, value: float) -> dict:
    """A blessing threshold on the model type's primary metric, bounded in its direction (a floor for a
    recall, a ceiling for an error): both as the server states them in GET /api/vocabulary."""
    words = client.get("/api/vocabulary")["vocabulary"]
    metric = next((m["primary_metric"] for m in words["model_types"] if m["name"] == model_type), None)
    if metric is None:
        raise UsageError(f"the API knows no model type {model_type!r}")
    lower = any(m["name"] == metric and m["lower_is_better"] for m in words["metrics"])
    return {"metric": metric, "max_value" if lower else "min_value": value}


def gate_line(run_: dict) -> str | None:
    """The blessing gate: the metric against its threshold and its lift over the baselines, once the
    Evaluator has decided."""
    gate = run_.get("evaluation_results") or {}
    if not gate.get("threshold_metric"):
        return None
    verdict = "blessed" if gate.get("blessed") else "not blessed"
    lifts = "".join(f"; {words}" for words in gate_lifts(gate))
    return (f"gate: {gate['threshold_metric']} {fmt.metric(gate.get('actual_value'))} vs threshold "
            f"{fmt.metric(gate.get('threshold_value'))}{lifts}: {gate.get('reason') or verdict}")


def cost_lines(run_: dict) -> list[str]:
    cost = run_.get("estimated_cost") or {}
    if cost.get("total") is None:
        return []
    currency = cost.get("currency", "USD")
    lines = [f"estimated cost: {fmt.money(cost['total'], currency)}"
             + (f" ({cost['region']}, prices of {cost.get('prices_as_of')})" if cost.get("region") else "")]
    for item in cost.get("stages") or []:
        if item.get("cost"):
            lines.append(f"  {item['stage']:<10} {fmt.money(item['cost'], currency):>9}  "
                         f"{fmt.metric(item.get('machine_hours'))} h {item.get('machine_type')}"
                         + (f" + {item['accelerator_count']} x {item['accelerator_type']}" if item.get("accelerator_count") else "")
                         + (" Spot" if item.get("spot") else ""))
    return lines


def describe(run_: dict, ui: Output | None = None) -> list[str]:
    """`runs get` for a person: what the run is, where it got to, how long it took, what it cost, its model
    and its deployment."""
    state = ui.state if ui else (lambda v: v or "")
    lines = [f"{run_['id']}  {run_.get('name')} #{run_.get('run_number')}  {state(run_.get('status'))}"]
    created = run_.get("created_at")
    if created:
        lines.append(f"created {fmt.relative(created)} by {run_.get('created_by') or '?'}"
                     + (f" for team {run_['team']}" if run_.get("team") else "")
                     + (f", attempt {run_['attempt']}" if (run_.get("attempt") or 1) > 1 else "")
                     + (f", took {fmt.duration(run_['duration_seconds'])}" if run_.get("duration_seconds") else ""))
    if run_.get("trigger"):
        lines.append(f"triggered: {triggers.describe(run_['trigger'])}")
    lines.append(f"stage: {run_.get('current_stage') or '-'}  progress: {run_.get('progress_percent') or 0}%"
                 + (f"  epoch {run_['current_epoch']}/{run_.get('total_epochs') or '?'}" if run_.get("current_epoch") else ""))
    timed = [f"{s['name']} {fmt.duration(s['duration_seconds'])}" for s in run_.get("stage_details") or []
             if s.get("duration_seconds") is not None]
    if timed:
        lines.append("stages: " + ", ".join(timed))
    if run_.get("error_message"):
        lines.append(f"failed at {run_.get('error_stage')}: {run_['error_message']}")
    if gate_line(run_):
        lines.append(gate_line(run_))
    if (run_.get("warm_start") or {}).get("status", "none") != "none":
        lines.append(f"warm start: {WarmStartRecord.model_validate(run_['warm_start']).summary()}")
    metrics = {k: v for k, v in (run_.get("metrics") or {}).items() if isinstance(v, (int, float))}
    if metrics:
        lines.append("metrics: " + ", ".join(f"{k} {fmt.metric(v)}" for k, v in metrics.items()))
    lines += gpu_fallback_option.attempt_lines(run_)
    lines += cost_lines(run_)
    if run_.get("vertex_model_resource_name"):
        lines.append(f"model: {run_['vertex_model_resource_name']} (version {run_.get('vertex_model_version')})")
    return lines + deployment_lines(run_) + run_commands.batch_lines(run_)


def run_command(args, client: ApiClient, ui: Output, out) -> int:
    """The commands of the first version (runs create/list/get/watch/cancel/delete, experiments)."""
    get_run = lambda: client.get(f"/api/training-runs/{args.run_id}")["training_run"]  # noqa: E731
    if args.group == "runs":
        if args.command == "create":
            created = client.post("/api/training-runs", create_body(args, client))
            run_ = created["training_run"]
            if not args.json:
                ui.line(f"created {run_['id']} ({run_['name']} #{run_['run_number']}), {ui.state(run_['status'])}")
                for warning in created.get("warnings", []):
                    ui.line(f"warning: {warning}")
            if args.watch:
                final = watch(lambda: client.get(f"/api/training-runs/{run_['id']}")["training_run"], out=out)
                ui.json(final) if args.json else None
                return exit_code(final)
            if args.json:
                ui.json(created)
        elif args.command == "list":
            data = paging.fetch(client, "/api/training-runs", "training_runs", args, status=args.status,
                                model_type=args.model_type, dataset=args.dataset, schedule_id=args.schedule,
                                since=args.since, until=args.until,
                                registered="true" if args.registered else None,
                                deleted="true" if args.deleted else None)
            ui.result(data, lambda d: (ui.table(d["training_runs"], RUN_COLUMNS), paging.next_hint(ui, d)))
        elif args.command == "get":
            ui.result(get_run(), lambda r: ui.lines(describe(r, ui)))
        elif args.command == "watch":
            final = watch(get_run, out=out)
            if args.json:
                ui.json(final)
            elif final.get("error_message"):
                ui.line(f"failed at {final.get('error_stage')}: {final['error_message']}")
            return exit_code(final)
        elif args.command == "cancel":
            data = client.post(f"/api/training-runs/{args.run_id}/cancel")
            ui.result(data, lambda d: run_commands.action_result(ui, d))
        elif args.command == "delete":
            data = client.delete(f"/api/training-runs/{args.run_id}")
            ui.result(data, lambda d: ui.line(f"deleted {args.run_id}: {d.get('message') or ''}".rstrip(": ")))
    elif args.group == "experiments":
        if args.command == "top":
            data = client.get("/api/experiments/top-for-training", model_type=args.model_type, limit=args.limit)
        else:
            data = client.get("/api/experiments/search", q=args.query)
        ui.result(data, lambda d: ui.table(d["experiments"], EXP_COLUMNS))
    return 0


def run(argv: list[str], out=sys.stdout) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # a usage error exits 2 (argparse)
    if args.group == "completion":
        out.write(completion.script(parser, args.shell))
        return 0
    client = ApiClient(url=args.url)
    ui = Output(out, args.json)
    try:
        handler = getattr(args, "handler", None)
        return handler(args, client, ui) if handler else run_command(args, client, ui, out)
    except UsageError as exc:
        sys.stderr.write(f"trainyard: {exc}\n")
        return 2
    except ApiError as exc:
        sys.stderr.write(f"trainyard: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"trainyard: cannot reach the API at {client.url} ({exc}); is the stack up? (make up)\n")
        return 1
    except KeyboardInterrupt:
        return 130


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
