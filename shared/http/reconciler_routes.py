"""GET /api/reconciler: what the reconciler checked and repaired (shared/services/reconcile.py)."""
from __future__ import annotations

from flask import Flask, jsonify


def register_reconciler_routes(app: Flask, deps) -> None:
    @app.get("/api/reconciler")
    def reconciler_status():
        from shared.services import reconcile

        return jsonify(success=True, reconciler=deps.repo.get_status(reconcile.STATUS) or reconcile.empty_status())


def openapi_paths(response, errors) -> dict:
    return {"/api/reconciler": {"get": {
        "summary": "The reconciler's last pass, totals per repair and its latest repairs",
        "responses": {"200": response("the reconciler's status"), **errors(401)}}}}
