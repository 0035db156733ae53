"""The OpenAPI 3 document, generated from the same pydantic models that validate requests."""
from __future__ import annotations

from functools import lru_cache

from pydantic.json_schema import models_json_schema

from shared.domain import model_kinds, runs
from shared.domain.batch_predictions import BatchPredictionBody
from shared.domain.catalog import Dataset, Experiment, FeatureConfig, ModelConfig
from shared.domain.run_config import TrainingParams
from shared.domain.schedules import ScheduleRequest
from shared.services.actions.deploy import DeployBody
from shared.services.actions.endpoint_traffic import TrafficBody
from shared.services.actions.retry import RetryBody
from shared.services.actions.rollback import RollbackBody
from shared.services.actions.undeploy import UndeployBody
from shared.services.run_builder import CreateRunRequest

_ERROR = {"$ref": "#/components/schemas/Error"}
# Routes whose service checks the caller's role on a team (shared/services/access.py).
TEAM_ROUTES = ("/api/training-runs", "/api/training/schedules", "/api/datasets", "/api/feature-configs",
               "/api/model-configs", "/api/experiments", "/api/endpoints")


def _response(description: str, schema: dict | None = None) -> dict:
    out = {"description": description}
    if schema:
        out["content"] = {"application/json": {"schema": schema}}
    return out


def _envelope(**fields: dict) -> dict:
    """A 2xx body as the routes write it, jsonify(success=True, **fields): success beside the payload's
    keys, never the bare object (the document promised that once, and the fuzz never fetched a real id)."""
    return {"type": "object", "required": ["success", *fields],
            "properties": {"success": {"const": True}, **fields}}


def _stored(model_schema: dict) -> dict:
    """A catalog entry as stored and served: the model's fields plus its id and what the server adds
    (team, created_by, created_at...), so it cannot forbid extra properties as the request body does."""
    return {"type": "object", "required": ["id", *model_schema.get("required", [])],
            "properties": {"id": {"type": "string"}, **model_schema.get("properties", {})},
            "additionalProperties": True}


