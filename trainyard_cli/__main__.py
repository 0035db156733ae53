"""trainyard — command-line client of the Trainyard API.

    trainyard runs create --name NAME (--experiment ID | --best MODEL_TYPE) [--epochs N] [--batch-size N]
                          [--learning-rate X] [--threshold X] [--body FILE]
    trainyard runs list [--status S] [--model-type T] [--search Q] [--page-size N]
    trainyard runs get RUN_ID
    trainyard runs watch RUN_ID
    trainyard runs cancel RUN_ID
    trainyard runs delete RUN_ID
    trainyard experiments top [--model-type retrieval] [--limit 5]
    trainyard experiments search QUERY
    trainyard admin dead-letters list TOPIC [--limit N]
    trainyard admin dead-letters replay TOPIC [--limit N]

`runs get` prints the run's status, model and deployment (status, endpoint, predict URL). `runs watch`
(and `runs create --watch`) follows a run to its end and, when its deployment_config deploys after
training, on until the deployment is deployed or failed. Exit codes of watch: 0 completed (and deployed
when it deploys), 2 not blessed, 1 failed or cancelled, 3 completed but the deployment failed.

`admin dead-letters` reads a topic's `<topic>-dead-letter-hold` subscription straight from Pub/Sub with
your own credentials (GOOGLE_CLOUD_PROJECT; PUBSUB_EMULATOR_HOST locally): `list` shows what is held
without consuming it, `replay` republishes it to its topic (marked trainyard_replay_of) and then
acknowledges it. Every consumer is idempotent, so a replay is safe to repeat.

Add --json for machine-readable output. The API URL comes from TRAINYARD_API_URL (default the local
stack), the identity from TRAINYARD_TOKEN (default: the local developer token on localhost, else
`gcloud auth print-identity-token`).
"""
from __future__ import annotations

import argparse
import json
import sys

