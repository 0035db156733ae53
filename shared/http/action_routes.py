"""HTTP routes of run actions and run data (spec §7.2–7.3) and the GPU pre-flight (§14.1).

Added to the API by `register_action_routes(app, deps)` in shared/http/app.create_app. The log and
quota sources are `deps.run_data` (built by shared/composition.py).
"""
from __future__ import annotations

from flask import Flask, g, jsonify, request

from shared.domain import runs
from shared.http.request_body import body
from shared.services import run_data
from shared.services.actions import batch_predict, cancel, deletion, deploy, push_anyway, retry, rollback


def register_action_routes(app: Flask, deps) -> None:
    def answer(outcome: dict, queued: bool):
        # 202 when cloud work was queued; 200 when the action completed here or was a no-op repeat.
        return jsonify(success=True, **outcome), 202 if queued and outcome["changed"] else 200

    @app.post("/api/training-runs/<run_id>/cancel")
    def cancel_run(run_id):
        outcome = cancel.request(deps.repo, deps.effects, run_id, g.caller)
        return answer(outcome, outcome["training_run"]["status"] == runs.CANCELLING)

    @app.post("/api/training-runs/<run_id>/retry")
    def retry_run(run_id):
        return answer(retry.request(deps.repo, deps.effects, run_id, g.caller, body(optional=True),
                                        deps.settings, deps.run_data), True)

    @app.post("/api/training-runs/<run_id>/deploy")
    def deploy_run(run_id):
        return answer(deploy.request(deps.repo, deps.effects, run_id, g.caller, body(optional=True),
                                         deps.settings.teams), True)

    @app.post("/api/training-runs/<run_id>/rollback")
    def rollback_run(run_id):
        return answer(rollback.request(deps.repo, deps.effects, run_id, g.caller, body(optional=True)), True)

    @app.post("/api/training-runs/<run_id>/batch-predictions")
    def batch_predict_run(run_id):
        return answer(batch_predict.request(deps.repo, deps.effects, deps.store, run_id, g.caller, body(),
                                            deps.settings.teams), True)

    @app.post("/api/training-runs/<run_id>/push-anyway")
    def push_anyway_run(run_id):
        return answer(push_anyway.request(deps.repo, deps.effects, run_id, g.caller, deps.settings.teams), True)

    @app.post("/api/training-runs/<run_id>/restore")
    def restore_run(run_id):
        return answer(deletion.restore(deps.repo, run_id, g.caller), False)

    @app.get("/api/training-runs/<run_id>/logs")
    def run_logs(run_id):
        return jsonify(success=True, **run_data.run_logs(deps.repo, deps.run_data, run_id, request.args.to_dict(),
                                                         g.caller, deps.settings.cursor_key))

    @app.get("/api/training-runs/<run_id>/training-history")
    def training_history(run_id):
        return jsonify(success=True, **run_data.training_history(deps.repo, deps.store, run_id, request.args.to_dict(), g.caller))

    @app.get("/api/training-runs/<run_id>/artifacts")
    def run_artifacts(run_id):
        return jsonify(success=True, **run_data.run_artifacts(deps.repo, run_id, deps.settings, g.caller))

    @app.get("/api/training-runs/<run_id>/model-card")
    def model_card(run_id):
        return jsonify(success=True, **run_data.model_card(deps.repo, deps.store, run_id, g.caller))

    @app.get("/api/training-runs/<run_id>/errors")
    def run_errors(run_id):
        return jsonify(success=True, **run_data.run_errors(deps.repo, run_id, g.caller))

    @app.get("/api/gpu-availability")
    def gpu_availability():
        return jsonify(success=True, **run_data.gpu_availability(deps.run_data, request.args.to_dict(), deps.settings))
