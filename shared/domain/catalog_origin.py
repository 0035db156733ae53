"""Where an imported catalog entry came from (an MLflow or Vertex AI Experiments run), and the catalog id
it is stored under: the same source run always lands on the same entry, so a re-import changes nothing
and a changed run updates its entry in place.

Experiments are keyed by their team and run: (team, source, location, experiment, run id). The datasets, feature configs
and model configs an import makes are keyed by their content within the source experiment instead: fifty
runs over one dataset share one dataset entry, and a run whose config changed points at a new, immutable
config (the runs already built from the old one keep reading what they were built from).
"""
from __future__ import annotations

import hashlib
import json
from typing import Literal, Optional

from pydantic import Field, field_validator

from shared.domain.catalog import MAX_URI, Strict

SOURCES = ("mlflow", "vertex")
ID_PREFIX = "imp-"  # imported entries are told apart from server-assigned ids at a glance


def location_key(value: str) -> str:
    """One spelling per place: "http://host:5000/" and "http://host:5000" are the same tracking server."""
    return value.strip().rstrip("/")


class Origin(Strict):
    """The source run an entry was imported from: shown on the entry, and what its id is derived from."""

    source: Literal[SOURCES] = Field(..., description="mlflow or vertex")
    location: str = Field(..., min_length=1, max_length=MAX_URI,
                          description="the MLflow tracking URI, or projects/P/locations/L for Vertex AI")
    experiment: str = Field(..., min_length=1, max_length=500, description="the source experiment's name")
    run_id: str = Field(..., min_length=1, max_length=500, description="the source run's id")
    run_name: Optional[str] = Field(None, max_length=500)
    url: Optional[str] = Field(None, max_length=MAX_URI, description="the run in the source's own UI")

    @field_validator("location")
    @classmethod
    def _one_spelling(cls, value: str) -> str:
        if not location_key(value):
            raise ValueError("name the tracking server or projects/P/locations/L")
        return location_key(value)


def _digest(*parts: str) -> str:
    return ID_PREFIX + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def entry_id(kind: str, origin: Origin, item: dict) -> str:
    """The catalog id of an imported `kind` entry: an experiment's from its team and run, a config's from its
    content (`item` as stored, team included). The team is part of the identity: another team importing
    the same run gets an entry of its own and learns nothing of this one."""
    if kind == "experiments":
        return _digest(kind, str(item.get("team")), origin.source, origin.location, origin.experiment,
                       origin.run_id)
    content = json.dumps(item, sort_keys=True, default=str)
    return _digest(kind, origin.source, origin.location, origin.experiment, content)
