"""What Firestore accepts as a document id and as a value, checked before a request reaches it.

Firestore refuses (and its client raises, which would be a 500) a document id that is empty, contains
'/', is '.' or '..', has the reserved form `__x__`, or is longer than 1,500 bytes; and an integer
outside the signed 64-bit range (https://firebase.google.com/docs/firestore/quotas#limits,
"Constraints on document IDs"; values: "Supported data types"). A path id that cannot name a
document is a 404 (nothing can exist under it); a body id or number it would refuse is a 400 naming
the field.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Iterator, Optional

from pydantic import AfterValidator, Field

# Our own bound, well inside Firestore's 1,500 bytes even at 4 bytes a character.
MAX_ID_CHARS = 256
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_RESERVED = re.compile(r"__.*__", re.DOTALL)


def id_problem(value: Any) -> Optional[str]:
    """Why Firestore would refuse `value` as a document id, or None when it is a usable id."""
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return "must not be empty"
    if "/" in value:
        return "must not contain '/'"
    if value in (".", ".."):
        return "must not be '.' or '..'"
    if _RESERVED.fullmatch(value):
        return "must not have the reserved form __name__"
    if len(value) > MAX_ID_CHARS:
        return f"must be at most {MAX_ID_CHARS} characters"
    if not _is_unicode(value):
        return "must be valid Unicode (it contains an unpaired surrogate)"
    return None


def is_valid_id(value: Any) -> bool:
    return id_problem(value) is None


def _check(value: str) -> str:
    problem = id_problem(value)
    if problem:
        raise ValueError(f"is not a usable id: {problem}")
    return value


# A body field holding a document id: a 400 naming the field, and documented in the OpenAPI schema.
DocumentId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[^/]+$",
                                  description="a document id: no '/', not '.' or '..', not of the "
                                              "reserved form __name__"),
                       AfterValidator(_check)]


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def value_problems(data: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, problem) for each integer outside Firestore's 64-bit range and each string that is
    not valid Unicode anywhere in a JSON body (keys included)."""
    if isinstance(data, bool):
        return
    if isinstance(data, int):
        if not INT64_MIN <= data <= INT64_MAX:
            yield path or "body", f"is outside the 64-bit integer range [{INT64_MIN}, {INT64_MAX}]"
    elif isinstance(data, str):
        if not _is_unicode(data):
            yield path or "body", "is not valid Unicode (it contains an unpaired surrogate)"
    elif isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if not _is_unicode(str(key)):
                yield path or "body", "has a key that is not valid Unicode"
                continue
            yield from value_problems(value, child)
    elif isinstance(data, list):
        for n, value in enumerate(data):
            yield from value_problems(value, f"{path}.{n}" if path else str(n))
