"""Admin-only routes: what Pub/Sub dead-lettered, listed and replayed (shared/adapters/dead_letters.py), and
the audit trail (shared/domain/audit.py).

    GET  /api/admin/dead-letters/{topic}?limit=N         what `<topic>-dead-letter-hold` keeps (nothing consumed)
    POST /api/admin/dead-letters/{topic}/replay?limit=N  republish up to N onto the topic, then acknowledge each
    GET  /api/admin/audit?actor=&team=&action=&result=&since=&until=&limit=&cursor=
                                                         who did what, newest first
    POST /api/admin/team-assignments                     give a run, schedule or catalog entry a team (admins of
                                                         the teams concerned: shared/services/access.assign_team)

Who is an admin: the caller's verified e-mail (shared/http/identity.py: a Google ID token behind Cloud Run
IAM, a Firebase ID token verified in full, or the local developer identity) is one of TRAINYARD_ADMINS,
which Terraform sets from `var.admin_emails`. An allowlist rather than a Firebase custom claim: the
CLI's Google ID tokens (`gcloud auth print-identity-token`) carry no custom claims, and a list in
Terraform is reviewed like every other grant. Everyone else is refused with 403 naming the setting.
The calls to Pub/Sub run as the API's service account (terraform/dead_letters.tf, iam.tf).
"""
from __future__ import annotations

from dataclasses import asdict

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import Forbidden

from shared.adapters import dead_letters
from shared import log
from shared.contract import topics
from shared.domain import audit
from shared.errors import FieldError
from shared.http.request_body import body
from shared.services import access, audit_trail

DEFAULT_LIMIT = 10


def require_admin(caller) -> None:
    """A platform admin: the caller's roles (shared/domain/teams.caller) already say whether they are one."""
    if not caller.platform_admin:
        raise Forbidden(f"{caller.email} is not an administrator of this deployment: the admin routes admit only "
                        f"the e-mails in TRAINYARD_ADMINS (Terraform variable admin_emails)")


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise FieldError.one("limit", f"must be a whole number from 1 to {dead_letters.MAX_LIMIT}, not {raw!r}") from None
    return dead_letters.checked_limit(value)


def register_admin_routes(app: Flask, deps) -> None:
    @app.post("/api/admin/team-assignments")
    def assign_team():
        request_body = body()
        if not isinstance(request_body, dict):
            raise FieldError.one("body", "must be a JSON object: {kind, id, team}")
        doc = access.assign_team(deps.repo, g.caller, deps.settings.teams, request_body.get("kind"),
                                 request_body.get("id"), request_body.get("team"))
        return jsonify(success=True, kind=request_body["kind"], id=request_body["id"], team=doc.get("team"))

    @app.get("/api/admin/dead-letters/<topic>")
    def list_dead_letters(topic):
        require_admin(g.caller)
        hold = dead_letters.hold_subscription(topic)  # an unknown topic is a 404 before the limit is read
        held = deps.dead_letters.list(topic, _limit())
        return jsonify(success=True, topic=topic, subscription=hold, dead_letters=[asdict(letter) for letter in held])

    @app.post("/api/admin/dead-letters/<topic>/replay")
    def replay_dead_letters(topic):
        require_admin(g.caller)
        hold = dead_letters.hold_subscription(topic)
        if topic not in topics.API_PUBLISHES:
            raise Forbidden(f"the API's account may publish only to {', '.join(topics.API_PUBLISHES)}: replay {topic} "
                            f"with your own credentials: trainyard admin dead-letters replay {topic} --direct")
        replayed = deps.dead_letters.replay(topic, _limit())
        log.info("dead letters replayed", by=g.identity, topic=topic, count=len(replayed),
                 replayed={letter.message_id: letter.replayed_as for letter in replayed})
        return jsonify(success=True, topic=topic, subscription=hold,
                       dead_letters=[asdict(letter) for letter in replayed])

    @app.get("/api/admin/audit")
    def list_audit():
        require_admin(g.caller)
        return jsonify(success=True, **audit_trail.list_records(deps.repo, request.args.to_dict()))


