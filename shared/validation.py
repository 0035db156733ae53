"""Bad input → field-path errors for HTTP 400 responses: pydantic models (`parse`) and integer parameters
(`whole_number`)."""
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


def whole_number(args: dict, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter (`limit`, `page_size`, `attempt`, …): a 400 naming it when it is not a whole
    number in [low, high]."""
    raw = args.get(name)
    try:
        value = int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        raise FieldError.one(name, "must be a whole number") from None
    if not low <= value <= high:
        raise FieldError.one(name, f"must be between {low} and {high}")
    return value


def parse(model: Type[M], data: Any, prefix: str = "") -> M:
    if not isinstance(data, dict):
        raise FieldError.one(prefix or "body", "must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FieldError(field_errors(exc, prefix)) from None
