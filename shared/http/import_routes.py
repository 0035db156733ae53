"""HTTP routes importing catalog entries from a tracking system (docs/import.md):
POST /api/<kind>:import for datasets, feature-configs, model-configs and experiments, each with the source
run it came from. The caller needs the trainer role on the entry's team (shared/services/catalog_import.py).

Added to the API by `register_import_routes(app, deps)` in shared/http/app.create_app.
"""
from __future__ import annotations

from flask import Flask, g, jsonify

from shared.domain.catalog_origin import Origin
from shared.http.request_body import body
from shared.services import catalog_import

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
    return paths
