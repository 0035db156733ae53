"""HTTP routes for schedules (registered by shared/http/app.create_app): thin, like the rest."""
from __future__ import annotations

from flask import Flask, g, jsonify, request

from shared.domain import runs, schedules
from shared.http.request_body import body
from shared.services import listing, scheduling


def register_schedule_routes(app: Flask, deps) -> None:
    @app.get("/api/training/schedules")
    def list_schedules():
        return jsonify(success=True, **listing.list_schedules(deps.repo, request.args.to_dict(), g.caller,
                                                              deps.settings.cursor_key))

    @app.post("/api/training/schedules")
    def create_schedule():
        schedule = scheduling.create_schedule(deps.repo, body(), g.caller, deps.settings.teams, deps.scheduler_jobs,
                                              targets=deps.notification_targets, admins=deps.settings.admins,
                                              settings=deps.settings)
        return jsonify(success=True, schedule=schedules.public_view(schedule)), 201

    @app.get("/api/training/schedules/<schedule_id>")
    def get_schedule(schedule_id):
        return jsonify(success=True, **scheduling.get_schedule(deps.repo, schedule_id, g.caller))

    @app.post("/api/training/schedules/<schedule_id>/pause")
    def pause_schedule(schedule_id):
        schedule = scheduling.pause_schedule(deps.repo, schedule_id, g.caller, deps.scheduler_jobs)
        return jsonify(success=True, schedule=schedules.public_view(schedule))

    @app.post("/api/training/schedules/<schedule_id>/resume")
    def resume_schedule(schedule_id):
        return jsonify(success=True, **scheduling.resume_schedule(deps.repo, deps.effects, schedule_id, g.caller,
                                                                      settings=deps.settings))

    @app.post("/api/training/schedules/<schedule_id>/cancel")
    def cancel_schedule(schedule_id):
        return jsonify(success=True, **scheduling.cancel_schedule(deps.repo, deps.effects, schedule_id, g.caller))

    @app.post("/api/training/schedules/<schedule_id>/trigger")
    def trigger_schedule(schedule_id):
        result = scheduling.trigger_schedule(deps.repo, deps.effects, schedule_id, g.caller, settings=deps.settings)
        return jsonify(success=True, **result), 201 if result["training_run"] else 200

    @app.post("/api/training-runs/<run_id>/run-now")
    def run_now(run_id):
        run = scheduling.run_now(deps.repo, deps.effects, run_id, g.caller, settings=deps.settings)
        return jsonify(success=True, training_run=runs.public_view(run)), 202


def openapi_paths(ref, response, errors, paged) -> dict:
    """The schedule routes for shared/http/openapi.py (it passes its helpers; ScheduleRequest is a schema there)."""
    sid = [{"name": "schedule_id", "in": "path", "required": True, "schema": {"type": "string"}}]

    def action(summary: str, ok: str, code: str = "200") -> dict:
        return {"post": {"summary": summary, "parameters": sid,
                         "responses": {code: response(ok), **errors(401, 404, 409)}}}

    return {
        "/api/training/schedules": {
            "get": {"summary": "List schedules, newest first (search: words of the id, name or description)",
                    "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                                   for n in ("status", "team", "search")] + paged(),
                    "responses": {"200": response("schedules"), **errors(400, 401)}},
            "post": {"summary": "Create a schedule (once, daily, weekly or cron, in an IANA time zone)",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": ref("ScheduleRequest")}}},
                     "responses": {"201": response("created; its job fires schedule-trigger"), **errors(400, 401)}}},
        "/api/training/schedules/{schedule_id}": {
            "get": {"summary": "A schedule with its latest runs", "parameters": sid,
                    "responses": {"200": response("the schedule and runs"), **errors(401, 404)}}},
        "/api/training/schedules/{schedule_id}/pause": action("Pause an active schedule", "paused"),
        "/api/training/schedules/{schedule_id}/resume": action("Resume; missed slots fire per catch_up", "resumed"),
        "/api/training/schedules/{schedule_id}/cancel": action("Cancel for good; waiting runs are cancelled",
                                                               "cancelled"),
        "/api/training/schedules/{schedule_id}/trigger": action("One run now (concurrency policy applies)",
                                                                "the run made (or the skip)", "201"),
        "/api/training-runs/{run_id}/run-now": {"post": {
            "summary": "Start a scheduled run now; its one-time schedule is consumed",
            "parameters": [{"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"202": response("queued for submission"), **errors(401, 404, 409)}}},
    }
