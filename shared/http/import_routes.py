"""HTTP routes importing catalog entries from a tracking system (docs/import.md):
POST /api/<kind>:import for datasets, feature-configs, model-configs and experiments, each with the source
run it came from. The caller needs the trainer role on the entry's team (shared/services/catalog_import.py).
POST /api/experiments:import-from reads a whole source experiment here (the dashboard's "Import
experiments"): the trainer role on the team first, then only a source this deployment reads from
(shared/services/experiment_import.SourcePolicy), then every run through the same import_entry.

Added to the API by `register_import_routes(app, deps)` in shared/http/app.create_app.
"""
from __future__ import annotations

import time

from flask import Flask, g, jsonify

from shared.domain import teams
from shared.domain.catalog_origin import Origin
from shared.domain.import_mapping import SourceError
from shared.errors import FieldError
from shared.http.request_body import body
from shared.services import catalog_import, experiment_import

# The API's catalog route names and the collections they store to (shared/http/app.py's CATALOG_ROUTES).
KINDS = {"datasets": ("datasets", "Dataset"), "feature-configs": ("feature_configs", "FeatureConfig"),
         "model-configs": ("model_configs", "ModelConfig"), "experiments": ("experiments", "Experiment")}


def register_import_routes(app: Flask, deps) -> None:
    def imported(kind: str):
        item, result = catalog_import.import_entry(deps.repo, kind, body(), g.caller, deps.settings.teams)
        return jsonify(success=True, result=result, item=item), 201 if result == catalog_import.CREATED else 200

    for route, (kind, _) in KINDS.items():
        # AIP-136's custom-method form (POST /collection:verb): no id of a real entry can contain ":".
        app.add_url_rule(f"/api/{route}:import", f"import_{kind}", lambda kind=kind: imported(kind),
                         methods=["POST"])

    policy = experiment_import.SourcePolicy(deps.settings.import_mlflow_hosts, deps.settings.import_vertex_projects)

    @app.post("/api/experiments:import-from")
    def import_from():
        request = body()
        if not isinstance(request, dict):
            raise FieldError.one("body", "must be a JSON object")
        team = request.get("team")
        if team is not None and not isinstance(team, str):
            raise FieldError.one("team", "must be a team's name")
        # The role before anything is read: a caller who may not import learns nothing of the source.
        team = teams.team_for_new(g.caller, team or None, deps.settings.teams, teams.TRAINER, "importing experiments")
        where = experiment_import.source_request(request, policy)

        try:
            source = deps.experiment_runs(where["source"], tracking_uri=where.get("tracking_uri"),
                                          project=where.get("project"), location=where.get("location"),
                                          allowed=policy.host_allowed)
            post = experiment_import.stored_by(deps.repo, g.caller, deps.settings.teams)
            # In parts, each within the function's timeout: the caller asks again from `next_after`.
            done = experiment_import.import_runs(source, where["parsed_mapping"], where["experiment"], post, team,
                                                 request.get("dry_run", False), after=where["after"],
                                                 deadline=time.monotonic() + deps.settings.import_request_s)
        except SourceError as exc:
            # The source, not this API, failed: 502 naming it (never a 500), as a proxy answers for its upstream.
            return jsonify(success=False, error="source_unavailable", message=str(exc)), 502
        return jsonify(success=True, source=where["source"], experiment=where["experiment"], team=team,
                       dry_run=request.get("dry_run", False), **done), 200


def openapi_paths(ref, response, errors) -> dict:
    # The stored entry carries more than the request's model (origin, source, created_at, names): an object.
    answer = {"type": "object", "required": ["success", "result", "item"], "properties": {
        "success": {"type": "boolean"}, "result": {"enum": list(catalog_import.RESULTS)},
        "item": {"type": "object", "required": ["id", "origin"]}}}
    paths = {}
    for route, (_, model) in KINDS.items():
        paths[f"/api/{route}:import"] = {"post": {
            "summary": f"Create or update the {model} a tracking system's run maps to (MLflow, Vertex AI "
                       "Experiments): its id is derived from the run, so a re-import changes nothing",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["origin", "item"], "additionalProperties": False,
                "properties": {"origin": Origin.model_json_schema(), "item": ref(model)}}}}},
            "responses": {"201": response("created", answer),
                          "200": response("updated or unchanged (result says which)", answer),
                          **errors(400, 401)}}}
    row = {"type": "object", "required": ["run_id", "run_name", "result"], "properties": {
        "run_id": {"type": "string"}, "run_name": {"type": "string"},
        "result": {"type": "string", "description": "created, updated, unchanged, valid (dry run), skipped "
                                                    "(<state>) or failed"},
        "experiment_id": {"type": "string"},
        "ids": {"type": "object", "description": "the entries the run was imported as, by kind",
                "additionalProperties": {"type": "string"}},
        "error": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}}}}
    paths["/api/experiments:import-from"] = {"post": {
        "summary": "Import every run of an MLflow or Vertex AI Experiments experiment, read by the API (the "
                   "dashboard's Import experiments): per-run results, in parts of at most TRAINYARD_IMPORT_REQUEST_S "
                   "each (next_after); a re-import answers unchanged",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["source", "experiment"], "additionalProperties": False, "properties": {
                "source": {"enum": list(experiment_import.SOURCES)},
                "tracking_uri": {"type": "string", "description": "mlflow: the tracking server's URL; its host "
                                                                  "must be in TRAINYARD_IMPORT_MLFLOW_HOSTS"},
                "project": {"type": "string", "description": "vertex: a project in TRAINYARD_IMPORT_VERTEX_PROJECTS"},
                "location": {"type": "string", "description": "vertex: the region"},
                "experiment": {"type": "string"}, "team": {"type": "string"},
                "mapping": {"type": "string", "description": "the mapping file's content (YAML or JSON; "
                                                             "docs/import.md); default the source's default"},
                "dry_run": {"type": "boolean"},
                "after": {"type": "string", "description": "the previous part's next_after: go on from there"}}}}}},
        "responses": {"200": response("every run of the source experiment and what became of it", {
            "type": "object", "required": ["success", "runs", "counts"], "properties": {
                "success": {"const": True}, "source": {"type": "string"}, "experiment": {"type": "string"},
                "team": {"type": ["string", "null"]}, "dry_run": {"type": "boolean"},
                "runs": {"type": "array", "items": row},
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "next_after": {"type": ["string", "null"], "description": (
                    "null: the import is whole. Else the time limit of one request (TRAINYARD_IMPORT_REQUEST_S) "
                    "was reached: post the same body with after set to this for the rest (runs in run-id order)")}}}),
                      **errors(400, 401),
                      "502": response("the source could not be read (unreachable, refused, no such experiment): "
                                      "the message names it", {"$ref": "#/components/schemas/Error"})}}}
    return paths
