"""GET /api/me: the signed-in caller, their role per team, and (written on every call) the access
document the dashboard's Firestore listeners are checked against (shared/domain/access.py)."""
from __future__ import annotations

from flask import Flask, g, jsonify

from shared.composition import Dependencies
from shared.services import access_grants


def register_me_routes(app: Flask, deps: Dependencies) -> None:
    @app.get("/api/me")
    def me():
        return jsonify(success=True, me=access_grants.grant(deps.repo, g.caller, deps.settings.teams))


def openapi_paths(response, errors) -> dict:
    return {"/api/me": {"get": {
        "summary": "Who the caller is: e-mail, role per team, platform admin or not, and the teams whose runs, "
                   "schedules and catalog the dashboard may read from Firestore until access_expires_at "
                   "(the call renews that access document; the page calls it at sign-in and before expiry)",
        "responses": {"200": response("the caller: email, platform_admin, roles {team: role}, groups, teams, "
                                      "access_expires_at"), **errors(401)}}}}