from trainyard_cli.client import ApiClient, ApiError
from trainyard_cli.watch import deployment_lines, exit_code, watch


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    cells = [[str(_dig(row, key) if _dig(row, key) is not None else "") for key, _ in columns] for row in rows]
    widths = [max([len(title)] + [len(c[i]) for c in cells]) for i, (_, title) in enumerate(columns)]
    lines = ["  ".join(title.ljust(w) for (_, title), w in zip(columns, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _dig(row: dict, key: str):
    for part in key.split("."):
        row = row.get(part) if isinstance(row, dict) else None
    return row


RUN_COLUMNS = [("id", "ID"), ("name", "NAME"), ("run_number", "#"), ("status", "STATUS"),
               ("current_stage", "STAGE"), ("progress_percent", "%"), ("model_type", "TYPE"),
               ("recall_at_100", "R@100"), ("created_at", "CREATED")]
EXP_COLUMNS = [("id", "ID"), ("number", "EXP #"), ("name", "NAME"), ("model_type", "TYPE"),
               ("metrics.recall_at_100", "R@100"), ("metrics.test_rmse", "RMSE"), ("dataset_name", "DATASET")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainyard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--url", help="API URL (default TRAINYARD_API_URL)")
    groups = parser.add_subparsers(dest="group", required=True)

    runs = groups.add_parser("runs").add_subparsers(dest="command", required=True)
    create = runs.add_parser("create")
    create.add_argument("--name", required=True)
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--experiment", help="base experiment id")
    source.add_argument("--best", choices=["retrieval", "ranking", "multitask"],
                        help="use the best experiment of this model type")
    create.add_argument("--epochs", type=int)
    create.add_argument("--batch-size", type=int)
    create.add_argument("--learning-rate", type=float)
    create.add_argument("--threshold", type=float, help="blessing threshold of the primary metric")
    create.add_argument("--body", help="a JSON file with more of the request (merged under the flags)")
    create.add_argument("--watch", action="store_true", help="follow the run to its end")
    create.add_argument("--draft", action="store_true", help="save it as a draft, not submitted (`runs submit` later)")
    listing = runs.add_parser("list")
    listing.add_argument("--status")
    listing.add_argument("--model-type")
    listing.add_argument("--search")
    listing.add_argument("--page-size", type=int, default=20)
    listing.add_argument("--page-token")
    for name in ("get", "watch", "cancel", "delete", "submit"):
        runs.add_parser(name).add_argument("run_id")

    experiments = groups.add_parser("experiments").add_subparsers(dest="command", required=True)
    top = experiments.add_parser("top")
    top.add_argument("--model-type", default="retrieval")
    top.add_argument("--limit", type=int, default=5)
    experiments.add_parser("search").add_argument("query")

    admin = groups.add_parser("admin").add_subparsers(dest="command", required=True)
    dead = admin.add_parser("dead-letters").add_subparsers(dest="action", required=True)
    for name in ("list", "replay"):
        action = dead.add_parser(name)
        action.add_argument("topic", help="run-submit, pipeline-events, training-progress, schedule-trigger or run-commands")
        action.add_argument("--limit", type=int, default=10)
    return parser


def dead_letters(args, out) -> int:
    """`admin dead-letters`: straight to Pub/Sub with the operator's credentials (no API route)."""
    from dataclasses import asdict

    from shared.dead_letters import DeadLetters
    from shared.settings import get_settings

    if args.limit < 1:
        raise SystemExit("--limit must be at least 1")
    letters = DeadLetters(get_settings().project)
    found = letters.list(args.topic, args.limit) if args.action == "list" else letters.replay(args.topic, args.limit)
    if args.json:
        out.write(json.dumps([asdict(letter) for letter in found], indent=2) + "\n")
        return 0
    verb = "held" if args.action == "list" else "replayed"
    out.write(f"{len(found)} message(s) {verb} from {args.topic}\n")
    for letter in found:
        line = f"{letter.message_id}  {letter.publish_time}  {letter.data[:120]}"
        out.write(line + (f"  -> {letter.replayed_as}" if letter.replayed_as else "") + "\n")
    return 0


def create_body(args, client: ApiClient) -> dict:
    body = json.load(open(args.body)) if args.body else {}
    body["name"] = args.name
    if args.best:
        top = client.get("/api/experiments/top-for-training", model_type=args.best, limit=1)["experiments"]
        if not top:
            raise SystemExit(f"no {args.best} experiment with metrics to start from")
        body["base_experiment_id"] = top[0]["id"]
    else:
        body["base_experiment_id"] = args.experiment
    params = body.setdefault("training_params", {})
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("learning_rate", "learning_rate")):
        if getattr(args, flag) is not None:
            params[key] = getattr(args, flag)
    if args.draft:
        body["draft"] = True
    if args.threshold is not None:
        metric = "test_rmse" if args.best == "ranking" else "recall_at_100"
        bound = "max_value" if metric == "test_rmse" else "min_value"
        body["evaluator_config"] = {"enabled": True, "blessing_threshold": {"metric": metric, bound: args.threshold}}
    return body


def describe(run_: dict) -> list[str]:
    """`runs get` for a person: what the run is, where it got to, its model and its deployment."""
    lines = [f"{run_['id']}  {run_.get('name')} #{run_.get('run_number')}  {run_.get('status')}"]
    lines.append(f"stage: {run_.get('current_stage') or '-'}  progress: {run_.get('progress_percent') or 0}%"
                 + (f"  epoch {run_['current_epoch']}/{run_.get('total_epochs') or '?'}" if run_.get("current_epoch") else ""))
    if run_.get("error_message"):
        lines.append(f"failed at {run_.get('error_stage')}: {run_['error_message']}")
    if run_.get("vertex_model_resource_name"):
        lines.append(f"model: {run_['vertex_model_resource_name']} (version {run_.get('vertex_model_version')})")
    return lines + deployment_lines(run_)


def run(argv: list[str], out=sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    if args.group == "admin":
        try:
            return dead_letters(args, out)
        except ValueError as exc:
            sys.stderr.write(f"trainyard: {exc}\n")
            return 2
        except Exception as exc:  # noqa: BLE001 — Pub/Sub's errors, said plainly
            sys.stderr.write(f"trainyard: Pub/Sub: {exc}\n")
            return 1
    client = ApiClient(url=args.url)

    def emit(data, rows=None, columns=None):
        if args.json:
            out.write(json.dumps(data, indent=2) + "\n")
        elif rows is not None:
            out.write(table(rows, columns) + "\n")
        else:
            out.write(json.dumps(data, indent=2) + "\n")

    try:
        if args.group == "runs":
            if args.command == "create":
                created = client.post("/api/training-runs", create_body(args, client))
                run_ = created["training_run"]
                if not args.json:
                    out.write(f"created {run_['id']} ({run_['name']} #{run_['run_number']}), {run_['status']}\n")
                    for warning in created.get("warnings", []):
                        out.write(f"warning: {warning}\n")
                if args.watch:
                    final = watch(lambda: client.get(f"/api/training-runs/{run_['id']}")["training_run"], out=out)
                    emit(final) if args.json else None
                    return exit_code(final)
                if args.json:
                    emit(created)
            elif args.command == "list":
                data = client.get("/api/training-runs", status=args.status, model_type=args.model_type,
                                  search=args.search, page_size=args.page_size, page_token=args.page_token)
                emit(data, data["training_runs"], RUN_COLUMNS)
                if not args.json and data.get("next_page_token"):
                    out.write(f"more: --page-token {data['next_page_token']}\n")
            elif args.command == "get":
                run_ = client.get(f"/api/training-runs/{args.run_id}")["training_run"]
                emit(run_) if args.json else out.write("\n".join(describe(run_)) + "\n")
            elif args.command == "watch":
                final = watch(lambda: client.get(f"/api/training-runs/{args.run_id}")["training_run"], out=out)
                if args.json:
                    emit(final)
                elif final.get("error_message"):
                    out.write(f"failed at {final.get('error_stage')}: {final['error_message']}\n")
                return exit_code(final)
            elif args.command == "cancel":
                emit(client.post(f"/api/training-runs/{args.run_id}/cancel"))
            elif args.command == "submit":  # a draft (or a pending run whose publish failed)
                emit(client.post(f"/api/training-runs/{args.run_id}/submit"))
            elif args.command == "delete":
                emit(client.delete(f"/api/training-runs/{args.run_id}"))
        elif args.group == "experiments":
            if args.command == "top":
                data = client.get("/api/experiments/top-for-training", model_type=args.model_type, limit=args.limit)
                emit(data, data["experiments"], EXP_COLUMNS)
            else:
                data = client.get("/api/experiments/search", q=args.query)
                emit(data, data["experiments"], EXP_COLUMNS)
    except ApiError as exc:
        sys.stderr.write(f"trainyard: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"trainyard: cannot reach the API at {client.url} ({exc}); is the stack up? (make up)\n")
        return 1
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
