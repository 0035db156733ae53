"""HTTP routes of the spend guard (docs/security.md "Spend guard", docs/run-actions.md "Approve or reject"):
approving or rejecting a run above its team's per-run cap, and a team's spend this month.

Added to the API by `register_spend_routes(app, deps)` in shared/http/app.create_app.
"""
from __future__ import annotations

from flask import Flask, g, jsonify

from shared.domain import runs, teams
from shared.errors import NotFound
from shared.http.request_body import body
from shared.services import access, spending
from shared.services.actions import approval


def register_spend_routes(app: Flask, deps) -> None:
    def team_admin(run_id: str, action: str) -> None:
        access.run(deps.repo, g.caller, run_id, teams.ADMIN, action)  # 404 first, then the caller's role

    @app.post("/api/training-runs/<run_id>/approve")
    def approve_run(run_id):
        team_admin(run_id, "approving a run")
        run = approval.approve(deps.repo, deps.effects, run_id, g.identity, deps.settings)
        return jsonify(success=True, training_run=runs.public_view(run), warnings=run.get("warnings", [])), 202

    @app.post("/api/training-runs/<run_id>/reject")
    def reject_run(run_id):
        team_admin(run_id, "rejecting a run")
        run = approval.reject(deps.repo, deps.effects, run_id, g.identity, body(optional=True))
        return jsonify(success=True, training_run=runs.public_view(run))

    @app.get("/api/teams/<team>/spend")
    def team_spend(team):
        if teams.by_name(deps.settings.teams, team) is None:
            raise NotFound(f"team {team}")
        teams.require(g.caller, team, teams.VIEWER, "reading a team's spend")
        return jsonify(success=True, **spending.month_view(deps.repo, deps.settings, team))


def openapi_paths(response, errors) -> dict:
    run_id = [{"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    base = "/api/training-runs/{run_id}"
    return {
        f"{base}/approve": {"post": {
            "summary": "A team admin approves a run awaiting approval (above the team's per-run cap): reserved on "
                       "the team's monthly budget and queued", "parameters": run_id,
            "responses": {"202": response("queued for submission"), **errors(401, 403, 404, 409)}}},
        f"{base}/reject": {"post": {
            "summary": "A team admin rejects a run awaiting approval: it is cancelled with the reason",
            "parameters": run_id, "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"reason": {"type": "string", "maxLength": 2000}},
                "additionalProperties": False}}}},
            "responses": {"200": response("cancelled"), **errors(400, 401, 403, 404, 409)}}},
        "/api/teams/{team}/spend": {"get": {
            "summary": "A team's budget and what is spent or reserved this month (calendar month, UTC)",
            "parameters": [{"name": "team", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": response("the month's ledger"), **errors(401, 403, 404)}}},
    }