def openapi_paths(response, errors) -> dict:
    letter = {"type": "object", "required": ["message_id", "publish_time", "data", "attributes"], "properties": {
        "message_id": {"type": "string", "description": "the dead-lettered message's id"},
        "publish_time": {"type": "string", "description": "when it was dead-lettered (ISO 8601)"},
        "data": {"type": "string", "description": "its data as text (UTF-8; undecodable bytes replaced)"},
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        "replayed_as": {"type": ["string", "null"],
                        "description": "replay: the id of the message published onto the topic"}}}
    answer = {"type": "object", "required": ["success", "topic", "subscription", "dead_letters"], "properties": {
        "success": {"type": "boolean"}, "topic": {"type": "string"}, "subscription": {"type": "string"},
        "dead_letters": {"type": "array", "items": letter}}}
    parameters = [
        {"name": "topic", "in": "path", "required": True, "schema": {"type": "string", "enum": list(topics.ALL)}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                    "maximum": dead_letters.MAX_LIMIT, "default": DEFAULT_LIMIT}}]
    refused = errors(400, 401, 403, 404, 503)
    record = {"type": "object", "required": ["id", "at", "actor", "method", "action", "status", "outcome"], "properties": {
        "id": {"type": "string"}, "at": {"type": "string", "description": "when (ISO 8601)"},
        "actor": {"type": "string", "description": "the verified e-mail, or 'unauthenticated' (see reason)"},
        "reason": {"type": ["string", "null"], "description": "why the identity was refused"},
        "authorization": {"type": ["object", "null"], "description": "the role checked: team, role, needed"},
        "team": {"type": ["string", "null"]}, "method": {"type": "string"},
        "route": {"type": ["string", "null"], "description": "the route rule, e.g. /api/training-runs/<run_id>/cancel"},
        "action": {"type": "string", "description": "method and route rule"}, "path": {"type": "string"},
        "path_params": {"type": "object", "additionalProperties": {"type": "string"}},
        "status": {"type": "integer"}, "outcome": {"type": "string", "enum": list(audit.OUTCOMES)},
        "error": {"type": ["string", "null"]}, "created": {"type": ["string", "null"]},
        "fields": {"type": "array", "items": {"type": "string"}, "description": "a 400's fields"},
        "message": {"type": "string", "description": "the refusal's message (not for a 400)"}}}
    audit_answer = {"type": "object", "required": ["success", "records", "limit", "next_cursor"], "properties": {
        "success": {"type": "boolean"}, "records": {"type": "array", "items": record},
        "limit": {"type": "integer"}, "next_cursor": {"type": ["string", "null"]}}}
    audit_parameters = [{"name": name, "in": "query", "schema": {"type": "string"}, "description": text} for name, text in (
        ("actor", "an e-mail, or 'unauthenticated'"), ("team", "a team"),
        ("action", "method and route rule, e.g. 'POST /api/training-runs/<run_id>/cancel'"),
        ("result", "ok, refused, failed, or an HTTP status"), ("since", "ISO 8601, inclusive"),
        ("until", "ISO 8601, exclusive"), ("cursor", "next_cursor of the previous page"))]
    audit_parameters.append({"name": "limit", "in": "query", "schema": {
        "type": "integer", "minimum": 1, "maximum": audit.MAX_LIMIT, "default": audit.DEFAULT_LIMIT}})
    assignment = {"type": "object", "required": ["kind", "id", "team"], "properties": {
        "kind": {"enum": list(access.COLLECTIONS)}, "id": {"type": "string"}, "team": {"type": "string"}}}
    return {
        "/api/admin/audit": {"get": {
            "summary": "Admin: the audit trail of state-changing requests (refused ones included), newest first",
            "parameters": audit_parameters,
            "responses": {"200": response("audit records", audit_answer), **errors(400, 401, 403, 503)}}},
        "/api/admin/team-assignments": {"post": {
            "summary": "Give a run, schedule or catalog entry a team: admin on the team it leaves (a platform "
                       "admin for one made before teams) and on the one it joins; a catalog entry only takes "
                       "a team when it has none",
            "requestBody": {"required": True, "content": {"application/json": {"schema": assignment}}},
            "responses": {"200": response("assigned", assignment), **errors(400, 401, 403, 404, 409)}}},
        "/api/admin/dead-letters/{topic}": {"get": {
            "summary": "Admin: the messages Pub/Sub gave up delivering on a topic (its dead-letter hold), "
                       "shown without consuming them",
            "parameters": parameters, "responses": {"200": response("held messages", answer), **refused}}},
        "/api/admin/dead-letters/{topic}/replay": {"post": {
            "summary": "Admin: republish held messages onto their topic (marked trainyard_replay_of), "
                       "acknowledging each only after its publish; every consumer is idempotent",
            "parameters": parameters, "responses": {"200": response("the messages replayed", answer), **refused}}},
    }
