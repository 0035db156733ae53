"""Turn pydantic validation errors into field-path errors for HTTP 400 responses."""
from __future__ import annotations

from typing import Any, Type, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import FieldError

M = TypeVar("M", bound=BaseModel)


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict]:
    errors = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(part) for part in err["loc"])
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        errors.append({"field": path or "body", "message": message})
    return errors


def parse(model: Type[M], data: Any, prefix: str = "") -> M:
    if not isinstance(data, dict):
        raise FieldError.one(prefix or "body", "must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FieldError(field_errors(exc, prefix)) from None