def paged() -> list[dict]:
    """The query parameters of every paged list (shared/services/listing.py)."""
    from shared.services.listing import MAX_PAGE_SIZE

    return [{"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}},
            {"name": "page_token", "in": "query", "schema": {"type": "string"},
             "description": "the next_page_token of the page before, with the same filters"}]


def _errors(*codes: int) -> dict:
    text = {400: "invalid input: each error names the field path and the rule", 401: "no or invalid identity",
            403: "not allowed to this identity: its role on the resource's team is short of what the action "
                 "needs (team, role and needed say which; docs/security.md), or an admin route "
                 "(TRAINYARD_ADMINS)", 404: "not found",
            409: "not allowed in the run's current state (error over_budget: over the team's monthly budget; "
                 "the message says the budget, what is spent this month and what the run would cost)",
            503: "a service it depends on is unavailable; retry shortly"}
    return {str(c): _response(text[c], _ERROR) for c in codes}


@lru_cache(maxsize=1)
def document() -> dict:
    models = [(CreateRunRequest, "validation"), (Dataset, "validation"), (FeatureConfig, "validation"),
              (ModelConfig, "validation"), (Experiment, "validation"), (TrainingParams, "validation"),
              (ScheduleRequest, "validation"), (RetryBody, "validation"), (DeployBody, "validation"),
              (RollbackBody, "validation"), (BatchPredictionBody, "validation"), (TrafficBody, "validation"),
              (UndeployBody, "validation")]
    _, schema = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas = schema.get("$defs", {})
    # training_params is validated after inheritance from the base experiment; document its full shape.
    schemas["CreateRunRequest"]["properties"]["training_params"] = {
        "allOf": [{"$ref": "#/components/schemas/TrainingParams"}],
        "description": "omitted fields are inherited from the base experiment (batch_size, learning_rate) or "
                       "take the Appendix B defaults"}
    schemas["Error"] = {"type": "object", "properties": {
        "success": {"type": "boolean"}, "error": {"type": "string"}, "message": {"type": "string"},
        "team": {"type": ["string", "null"], "description": "403: the team whose role was checked"},
        "role": {"type": ["string", "null"], "description": "403: the caller's role on it (null: none)"},
        "needed": {"type": ["string", "null"], "description": "403: the role the action needs"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}}}}
    schemas["TrainingRun"] = {"type": "object", "description": "a training run document (spec §6.1)",
                              "required": ["id", "status"],
                              "properties": {"id": {"type": "string"}, "status": {"enum": list(runs.STATUSES)}},
                              "additionalProperties": True}
    nullable_text = {"type": ["string", "null"]}
    # The route spreads run_errors' fields beside success (jsonify(success=True, **errors)).
    schemas["RunErrors"] = {"description": "a run's failure, per attempt, and its actions' errors", **_envelope(
        run_id={"type": "string"}, status={"enum": list(runs.STATUSES)},
        error_stage=nullable_text, error_message=nullable_text, error_details={"type": "object"},
        attempts={"type": "array", "items": {"type": "object", "required": ["attempt"], "properties": {
            "attempt": {"type": "integer"}, "status": {"type": "string"},
            "error_stage": nullable_text, "error_message": nullable_text}}},
        action_errors={"type": "object", "additionalProperties": {"type": "object", "properties": {
            "status": {"type": "string"}, "error": nullable_text}}})}

    def ref(name: str) -> dict:
        return {"$ref": f"#/components/schemas/{name}"}

    run_id = [{"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths: dict = {
        "/health": {"get": {"summary": "Health check (no identity needed)", "security": [], "responses": {
            "200": _response("ok", {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}})}}},
        "/api/training-runs": {
            "post": {"summary": "Create a training run", "requestBody": {
                "required": True, "content": {"application/json": {"schema": ref("CreateRunRequest")}}},
                     "responses": {"201": _response("created; queued for submission", _envelope(
                         training_run=ref("TrainingRun"),
                         warnings={"type": "array", "items": {"type": "string"}})),
                                   **_errors(400, 401)}},
            "get": {"summary": "List training runs, newest first: search (prefixes of the words of the name, id, "
                               "description, model, creator, dataset; every term), filters, and a page token "
                               "(shared/services/listing.py)", "parameters": [
                {"name": n, "in": "query", "schema": {"type": "string"}} for n in
                ("status", "model_type", "dataset", "schedule_id", "team", "search", "since", "until", "deleted",
                 "registered")] + paged(),
                    "responses": {"200": _response("a page of runs"), **_errors(400, 401)}}},
        "/api/training-runs/{run_id}": {
            "get": {"summary": "Get a training run", "parameters": run_id,
                    "responses": {"200": _response("the run", _envelope(training_run=ref("TrainingRun"))),
                                  **_errors(401, 404)}},
            "delete": {"summary": "Delete a draft or a finished run: hidden at once, restorable for the grace period "
                                  "(TRAINYARD_DELETE_GRACE_DAYS), then purged with its artifacts; refused while its "
                                  "model is deploying, deployed or being pushed", "parameters": run_id,
                       "responses": {"200": _response("deleted (or already deleted): purge_after says until when it "
                                                      "may be restored"), **_errors(401, 404, 409)}}},
        "/api/training-runs/{run_id}/submit": {
            "post": {"summary": "Submit a draft (draft → pending), or queue a pending run again", "parameters": run_id,
                     "responses": {"202": _response("queued", _envelope(training_run=ref("TrainingRun"))),
                                  **_errors(401, 404, 409)}}},
        "/api/experiments/top-for-training": {
            "get": {"summary": "Best experiments by primary metric", "parameters": [
                {"name": "model_type", "in": "query", "required": True,
                 "schema": {"enum": list(model_kinds.NAMES)}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}}],
                    "responses": {"200": _response("experiments"), **_errors(400, 401)}}},
        "/api/experiments/search": {
            "get": {"summary": "Search experiments by name, number ('Exp #65') or config name",
                    "parameters": [{"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _response("experiments"), **_errors(400, 401)}}},
    }
    for route, model in (("datasets", "Dataset"), ("feature-configs", "FeatureConfig"),
                         ("model-configs", "ModelConfig"), ("experiments", "Experiment")):
        schemas[f"Stored{model}"] = _stored(schemas[model])
        item = ref(f"Stored{model}")
        paths[f"/api/{route}"] = {
            "post": {"summary": f"Create a {model}", "requestBody": {
                "required": True, "content": {"application/json": {"schema": ref(model)}}},
                     "responses": {"201": _response("created", _envelope(item=item)), **_errors(400, 401)}},
            "get": {"summary": f"List {model}s, newest first (search: words of the id, name or description"
                               + (", of its dataset's and configs' names, or its number: 'Exp #65'"
                                  if model == "Experiment" else "") + ")",
                    "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                                   for n in ("search", "team", "model_type")] + paged(),
                    "responses": {"200": _response("a page of items", _envelope(
                        items={"type": "array", "items": item})), **_errors(400, 401)}}}
        paths[f"/api/{route}/{{id}}"] = {"get": {
            "summary": f"Get a {model}", "parameters": [{"name": "id", "in": "path", "required": True,
                                                        "schema": {"type": "string"}}],
            "responses": {"200": _response("the item", _envelope(item=item)), **_errors(401, 404)}}}
    from shared.http.schedule_routes import openapi_paths  # the schedule routes document themselves

    paths.update(openapi_paths(ref, _response, _errors, paged))
    from shared.http.reconciler_routes import openapi_paths as reconciler_paths

    paths.update(reconciler_paths(_response, _errors))
    from shared.http.vocabulary_routes import openapi_paths as vocabulary_paths

    paths.update(vocabulary_paths(_response, _errors))
    from shared.http.me_routes import openapi_paths as me_paths

    paths.update(me_paths(_response, _errors))

    from shared.http.admin_routes import openapi_paths as admin_paths

    paths.update(admin_paths(_response, _errors))
    from shared.http.spend_routes import openapi_paths as spend_paths

    paths.update(spend_paths(_response, _errors))
    from shared.http.import_routes import openapi_paths as import_paths

    paths.update(import_paths(ref, _response, _errors))
    paths.update(_action_paths(ref, run_id))
    from shared.http.endpoint_routes import openapi_paths as endpoint_paths, openapi_schemas as endpoint_schemas

    paths.update(endpoint_paths(ref, _response, _errors))
    schemas.update(endpoint_schemas())
    for path, operations in paths.items():  # every route on a team's resources can refuse the caller's role
        if path.startswith(TEAM_ROUTES):
            for operation in operations.values():
                operation["responses"].update(_errors(403))
        for operation in operations.values():  # at least the envelope, so the fuzz checks every 2xx body
            for code, response in operation["responses"].items():
                if code.startswith("2") and "content" not in response:
                    response["content"] = {"application/json": {"schema": _envelope()}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Trainyard API", "version": "1.0.0",
                 "description": "Promote a recommender experiment to full-scale GPU training."},
        "security": [{"bearer": []}],
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "a Google ID token (cloud) or the "
                                                                            "local stack's developer token"}}},
        "paths": paths,
    }


