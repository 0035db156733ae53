"""HTTP routes of endpoints (issue 26, spec §5.1 "Manage Endpoint"): the list and one endpoint (viewer on the team
of a run deployed there: shared/services/endpoint_views.py), a traffic split and an undeploy (deployer:
shared/services/actions/endpoint_traffic.py, undeploy.py). A run's rollback stays POST
/api/training-runs/{id}/rollback (the endpoint view calls it for the run whose deploy it undoes).

Added to the API by `register_endpoint_routes(app, deps)` in shared/http/app.create_app; the endpoints are
read through `deps.endpoints`, the serving port's read side (built by shared/composition.py)."""
from __future__ import annotations

from flask import Flask, g, jsonify, request

from shared.http.request_body import body
from shared.services import endpoint_views
from shared.services.actions import endpoint_traffic, undeploy


def register_endpoint_routes(app: Flask, deps) -> None:
    def answer(outcome: dict):
        return jsonify(success=True, **outcome), 202 if outcome["changed"] else 200

    @app.get("/api/endpoints")
    def list_endpoints():
        return jsonify(success=True, **endpoint_views.list_endpoints(deps.repo, deps.endpoints, request.args.to_dict(),
                                                                g.caller, deps.settings.cursor_key))

    @app.get("/api/endpoints/<endpoint_id>")
    def get_endpoint(endpoint_id):
        return jsonify(success=True, **endpoint_views.get_endpoint(deps.repo, deps.endpoints, endpoint_id, g.caller))

    @app.post("/api/endpoints/<endpoint_id>/traffic")
    def endpoint_traffic_route(endpoint_id):
        return answer(endpoint_traffic.request(deps.repo, deps.effects, deps.endpoints, endpoint_id, g.caller, body()))

    @app.post("/api/endpoints/<endpoint_id>/undeploy")
    def undeploy_route(endpoint_id):
        return answer(undeploy.request(deps.repo, deps.effects, deps.endpoints, endpoint_id, g.caller, body()))


def openapi_paths(ref, response, errors) -> dict:
    endpoint_id = [{"name": "endpoint_id", "in": "path", "required": True, "schema": {"type": "string"},
                    "description": "the endpoint's id (the last segment of its resource name)"}]

    def change(summary: str, schema: str) -> dict:
        return {"post": {"summary": summary, "parameters": endpoint_id, "requestBody": {
            "required": True, "content": {"application/json": {"schema": ref(schema)}}},
            "responses": {"200": response("a repeat that changed nothing", ref("EndpointChange")),
                          "202": response("queued; the endpoint's history shows it once done", ref("EndpointChange")),
                          **errors(400, 401, 403, 404, 409)}}}

    return {
        "/api/endpoints": {"get": {
            "summary": "The endpoints of the teams whose runs are deployed to them, by id, a page at a time",
            "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}} for n in ("page_size", "page_token")],
            "responses": {"200": response("a page of endpoints", ref("EndpointPage")), **errors(400, 401)}}},
        "/api/endpoints/{endpoint_id}": {"get": {
            "summary": "An endpoint: its deployed models, traffic split, the run each came from, its canary, history",
            "parameters": endpoint_id,
            "responses": {"200": response("the endpoint", ref("EndpointDetail")), **errors(401, 404)}}},
        "/api/endpoints/{endpoint_id}/traffic": change(
            "Set the endpoint's traffic split over its deployed models (together 100); deployer", "TrafficBody"),
        "/api/endpoints/{endpoint_id}/undeploy": change(
            "Take a deployed model off the endpoint (its traffic goes to the others; the last one holding traffic "
            "only with force); deployer", "UndeployBody"),
    }


def openapi_schemas() -> dict:
    """The answers' shapes, checked against the responses by the fuzz test."""
    nullable_text = {"type": ["string", "null"]}
    split = {"type": "object", "additionalProperties": {"type": "integer"}}
    model = {"type": "object", "required": ["id", "traffic_percent"], "properties": {
        "id": {"type": "string"}, "model": {"type": "string"}, "model_version_id": {"type": "string"},
        "display_name": {"type": "string"}, "deployed_at": nullable_text, "traffic_percent": {"type": "integer"},
        "run": {"type": ["object", "null"], "description": "the Trainyard run the model came from (null: none; "
                "{\"of_another_team\": true}: a run of a team the caller may not view)"}}}
    endpoint = {"type": "object", "required": ["id", "resource_name", "traffic_split", "deployed_models"], "properties": {
        "id": {"type": "string"}, "resource_name": {"type": "string"}, "display_name": {"type": "string"},
        "created_at": nullable_text, "labels": {"type": "object"}, "traffic_split": split,
        "teams": {"type": "array", "items": {"type": "string"}}, "deployed_models": {"type": "array", "items": model},
        "canary": {"type": ["object", "null"]}, "under_way": {"type": "array", "items": {"type": "object"}}}}
    detail = {**endpoint, "properties": {**endpoint["properties"], "history": {"type": "array", "items": {
        "type": "object", "description": "a deploy, canary, promotion, rollback, traffic change or undeploy",
        "properties": {"at": {"type": "string"}, "by": {"type": "string"}, "action": {"type": "string"},
                       "from": split, "to": split, "reason": nullable_text, "run_id": {"type": "string"}}}}}}
    return {
        "Endpoint": endpoint,
        "EndpointPage": {"type": "object", "required": ["endpoints"], "properties": {
            "success": {"type": "boolean"}, "endpoints": {"type": "array", "items": {"$ref": "#/components/schemas/Endpoint"}},
            "next_page_token": nullable_text}},
        "EndpointDetail": {"type": "object", "required": ["endpoint"], "properties": {
            "success": {"type": "boolean"}, "endpoint": detail}},
        "EndpointChange": {"type": "object", "required": ["changed", "message"], "properties": {
            "success": {"type": "boolean"}, "changed": {"type": "boolean"}, "message": {"type": "string"},
            "run_id": {"type": "string", "description": "the run the change is recorded on"},
            "warnings": {"type": "array", "items": {"type": "string"}}}},
    }
