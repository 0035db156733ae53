"""`trainyard catalog create|list|get KIND` (datasets, feature-configs, model-configs, experiments —
the API's own route names) and `trainyard gpu availability`."""
from __future__ import annotations

from shared.domain import model_kinds
from trainyard_cli import format as fmt, import_commands, paging, team_option
from trainyard_cli.output import Output, read_document

KINDS = ("datasets", "feature-configs", "model-configs", "experiments")
COLUMNS = {
    "datasets": [("id", "ID"), ("name", "NAME"), ("team", "TEAM"), ("row_count", "ROWS"),
                 ("created_at", "CREATED", fmt.relative)],
    "feature-configs": [("id", "ID"), ("name", "NAME"), ("team", "TEAM"), ("dataset_id", "DATASET"),
                        ("created_at", "CREATED", fmt.relative)],
    "model-configs": [("id", "ID"), ("name", "NAME"), ("team", "TEAM"), ("model_type", "TYPE"),
                      ("created_at", "CREATED", fmt.relative)],
    "experiments": [("id", "ID"), ("number", "EXP #"), ("name", "NAME"), ("team", "TEAM"), ("model_type", "TYPE"),
                    ("metrics.recall_at_100", "R@100"), ("metrics.test_rmse", "RMSE"), ("source.by", "POSTED BY"),
                    ("created_at", "CREATED", fmt.relative)],
}


def register(groups, common) -> None:
    catalog = groups.add_parser("catalog", help="datasets, feature configs, model configs, experiments").add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    create = common(catalog.add_parser("create", help="create an item from a YAML or JSON file"))
    create.add_argument("kind", choices=KINDS)
    create.add_argument("--file", "-f", required=True, help="the item's fields; '-' reads standard input")
    team_option.add(create)
    create.set_defaults(handler=create_item)
    listing = common(catalog.add_parser("list", help="the items of a kind"))
    listing.add_argument("kind", choices=KINDS)
    listing.add_argument("--model-type", choices=model_kinds.NAMES)
    paging.add(listing, "words of the id, name or description (server-side)", 50)
    listing.set_defaults(handler=list_items)
    get = common(catalog.add_parser("get", help="one item"))
    get.add_argument("kind", choices=KINDS)
    get.add_argument("item_id")
    get.set_defaults(handler=get_item)
    import_commands.register(catalog, common)  # catalog import --from mlflow|vertex (trainyard_cli/import_commands.py)

    gpu = groups.add_parser("gpu", help="GPU quota pre-flight").add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    check = common(gpu.add_parser("availability", help="can the region's Vertex quota take these GPUs?"))
    check.add_argument("--gpu-type", default="NVIDIA_L4")
    check.add_argument("--gpu-count", type=int, default=1)
    check.add_argument("--machine-count", type=int, default=1, help="machines of gpu-count GPUs each")
    check.add_argument("--region", help="default: the API's region")
    check.add_argument("--on-demand", action="store_true", help="check the on-demand quota (default Spot)")
    check.set_defaults(handler=gpu_availability)


def _item_lines(item: dict) -> list[str]:
    lines = [f"{item.get('id')}  {item.get('name') or ''}".rstrip()]
    for key, value in item.items():
        if key in ("id", "name", "search_text") or value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={fmt.metric(v)}" for k, v in value.items() if not isinstance(v, (dict, list)))
            lines.append(f"  {key}: {inner or '{…}'}")
        elif key.endswith("_at"):
            lines.append(f"  {key}: {value} ({fmt.relative(value)})")
        else:
            lines.append(f"  {key}: {fmt.metric(value) if not isinstance(value, list) else ', '.join(map(str, value))}")
    return lines


def create_item(args, client, ui: Output) -> int:
    data = client.post(f"/api/{args.kind}", team_option.apply(read_document(args.file), args))
    ui.result(data, lambda d: ui.lines(["created " + _item_lines(d["item"])[0]]))
    return 0


def list_items(args, client, ui: Output) -> int:
    data = paging.fetch(client, f"/api/{args.kind}", "items", args, model_type=args.model_type)
    ui.result(data, lambda d: (ui.table(d["items"], COLUMNS[args.kind]), paging.next_hint(ui, d)))
    return 0


def get_item(args, client, ui: Output) -> int:
    data = client.get(f"/api/{args.kind}/{args.item_id}")
    ui.result(data, lambda d: ui.lines(_item_lines(d["item"])))
    return 0


def gpu_availability(args, client, ui: Output) -> int:
    data = client.get("/api/gpu-availability", gpu_type=args.gpu_type, gpu_count=args.gpu_count,
                      machine_count=args.machine_count, region=args.region,
                      preemptible="false" if args.on_demand else "true")

    def human(d):
        verdict = "sufficient" if d.get("sufficient") else "insufficient"
        ui.line(f"{d.get('gpu_count')} x {d.get('gpu_type')} ({'Spot' if d.get('preemptible') else 'on-demand'}) "
                f"in {d.get('region')}: {ui.state(verdict)}")
        if d.get("quota_applies") is not False and d.get("limit") is not None:
            ui.line(f"quota {d.get('quota_metric')}: limit {d['limit']}, in use {d.get('in_use')}, "
                    f"available {d.get('available')}")
        if d.get("message"):
            ui.line(d["message"])

    ui.result(data, human)
    return 0
