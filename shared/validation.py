"""Bad input → field-path errors for HTTP 400 responses: pydantic models (`parse`), integer parameters
(`whole_number`) and the query parameters routes read by name (`query_problems`)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional, Type, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from shared.contract.nodes import STAGES
from shared.domain.catalog import ModelType
from shared.domain.doc_ids import is_valid_id
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


def moment(args: Mapping[str, str], name: str) -> Optional[datetime]:
    """A time query parameter (`since`, `until`) in ISO 8601; a date alone is its midnight and a time
    without an offset is UTC. A 400 naming it otherwise."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FieldError.one(name, "must be an ISO 8601 time such as 2026-12-06T13:00:00Z (or a date)") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def parse(model: Type[M], data: Any, prefix: str = "") -> M:
    if not isinstance(data, dict):
        raise FieldError.one(prefix or "body", "must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FieldError(field_errors(exc, prefix)) from None


# --------------------------------------------------------------------------- query parameters

# A Google Cloud region (europe-west4, us-central1, northamerica-northeast2): what the GPU pre-flight
# puts inside a Cloud Monitoring filter string, so nothing else may get there (review LOW, filter injection).
REGION = re.compile(r"[a-z]+-[a-z]+[0-9]{1,2}")
MAX_QUERY_VALUE = 512  # any parameter without a rule of its own
MAX_PAGE_TOKEN = 4096  # Cloud Logging's page tokens are opaque and longer than the others
MAX_SEARCH = 200
TRUE_FALSE = ("true", "false", "1", "0", "yes", "no")


def _one_of(values: Iterable[str]):
    values = tuple(values)
    return lambda v: v in values, f"must be one of {', '.join(values)}"


def _at_most(limit: int):
    return lambda v: len(v) <= limit, f"must be at most {limit} characters"


_DOCUMENT = (is_valid_id, "is not a document id")
# What each query parameter a route reads by name must look like (the routes read them as strings).
QUERY_RULES = {
    "region": (REGION.fullmatch, "must be a Google Cloud region such as europe-west4"),
    "model_type": _one_of(get_args(ModelType)),
    "preemptible": (lambda v: v.lower() in TRUE_FALSE, "must be true or false"),
    "stage": _one_of(STAGES),
    "dataset": _DOCUMENT,
    "dataset_id": _DOCUMENT,
    "q": _at_most(MAX_SEARCH),
    "search": _at_most(MAX_SEARCH),
    "page_token": _at_most(MAX_PAGE_TOKEN),
}
_ANY = _at_most(MAX_QUERY_VALUE)


def query_problems(args) -> list[tuple[str, str]]:
    """(parameter, message) for each query parameter a route would misuse: a value of the wrong shape
    for its name, or any value longer than MAX_QUERY_VALUE. Empty values mean "not given", as the routes read them."""
    problems = []
    for name, value in args.items(multi=True):
        if not value:
            continue
        valid, message = QUERY_RULES.get(name, _ANY)
        if not valid(value):
            problems.append((name, message))
    return problems
