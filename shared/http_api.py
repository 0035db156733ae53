"""The HTTP API: thin routes — parse the request, call a service in shared/, map errors to codes."""
from __future__ import annotations

from datetime import datetime

from flask import Flask, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from shared import runs, structured_log as log
from shared.composition import Dependencies
from shared.errors import Conflict, FieldError, NotFound, TransientError, Unauthenticated
from shared.http_actions import register_action_routes
from shared.http_admin import register_admin_routes
from shared.http_dashboard import register_dashboard_routes
from shared.http_guards import error_body, register_guards
from shared.http_reconciler import register_reconciler_routes
from shared.identity import authenticate
from shared.http_schedules import register_schedule_routes
from shared.services import catalog as catalog_service
from shared.services import intake, runs as run_service

OPEN_ROUTES = {"/health", "/healthz"}
CATALOG_ROUTES = {"datasets": "datasets", "feature-configs": "feature_configs", "model-configs": "model_configs",
                  "experiments": "experiments"}


class JSONProvider(DefaultJSONProvider):
    """ISO 8601 times (Flask's default is RFC 822)."""

    @staticmethod
    def default(value):
        if isinstance(value, datetime):
            return value.isoformat().replace("+00:00", "Z")
        return DefaultJSONProvider.default(value)

    sort_keys = False


def create_app(deps: Dependencies) -> Flask:
    app = Flask("trainyard-api")
    app.json = JSONProvider(app)
    app.url_map.strict_slashes = False

    def body() -> dict:
        data = request.get_json(silent=True)
        if data is None:
            raise FieldError.one("body", "is not valid JSON (send Content-Type: application/json and a JSON object)")
        return data

    @app.before_request
    def identify():
        if request.path in OPEN_ROUTES:
            return None
        g.identity = authenticate(request.headers, deps.settings)
        return None

    register_guards(app)  # after identity: ids Firestore would refuse are a 404/400 (shared/http_guards.py)

    @app.errorhandler(FieldError)
    def bad_request(exc: FieldError):
        return jsonify(success=False, error="invalid_request", errors=exc.errors), 400

    @app.errorhandler(Unauthenticated)
    def unauthenticated(exc):
        return jsonify(success=False, error="unauthenticated", message=str(exc)), 401

    @app.errorhandler(NotFound)
    def not_found(exc):
        return jsonify(success=False, error="not_found", message=f"{exc} does not exist"), 404

    @app.errorhandler(Conflict)
    def conflict(exc):
        return jsonify(success=False, error="conflict", message=str(exc)), 409

    @app.errorhandler(TransientError)
    def unavailable(exc):
        log.warning("transient failure", path=request.path, error=str(exc))
        return jsonify(success=False, error="unavailable", message=f"{exc}; retry shortly"), 503, {"Retry-After": "1"}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        payload, code = error_body(exc)
        return jsonify(payload), code

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.error("unhandled error", path=request.path, error=repr(exc))
        return jsonify(success=False, error="internal", message="an unexpected error; it has been logged"), 500

    @app.get("/health")
    @app.get("/healthz")
    def health():
        return jsonify(status="ok")

    @app.get("/api/openapi.json")
    def openapi():
        from shared.openapi import document  # noqa: built on first request

        return jsonify(document())

    # ---------------------------------------------------------------- training runs

    @app.post("/api/training-runs")
    def create_run():
        run = intake.create_run(deps.repo, deps.publisher, body(), g.identity, jobs=deps.scheduler_jobs,
                                run_data=deps.run_data, settings=deps.settings)
        return jsonify(success=True, training_run=runs.public_view(run), warnings=run.get("warnings", [])), 201

    @app.get("/api/training-runs")
    def list_runs():
        return jsonify(success=True, **run_service.list_runs(deps.repo, request.args.to_dict()))

    @app.get("/api/training-runs/<run_id>")
    def get_run(run_id):
        return jsonify(success=True, training_run=runs.public_view(run_service.get_run(deps.repo, run_id)))

    @app.delete("/api/training-runs/<run_id>")
    def delete_run(run_id):
        return jsonify(success=True, **run_service.delete_run(deps.repo, deps.store, run_id))

    @app.post("/api/training-runs/<run_id>/submit")
    def submit_run(run_id):
        run = run_service.submit_run(deps.repo, deps.publisher, run_id)
        return jsonify(success=True, training_run=runs.public_view(run)), 202

    # ---------------------------------------------------------------- catalog

    @app.get("/api/experiments/top-for-training")
    def top_for_training():
        try:
            limit = int(request.args.get("limit", 5))
        except ValueError:
            raise FieldError.one("limit", "must be a whole number") from None
        result = catalog_service.top_for_training(deps.repo, request.args.get("model_type", ""), limit)
        return jsonify(success=True, **result)

    @app.get("/api/experiments/search")
    def search_experiments():
        return jsonify(success=True, experiments=catalog_service.search(deps.repo, request.args.get("q", "")))

    @app.post("/api/<any('datasets', 'feature-configs', 'model-configs', 'experiments'):kind>")
    def create_catalog(kind):
        doc = catalog_service.create(deps.repo, CATALOG_ROUTES[kind], body(), g.identity)
        return jsonify(success=True, item=doc), 201

    @app.get("/api/<any('datasets', 'feature-configs', 'model-configs', 'experiments'):kind>")
    def list_catalog(kind):
        try:
            limit = int(request.args.get("limit", 50))
        except ValueError:
            raise FieldError.one("limit", "must be a whole number") from None
        if not 1 <= limit <= 500:
            raise FieldError.one("limit", "must be between 1 and 500")
        items = catalog_service.list_all(deps.repo, CATALOG_ROUTES[kind], limit, request.args.get("model_type"))
        return jsonify(success=True, items=items)

    @app.get("/api/<any('datasets', 'feature-configs', 'model-configs', 'experiments'):kind>/<doc_id>")
    def get_catalog(kind, doc_id):
        return jsonify(success=True, item=catalog_service.get(deps.repo, CATALOG_ROUTES[kind], doc_id))

    register_action_routes(app, deps)  # cancel, retry, deploy, push-anyway, run data, gpu availability
    register_schedule_routes(app, deps)  # schedules, trigger, run-now (shared/http_schedules.py)
    register_dashboard_routes(app, deps)  # the Training page at /training (shared/http_dashboard.py)
    register_reconciler_routes(app, deps)  # GET /api/reconciler (shared/http_reconciler.py)
    register_admin_routes(app, deps)  # admin-only: dead-letter list and replay (shared/http_admin.py)
    return app
