"""Every state-changing API request leaves an audit record (shared/domain/audit.py), refused ones
included: an after-request hook, so the record carries the result the caller got, whichever route or
error handler produced it (Flask runs after_request for handled errors too, a 401 from the identity
check included). Who: the verified e-mail (flask.g.caller's, else flask.g.identity) or "unauthenticated"
with the reason; which role on which team: flask.g.authorization when the route checked one."""
from __future__ import annotations

from flask import Flask, Response, g, request

from shared.domain import audit
from shared.domain.runs import now
from shared.services import audit_trail


def register_audit_trail(app: Flask, deps) -> None:
    @app.after_request
    def record_state_change(response: Response) -> Response:
        if not audit.is_recorded(request.method, request.path):
            return response
        doc = audit.record(
            at=now(), retention_days=deps.settings.audit_retention_days,
            actor=getattr(g.get("caller"), "email", None) or g.get("identity"),
            method=request.method, route=request.url_rule.rule if request.url_rule else None, path=request.path,
            path_params=request.view_args or {}, status=response.status_code,
            answer=response.get_json(silent=True) if response.is_json else None,
            authorization=g.get("authorization"))
        audit_trail.keep(deps.repo, doc)
        return response