def _action_paths(ref, run_id: list) -> dict:
    """Run actions and run data (shared/http/action_routes.py, docs/run-actions.md)."""
    def action(summary: str, body: str | None = None) -> dict:
        op = {"summary": summary, "parameters": run_id,
              "responses": {"200": _response("done now, or a repeat that changed nothing"),
                            "202": _response("queued; the run shows the work under way"), **_errors(400, 401, 404, 409)}}
        if body:
            op["requestBody"] = {"required": False, "content": {"application/json": {"schema": ref(body)}}}
        return {"post": op}

    def data(summary: str, *query: str, schema: dict | None = None) -> dict:
        return {"get": {"summary": summary, "parameters": run_id + [
            {"name": name, "in": "query", "schema": {"type": "string"}} for name in query],
            "responses": {"200": _response(summary, schema), **_errors(400, 401, 404)}}}

    base = "/api/training-runs/{run_id}"
    return {
        f"{base}/cancel": action("Cancel a pending, scheduled, submitting or running run"),
        f"{base}/retry": action("A new attempt of a failed or cancelled run (optionally with changed GPU or "
                                "training parameters)", "RetryBody"),
        f"{base}/deploy": action("Deploy a completed run's registered model to a new or existing endpoint",
                                 "DeployBody"),
        f"{base}/rollback": action("Send the run's endpoint traffic back to the split before its deploy (the model "
                                   "stays deployed at 0 %)", "RollbackBody"),
        f"{base}/batch-predictions": action("Write top-K items for a list of users to GCS JSONL and/or a BigQuery "
                                            "dataset of the run's team (deployer)", "BatchPredictionBody"),
        f"{base}/push-anyway": action("Register a not-blessed run's model anyway"),
        f"{base}/restore": action("Bring a deleted run back before its grace period ends (409 once its purge began)"),
        f"{base}/logs": data("Every stage's logs (tasks, Dataflow jobs, the Trainer's job) in time order, labelled by "
                             "stage; bounded and paginated", "stage", "severity", "attempt", "page_size", "page_token"),
        f"{base}/training-history": data("Per-epoch metrics and learning rate", "attempt"),
        f"{base}/artifacts": data("Artifact URIs and registry/endpoint links"),
        f"{base}/errors": data("Error stage, message and details, per attempt", schema=ref("RunErrors")),
        f"{base}/model-card": data("The registered version's model card: data, features and config, training "
                                   "curve, metrics against the baselines, the gate's decision, lineage (JSON and "
                                   "Markdown)"),
        "/api/gpu-availability": {"get": {
            "summary": "Whether the Vertex training quota covers a GPU request (pre-flight)",
            "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                           for n in ("region", "gpu_type", "gpu_count", "machine_count", "preemptible")],
            "responses": {"200": _response("availability"), **_errors(400, 401)}}},
    }
