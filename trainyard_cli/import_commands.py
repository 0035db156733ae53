"""`trainyard catalog import --from mlflow URI | --from vertex --project P --location L, --experiment NAME`:
each finished run of a tracked experiment becomes catalog entries (a dataset, a feature config, a model
config and an experiment) through a mapping file (docs/import.md), posted to POST /api/<kind>:import, so
the API validates, checks the caller's role on the team and audits them. Re-imports change nothing; a
changed run updates its experiment (ids derived from the run: shared/domain/catalog_origin.py)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from pydantic import ValidationError

from shared.domain.catalog import Dataset, Experiment, FeatureConfig, ModelConfig
from trainyard_cli import import_mapping, team_option
from trainyard_cli.client import ApiError
from trainyard_cli.import_mapping import REFERENCES, ROUTES, MappingError
from trainyard_cli.import_sources import MlflowSource, SourceError
from trainyard_cli.output import Output, UsageError, read_document

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "import"
DEFAULT_MAPPING = {"mlflow": EXAMPLES / "mlflow_mapping.yaml", "vertex": EXAMPLES / "vertex_mapping.yaml"}
MODELS = {"datasets": Dataset, "feature_configs": FeatureConfig, "model_configs": ModelConfig,
          "experiments": Experiment}
PLACEHOLDER = "dry-run"  # an experiment's references before its configs exist
COLUMNS = [("run_id", "RUN"), ("run_name", "NAME"), ("experiment_id", "EXPERIMENT"), ("result", "RESULT")]


def register(catalog, common) -> None:
    parser = common(catalog.add_parser(
        "import", help="import a tracked experiment's runs (MLflow, Vertex AI Experiments) as catalog entries"))
    parser.add_argument("--from", dest="source", choices=sorted(DEFAULT_MAPPING), required=True)
    parser.add_argument("tracking_uri", nargs="?", help="mlflow: the tracking server's URL (http://host:5000)")
    parser.add_argument("--experiment", required=True, help="the source experiment's name")
    parser.add_argument("--project", help="vertex: the Google Cloud project")
    parser.add_argument("--location", help="vertex: the region (us-central1, europe-west4, ...)")
    parser.add_argument("--mapping", help="the mapping file (docs/import.md; default examples/import/<source>_mapping.yaml)")
    parser.add_argument("--api-endpoint", help="vertex: the API endpoint (default LOCATION-aiplatform.googleapis.com; "
                                               "a Private Service Connect endpoint's name)")
    parser.add_argument("--token-file", help="mlflow: a file holding a bearer token for the tracking server")
    parser.add_argument("--dry-run", action="store_true", help="read and map every run, validate, write nothing")
    team_option.add(parser)
    parser.set_defaults(handler=import_runs)


def _source(args):
    if args.source == "mlflow":
        if not args.tracking_uri:
            raise UsageError("--from mlflow needs the tracking server's URL: catalog import --from mlflow URL ...")
        token = Path(args.token_file).read_text().strip() if args.token_file else None
        return MlflowSource(args.tracking_uri, token)
    if args.tracking_uri or not (args.project and args.location):
        raise UsageError("--from vertex takes --project and --location (no tracking URI)")
    from trainyard_cli.import_vertex import VertexSource  # the Vertex SDK only when it is asked for

    return VertexSource(args.project, args.location, args.api_endpoint)


def _checked(found: dict, team) -> list[str]:
    """What the API would refuse in the mapped items, said before anything is written."""
    problems = []
    for kind, item in found.items():
        if "existing" in item:
            continue
        body = {**item, "team": team or item.get("team")}
        if kind == "experiments":
            body.update({ref: PLACEHOLDER for ref in REFERENCES})
        try:
            MODELS[kind].model_validate({k: v for k, v in body.items() if v is not None})
        except ValidationError as exc:
            problems += [f"{kind}.{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                         for e in exc.errors(include_url=False)]
    return problems


def _post(client, found: dict, origin: dict, args, seen: dict) -> dict:
    """Import one run's items: the configs first (one post per distinct config in this import), then
    its experiment pointing at them."""
    ids = {}
    for kind in ("datasets", "feature_configs", "model_configs"):
        item = team_option.apply(dict(found[kind]), args)
        if "existing" in item:
            ids[kind] = item["existing"]
            continue
        key = (kind, repr(sorted(item.items())))
        if key not in seen:
            seen[key] = client.post(f"/api/{ROUTES[kind]}:import", {"origin": origin, "item": item})["item"]["id"]
        ids[kind] = seen[key]
    experiment = team_option.apply({**found["experiments"], **{ref: ids[k] for ref, k in REFERENCES.items()}}, args)
    return client.post("/api/experiments:import", {"origin": origin, "item": experiment})


def import_runs(args, client, ui: Output) -> int:
    try:
        source = _source(args)
        mapping = import_mapping.parse(read_document(str(args.mapping or DEFAULT_MAPPING[args.source])),
                                       args.mapping or f"the default {args.source} mapping")
    except (SourceError, MappingError) as exc:
        raise UsageError(str(exc)) from None
    rows, counts, seen = [], Counter(), {}
    try:
        for run in source.runs(args.experiment):
            row = {"run_id": run.id, "run_name": run.name}
            rows.append(row)
            if not mapping.wants(run):
                row["result"] = f"skipped ({run.status.lower()})"
                counts["skipped"] += 1
                continue
            origin = {"source": source.name, "location": source.location, "experiment": args.experiment,
                      "run_id": run.id, "run_name": run.name, "url": run.url}
            try:
                found = import_mapping.items(mapping, run, args.experiment)
                problems = _checked(found, args.team)
                if problems:
                    raise MappingError(f"run {run.id}: " + "; ".join(problems))
                if args.dry_run:
                    row["result"] = "valid"
                    counts["valid"] += 1
                    continue
                answer = _post(client, found, origin, args, seen)
            except (MappingError, ApiError) as exc:
                row["result"], row["error"] = "failed", str(exc)
                counts["failed"] += 1
                continue
            row["experiment_id"], row["result"] = answer["item"]["id"], answer["result"]
            counts[answer["result"]] += 1
    except SourceError as exc:
        raise UsageError(str(exc)) from None  # nothing could be read: as a wrong flag, exit 2

    def human(data):
        ui.table(data["runs"], COLUMNS)
        for row in data["runs"]:
            if row.get("error"):
                ui.line(f"error: {row['error']}")
        done = ", ".join(f"{n} {what}" for what, n in sorted(data["counts"].items())) or "no runs"
        ui.line(f"{'checked' if args.dry_run else 'imported'} {args.source} experiment {args.experiment!r}: {done}")

    ui.result({"runs": rows, "counts": dict(counts), "dry_run": args.dry_run}, human)
    return 1 if counts["failed"] else 0
