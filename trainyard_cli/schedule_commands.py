"""`trainyard schedules create|list|get|pause|resume|trigger|cancel`, one per schedule route."""
from __future__ import annotations

from trainyard_cli import format as fmt, paging, team_option
from trainyard_cli.output import Output, UsageError, read_document

STATUSES = ("active", "paused", "completed", "cancelled")
SCHEDULE_COLUMNS = [("id", "ID"), ("name", "NAME"), ("team", "TEAM"), ("status", "STATUS", fmt.state), ("schedule_type", "TYPE"),
                    ("next_run_at", "NEXT", fmt.relative), ("last_run_status", "LAST", fmt.state),
                    ("last_run_at", "LAST RUN", fmt.relative), ("total_runs", "RUNS"),
                    ("success_rate", "SUCCESS", lambda v: "" if v is None else f"{v:g}%"),
                    ("estimated_cost.total", "COST", fmt.money)]
RUN_COLUMNS = [("id", "ID"), ("run_number", "#"), ("status", "STATUS", fmt.state), ("triggered_by", "BY"),
               ("created_at", "CREATED", fmt.relative), ("duration_seconds", "DURATION", fmt.duration)]


def register(groups, common) -> None:
    schedules = groups.add_parser("schedules", help="scheduled and recurring training").add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    create = common(schedules.add_parser("create", help="create a schedule from a YAML or JSON file"))
    create.add_argument("--file", "-f", required=True,
                        help="the ScheduleRequest (name, schedule_type, time_of_day / cron_expression, timezone, "
                             "run_template, …); '-' reads standard input")
    create.add_argument("--name", help="overrides the file's name")
    create.add_argument("--on-new-data", metavar="WHERE",
                        help="also fire when data lands: gs://BUCKET/PREFIX, bigquery:PROJECT.DATASET.TABLE, or "
                             "(locally) /ABSOLUTE/FOLDER; with the file's schedule_type 'data', only then")
    create.add_argument("--min-interval-minutes", type=int, metavar="N",
                        help="at most one data-triggered run per N minutes (default 60)")
    team_option.add(create)
    create.set_defaults(handler=create_schedule)
    listing = common(schedules.add_parser("list", help="schedules, newest first"))
    listing.add_argument("--status", help=f"one or more, comma-separated, of {', '.join(STATUSES)}")
    paging.add(listing, "words of the id, name or description (server-side)", 50)
    listing.set_defaults(handler=list_schedules)
    for name, helptext in (("get", "a schedule, its stats and its latest runs"),
                           ("pause", "pause an active schedule"),
                           ("resume", "resume (missed slots fire per catch_up)"),
                           ("trigger", "one run now (the concurrency policy applies)"),
                           ("cancel", "cancel for good; waiting runs are cancelled")):
        parser = common(schedules.add_parser(name, help=helptext))
        parser.add_argument("schedule_id")
        parser.set_defaults(handler=get_schedule if name == "get" else schedule_action, route=name)


def create_schedule(args, client, ui: Output) -> int:
    body = team_option.apply(read_document(args.file), args)
    if args.name:
        body["name"] = args.name
    if args.on_new_data:
        body["data_trigger"] = {**(body.get("data_trigger") or {}), **data_trigger(args.on_new_data)}
    if args.min_interval_minutes is not None:
        if not body.get("data_trigger"):
            raise UsageError("--min-interval-minutes spaces data-triggered runs: give --on-new-data (or the file's "
                             "data_trigger) too")
        body["data_trigger"] = {**body["data_trigger"], "min_interval_minutes": args.min_interval_minutes}
    data = client.post("/api/training/schedules", body)
    ui.result(data, lambda d: ui.lines(describe(ui, d["schedule"])))
    return 0


def data_trigger(where: str) -> dict:
    """--on-new-data's WHERE as the API's data_trigger (the API validates the rest and names the field)."""
    if where.startswith("gs://"):
        bucket, _, prefix = where[len("gs://"):].partition("/")
        return {"source": "gcs", "bucket": bucket, "prefix": prefix}
    for scheme in ("bigquery:", "bq:"):
        if where.startswith(scheme):
            return {"source": "bigquery", "table": where[len(scheme):]}
    if where.startswith("/"):
        return {"source": "folder", "path": where}
    raise UsageError(f"--on-new-data {where!r}: give gs://BUCKET/PREFIX, bigquery:PROJECT.DATASET.TABLE or an "
                     f"absolute folder")


