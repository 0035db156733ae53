"""Errors the services raise; entry points map them to HTTP codes or to ack/retry."""
from __future__ import annotations


class TrainyardError(Exception):
    """Base class."""


class FieldError(TrainyardError):
    """Bad input: each problem names the field path and the rule (HTTP 400)."""

    def __init__(self, errors: list[dict]):
        self.errors = errors  # [{"field": "training_params.epochs", "message": "..."}]
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))

    @classmethod
    def one(cls, field: str, message: str) -> "FieldError":
        return cls([{"field": field, "message": message}])


class NotFound(TrainyardError):
    """HTTP 404."""


class Conflict(TrainyardError):
    """The action is not allowed in the current state (HTTP 409)."""


class Unauthenticated(TrainyardError):
    """HTTP 401."""


class Forbidden(TrainyardError):
    """The caller is known but lacks the role this needs (HTTP 403): the message names what is missing."""

    def __init__(self, message: str, team: str | None = None, needed: str | None = None, role: str | None = None):
        super().__init__(message)
        self.team, self.needed, self.role = team, needed, role


class TransientError(TrainyardError):
    """Worth retrying: the event is nacked so Pub/Sub redelivers it."""


class PermanentError(TrainyardError):
    """Retrying will not help: the run is failed with this message and the event acknowledged."""

    def __init__(self, message: str, stage: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.stage = stage
        self.details = details or {}
