"""`trainyard catalog import --from mlflow URI | --from vertex --project P --location L, --experiment NAME`:
each finished run of a tracked experiment becomes catalog entries (a dataset, a feature config, a model
config and an experiment) through a mapping file (docs/import.md), posted to POST /api/<kind>:import, so
the API validates, checks the caller's role on the team and audits them. Re-imports change nothing; a
changed run updates its experiment (ids derived from the run: shared/domain/catalog_origin.py).

The CLI reads the source itself (a laptop's MLflow the API cannot reach) with the API's own code:
shared/services/experiment_import.py."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from shared import composition
from shared.domain.import_mapping import ROUTES, MappingError, SourceError
from shared.services import experiment_import
from trainyard_cli import team_option
from trainyard_cli.client import ApiError
from trainyard_cli.output import Output, UsageError

COLUMNS = [("run_id", "RUN"), ("run_name", "NAME"), ("experiment_id", "EXPERIMENT"), ("result", "RESULT")]


def register(catalog, common) -> None:
    parser = common(catalog.add_parser(
        "import", help="import a tracked experiment's runs (MLflow, Vertex AI Experiments) as catalog entries"))
    parser.add_argument("--from", dest="source", choices=experiment_import.SOURCES, required=True)
    parser.add_argument("tracking_uri", nargs="?", help="mlflow: the tracking server's URL (http://host:5000)")
    parser.add_argument("--experiment", required=True, help="the source experiment's name")
    parser.add_argument("--project", help="vertex: the Google Cloud project")
    parser.add_argument("--location", help="vertex: the region (us-central1, europe-west4, ...)")
    parser.add_argument("--mapping", help="the mapping file (docs/import.md; default examples/import/<source>_mapping.yaml)")
    parser.add_argument("--api-endpoint", help="vertex: the API endpoint (default LOCATION-aiplatform.googleapis.com; "
                                               "a Private Service Connect endpoint's name)")
    parser.add_argument("--token-file", help="mlflow: a file holding a bearer token for the tracking server")
    parser.add_argument("--dry-run", action="store_true", help="read and map every run, validate, write nothing")
    parser.add_argument("--by-api", action="store_true",
                        help="let the API read the source (POST /api/experiments:import-from: a tracking host the "
                             "deployment lists, or Vertex AI in its project) instead of this machine")
    team_option.add(parser)
    parser.set_defaults(handler=import_runs)


def _source(args):
    if args.source == "mlflow":
        if not args.tracking_uri:
            raise UsageError("--from mlflow needs the tracking server's URL: catalog import --from mlflow URL ...")
        token = Path(args.token_file).read_text().strip() if args.token_file else None
        return composition.experiment_runs("mlflow", tracking_uri=args.tracking_uri, token=token)
    if args.tracking_uri or not (args.project and args.location):
        raise UsageError("--from vertex takes --project and --location (no tracking URI)")
    return composition.experiment_runs("vertex", project=args.project, location=args.location,
                                       api_endpoint=args.api_endpoint)


def _mapping(args):
    if not args.mapping:
        return experiment_import.mapping_for(args.source, None)
    try:
        text = Path(args.mapping).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {args.mapping}: {exc.strerror or exc}") from None
    return experiment_import.mapping_for(args.source, text, args.mapping)


def _by_api(args, client) -> dict:
    """The same import, read by the API: the rows and counts it answers."""
    if args.token_file or args.api_endpoint:
        raise UsageError("--by-api reads the source as the API: no --token-file or --api-endpoint")
    body = {"source": args.source, "experiment": args.experiment, "dry_run": args.dry_run}
    body.update({"tracking_uri": args.tracking_uri} if args.source == "mlflow" else
                {"project": args.project, "location": args.location})
    if args.team:
        body["team"] = args.team
    if args.mapping:
        try:
            body["mapping"] = Path(args.mapping).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {args.mapping}: {exc.strerror or exc}") from None
    runs, counts = [], Counter()
    while True:  # the API imports in parts, each within one request's time limit: ask again from next_after
        try:
            answer = client.post("/api/experiments:import-from", body)
        except ApiError as exc:
            if exc.status in (400, 502):  # the flags, the mapping or the source are wrong: exit 2, as without --by-api
                raise UsageError(str(exc)) from None
            raise
        runs += answer["runs"]
        counts.update(answer["counts"])
        if not answer.get("next_after"):
            return {"runs": runs, "counts": dict(counts)}
        body["after"] = answer["next_after"]


def import_runs(args, client, ui: Output) -> int:
    def post(kind: str, body: dict) -> dict:
        try:
            return client.post(f"/api/{ROUTES[kind]}:import", body)
        except ApiError as exc:
            raise experiment_import.ItemRefused(str(exc), exc.body.get("errors")) from None

    if args.by_api:
        done = _by_api(args, client)
    else:
        try:
            source = _source(args)
            mapping = _mapping(args)
            done = experiment_import.import_runs(source, mapping, args.experiment, post, args.team, args.dry_run)
            done.pop("next_after")  # one part: no deadline from this machine
        except (SourceError, MappingError) as exc:
            raise UsageError(str(exc)) from None  # nothing could be read: as a wrong flag, exit 2

    def human(data):
        ui.table(data["runs"], COLUMNS)
        for row in data["runs"]:
            if row.get("error"):
                ui.line(f"error: {row['error']}")
        counted = ", ".join(f"{n} {what}" for what, n in sorted(data["counts"].items())) or "no runs"
        ui.line(f"{'checked' if args.dry_run else 'imported'} {args.source} experiment {args.experiment!r}: {counted}")

    ui.result({**done, "dry_run": args.dry_run}, human)
    return 1 if done["counts"].get("failed") else 0