def list_schedules(args, client, ui: Output) -> int:
    data = paging.fetch(client, "/api/training/schedules", "schedules", args, status=args.status)
    ui.result(data, lambda d: (ui.table(d["schedules"], SCHEDULE_COLUMNS), paging.next_hint(ui, d)))
    return 0


def when(schedule: dict) -> str:
    kind = schedule.get("schedule_type")
    zone = schedule.get("timezone") or "UTC"
    if kind == "once":
        return f"once at {schedule.get('run_at')} ({zone})"
    if kind == "daily":
        return f"daily at {schedule.get('time_of_day')} ({zone})"
    if kind == "weekly":
        return f"weekly on day {schedule.get('day_of_week')} at {schedule.get('time_of_day')} ({zone})"
    if kind == "data":
        return "on new data only"
    return f"cron '{schedule.get('cron_expression')}' ({zone})"


def watching(trigger: dict) -> str:
    where = {"gcs": lambda t: f"gs://{t['bucket']}/{t.get('prefix') or ''}", "bigquery": lambda t: t["table"],
             "folder": lambda t: t["path"]}[trigger["source"]](trigger)
    return f"on new data: {where} (at most one run per {trigger.get('min_interval_minutes')} min)"


def last_trigger(last: dict) -> str:
    outcome = last.get("outcome")
    detail = f"run {last['run_id']}" if last.get("run_id") else (last.get("reason") or "")
    return (f"last new data: {last.get('location')} #{last.get('version')} at {last.get('occurred_at')} "
            f"({fmt.relative(last.get('occurred_at'))}): {outcome}" + (f", {detail}" if detail else ""))


def describe(ui: Output, schedule: dict) -> list[str]:
    lines = [f"{schedule['id']}  {schedule.get('name')}  {ui.state(schedule.get('status'))}", when(schedule)]
    if schedule.get("data_trigger"):
        lines.append(watching(schedule["data_trigger"]))
    if schedule.get("last_data_trigger"):
        lines.append(last_trigger(schedule["last_data_trigger"]))
    if schedule.get("next_run_at"):
        lines.append(f"next run: {schedule['next_run_at']} ({fmt.relative(schedule['next_run_at'])})")
    if schedule.get("paused_reason"):
        lines.append(f"paused: {schedule['paused_reason']}")
    rate = schedule.get("success_rate")
    lines.append(f"runs: {schedule.get('total_runs', 0)} total, {schedule.get('successful_runs', 0)} ok, "
                 f"{schedule.get('failed_runs', 0)} failed, {schedule.get('cancelled_runs', 0)} cancelled, "
                 f"{schedule.get('skipped_count', 0)} slots skipped"
                 + (f"; success rate {rate:g}%" if rate is not None else ""))
    cost = schedule.get("estimated_cost")
    if isinstance(cost, dict) and cost.get("total") is not None:
        lines.append(f"estimated cost: {fmt.money(cost['total'], cost.get('currency', 'USD'))} "
                     f"over {cost.get('runs', 0)} run(s)")
    if schedule.get("active_run_ids"):
        lines.append(f"active: {', '.join(schedule['active_run_ids'])}")
    if schedule.get("queued_run_ids"):
        lines.append(f"queued: {', '.join(schedule['queued_run_ids'])}")
    return lines


def get_schedule(args, client, ui: Output) -> int:
    data = client.get(f"/api/training/schedules/{args.schedule_id}")

    def human(d):
        ui.lines(describe(ui, d["schedule"]))
        ui.line("latest runs:")
        ui.table(d.get("runs") or [], RUN_COLUMNS)

    ui.result(data, human)
    return 0


def schedule_action(args, client, ui: Output) -> int:
    data = client.post(f"/api/training/schedules/{args.schedule_id}/{args.route}")

    def human(d):
        if d.get("schedule"):
            ui.lines(describe(ui, d["schedule"]))
        run = d.get("training_run")
        if run:
            ui.line(f"run: {run['id']} #{run.get('run_number')} {ui.state(run.get('status'))}")
        elif args.route == "trigger":
            ui.line(f"no run: {d.get('outcome') or d.get('message') or 'skipped by the concurrency policy'}")
        for slot in d.get("caught_up") or []:
            ui.line(f"caught up {slot['slot']}: {slot['outcome']} {slot.get('run_id') or ''}".rstrip())
        if d.get("cancelled_runs"):
            ui.line(f"cancelled waiting runs: {', '.join(d['cancelled_runs'])}")

    ui.result(data, human)
    return 0

