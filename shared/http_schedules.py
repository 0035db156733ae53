"""HTTP routes for schedules (registered by shared/http_api.create_app): thin, like the rest."""
from __future__ import annotations

from flask import Flask, g, jsonify, request

from shared import runs, schedules
from shared.errors import FieldError
from shared.services import schedules as schedule_service


def register_schedule_routes(app: Flask, deps) -> None:
    def jobs():
        # Tests put a fake on deps.scheduler_jobs; otherwise the settings choose (cached).
        return getattr(deps, "scheduler_jobs", None) or _from_settings(deps.settings)

    def body() -> dict:
        data = request.get_json(silent=True)
        if data is None:
            raise FieldError.one("body", "is not valid JSON (send Content-Type: application/json and a JSON object)")
        return data

    @app.get("/api/training/schedules")
    def list_schedules():
        return jsonify(success=True, **schedule_service.list_schedules(deps.repo, request.args.to_dict()))

    @app.post("/api/training/schedules")
    def create_schedule():
        schedule = schedule_service.create_schedule(deps.repo, body(), g.identity, jobs())
        return jsonify(success=True, schedule=schedules.public_view(schedule)), 201

    @app.get("/api/training/schedules/<schedule_id>")
    def get_schedule(schedule_id):
        return jsonify(success=True, **schedule_service.get_schedule(deps.repo, schedule_id))

    @app.post("/api/training/schedules/<schedule_id>/pause")
    def pause_schedule(schedule_id):
        schedule = schedule_service.pause_schedule(deps.repo, schedule_id, g.identity, jobs())
        return jsonify(success=True, schedule=schedules.public_view(schedule))

    @app.post("/api/training/schedules/<schedule_id>/resume")
    def resume_schedule(schedule_id):
        return jsonify(success=True, **schedule_service.resume_schedule(deps.repo, deps.publisher, schedule_id, jobs()))

    @app.post("/api/training/schedules/<schedule_id>/cancel")
    def cancel_schedule(schedule_id):
        return jsonify(success=True, **schedule_service.cancel_schedule(deps.repo, schedule_id, g.identity, jobs()))

    @app.post("/api/training/schedules/<schedule_id>/trigger")
    def trigger_schedule(schedule_id):
        result = schedule_service.trigger_schedule(deps.repo, deps.publisher, schedule_id)
        return jsonify(success=True, **result), 201 if result["training_run"] else 200

    @app.post("/api/training-runs/<run_id>/run-now")
    def run_now(run_id):
        run = schedule_service.run_now(deps.repo, deps.publisher, run_id, jobs())
        return jsonify(success=True, training_run=runs.public_view(run)), 202


_cached: dict = {}


def _from_settings(settings):
    from shared.scheduler_jobs import jobs_from_settings

    key = (settings.scheduler_backend, settings.project, settings.scheduler_location)
    if key not in _cached:
        _cached[key] = jobs_from_settings(settings)
    return _cached[key]
