"""The HTTP API: thin routes — parse the request, call a service in shared/, map errors to codes."""
from __future__ import annotations

from datetime import datetime

from flask import Flask, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from shared.domain import runs, triggers
from shared import log
from shared.composition import Dependencies
from shared.domain import teams
from shared.domain.spend import OverBudget
from shared.errors import Conflict, FieldError, Forbidden, NotFound, TransientError, Unauthenticated
from shared.http.action_routes import register_action_routes
from shared.http.admin_routes import register_admin_routes
from shared.http.audit_trail import register_audit_trail
from shared.http.dashboard_routes import register_dashboard_routes
from shared.http.endpoint_routes import register_endpoint_routes
from shared.http.guards import error_body, register_guards
from shared.http.reconciler_routes import register_reconciler_routes
from shared.http.identity import authenticate
from shared.http.import_routes import register_import_routes
from shared.http.me_routes import register_me_routes
from shared.http.schedule_routes import register_schedule_routes
from shared.http.spend_routes import register_spend_routes
from shared.http.vocabulary_routes import register_vocabulary_routes
from shared.http.request_body import body
from shared.services import catalog_entries, intake, listing, run_data
from shared.services.actions import deletion
from shared.validation import whole_number

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
    if not deps.settings.cursor_key:  # every instance must sign and check page tokens with the same key
        raise RuntimeError("TRAINYARD_CURSOR_KEY is not set: the API signs its page tokens with it "
                           "(docs/deploy.md: the trainyard-cursor-key secret)")
    deps.settings.check_api_identity()  # no API in the cloud without an organisation domain (review M3)
    app = Flask("trainyard-api")
    app.json = JSONProvider(app)
    app.url_map.strict_slashes = False

    @app.before_request
    def identify():
        if request.path in OPEN_ROUTES:
            return None
        g.identity = authenticate(request.headers, deps.settings)
        # What the caller may do: their role on each team (shared/domain/teams.py); routes check it.
        g.caller = teams.caller(g.identity, deps.settings.teams, deps.settings.admins, deps.groups_of(g.identity))
        return None

    register_audit_trail(app, deps)  # every POST/PUT/PATCH/DELETE under /api, refused ones too

    @app.after_request
    def record_authorization(response):
        # The audit trail reads g.authorization: the last role check of this request (teams.require),
        # passed or refused. Kept on g for whatever runs after this hook; the response is unchanged.
        caller = g.get("caller")
        if caller is not None and caller.decisions:
            team, role, needed = caller.decisions[-1]
            g.authorization = {"team": team, "role": role, "needed": needed}
        return response

    register_guards(app)  # after identity: ids Firestore would refuse are a 404/400 (shared/http/guards.py)

    @app.errorhandler(FieldError)
    def bad_request(exc: FieldError):
        return jsonify(success=False, error="invalid_request", errors=exc.errors), 400

    @app.errorhandler(Unauthenticated)
    def unauthenticated(exc):
        return jsonify(success=False, error="unauthenticated", message=str(exc)), 401

    @app.errorhandler(Forbidden)
    def forbidden(exc: Forbidden):
        return jsonify(success=False, error="forbidden", message=str(exc), team=exc.team, needed=exc.needed,
                       role=exc.role), 403

    @app.errorhandler(NotFound)
    def not_found(exc):
        return jsonify(success=False, error="not_found", message=f"{exc} does not exist"), 404

    @app.errorhandler(Conflict)
    def conflict(exc):
        return jsonify(success=False, error="conflict", message=str(exc)), 409

    @app.errorhandler(OverBudget)
    def over_budget(exc: OverBudget):  # 409: allowed in itself, not against this month's ledger (it may pass later)
        return jsonify(success=False, error="over_budget", message=str(exc), team=exc.team, month=exc.month,
                       budget=exc.budget, spent=exc.spent, run_cost=exc.run_cost), 409

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
        from shared.http.openapi import document  # noqa: built on first request

        return jsonify(document())

    # ---------------------------------------------------------------- training runs

    @app.post("/api/training-runs")
    def create_run():
        run = intake.create_run(deps.repo, deps.effects, body(), g.caller, deps.settings.teams, run_data=deps.run_data,
                                settings=deps.settings, targets=deps.notification_targets,
                                client=triggers.via(request.headers.get("User-Agent")))
        return jsonify(success=True, training_run=runs.public_view(run), warnings=run.get("warnings", [])), 201

    @app.get("/api/training-runs")
    def list_runs():
        return jsonify(success=True, **listing.list_runs(deps.repo, request.args.to_dict(), g.caller,
                                                         deps.settings.cursor_key))

    @app.get("/api/training-runs/<run_id>")
    def get_run(run_id):
        return jsonify(success=True, training_run=runs.public_view(run_data.read_run(deps.repo, run_id, g.caller)))

    @app.delete("/api/training-runs/<run_id>")
    def delete_run(run_id):
        return jsonify(success=True, **deletion.delete(deps.repo, run_id, g.caller, deps.settings.delete_grace_days))

    @app.post("/api/training-runs/<run_id>/submit")
    def submit_run(run_id):
        run = intake.submit_run(deps.repo, deps.effects, run_id, g.caller, deps.settings)
        return jsonify(success=True, training_run=runs.public_view(run)), 202

    # ---------------------------------------------------------------- catalog

    @app.get("/api/experiments/top-for-training")
    def top_for_training():
        limit = whole_number(request.args, "limit", 5, 1, 50)
        result = catalog_entries.top_for_training(deps.repo, request.args.get("model_type", ""), g.caller, limit)
        return jsonify(success=True, **result)

    @app.get("/api/experiments/search")
    def search_experiments():
        return jsonify(success=True, experiments=catalog_entries.search(deps.repo, request.args.get("q", ""), g.caller))

    @app.post("/api/<any('datasets', 'feature-configs', 'model-configs', 'experiments'):kind>")
    def create_catalog(kind):
        doc = catalog_entries.create(deps.repo, CATALOG_ROUTES[kind], body(), g.caller, deps.settings.teams)
        return jsonify(success=True, item=doc), 201

    @app.get("/api/<any('datasets', 'feature-configs', 'model-configs', 'experiments'):kind>")
    def list_catalog(kind):
        return jsonify(success=True, **listing.list_catalog(deps.repo, CATALOG_ROUTES[kind], request.args.to_dict(),
                                                            g.caller, deps.settings.cursor_key))

    @app.get("/api/<any('datasets', 'feature-configs', 'model-configs', 'experiments'):kind>/<doc_id>")
    def get_catalog(kind, doc_id):
        return jsonify(success=True, item=catalog_entries.get(deps.repo, CATALOG_ROUTES[kind], doc_id, g.caller))

    register_action_routes(app, deps)  # cancel, retry, deploy, push-anyway, run data, gpu availability
    register_schedule_routes(app, deps)  # schedules, trigger, run-now (shared/http/schedule_routes.py)
    register_dashboard_routes(app, deps)  # the Training page at /training (shared/http/dashboard_routes.py)
    register_reconciler_routes(app, deps)  # GET /api/reconciler (shared/http/reconciler_routes.py)
    register_vocabulary_routes(app)  # GET /api/vocabulary (shared/http/vocabulary_routes.py)
    register_me_routes(app, deps)  # GET /api/me: who the caller is; renews their dashboard access
    register_admin_routes(app, deps)  # admin-only: dead-letter list and replay (shared/http/admin_routes.py)
    register_spend_routes(app, deps)  # approve / reject a run above its team's cap; a team's spend
    register_import_routes(app, deps)  # POST /api/<kind>:import: entries from MLflow / Vertex AI Experiments
    register_endpoint_routes(app, deps)  # endpoints: list, one, traffic, undeploy (shared/http/endpoint_routes.py)
    return app
