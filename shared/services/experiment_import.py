"""Importing a tracked experiment (MLflow, Vertex AI Experiments) into the catalog: every run of the source
experiment is mapped to a dataset, a feature config, a model config and an experiment (the mapping file,
shared/domain/import_mapping.py), each checked with the API's own models, then handed to `post`, which
stores it through catalog_import.import_entry: directly in the API (POST /api/experiments:import-from), over
HTTP from the CLI (`trainyard catalog import`, which may read a server the API cannot reach). One
implementation for both; docs/import.md.

The API reads a URL its caller gives: `SourcePolicy` says which tracking hosts and Vertex projects this
deployment reads from (TRAINYARD_IMPORT_MLFLOW_HOSTS, TRAINYARD_IMPORT_VERTEX_PROJECTS), so a caller cannot
make it fetch the metadata server or an internal service (server-side request forgery).
"""
from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

from pydantic import ValidationError

from shared.domain.import_mapping import REFERENCES, Mapping, MappingError, RunSource, items, load
from shared.errors import FieldError, Forbidden
from shared.services import catalog_import
from shared.services.catalog_entries import KINDS as MODELS

SOURCES = ("mlflow", "vertex")
MAPPINGS = Path(__file__).resolve().parents[1] / "domain" / "import_mappings"
PLACEHOLDER = "dry-run"  # an experiment's references before its configs exist
# A Vertex AI region as Google names them (us-central1, europe-west4): it becomes part of the API's host name
# ({location}-aiplatform.googleapis.com), so nothing else may pass.
_REGION = re.compile(r"^[a-z]+(?:-[a-z]+)+[0-9]+$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")  # Google Cloud project ids: 6-30 characters


class ItemRefused(Exception):
    """The catalog refused one mapped item (the run fails alone): `errors` name the fields."""

    def __init__(self, message: str, errors: Optional[list[dict]] = None):
        super().__init__(message)
        self.errors = errors or []


def default_mapping_text(source: str) -> str:
    return (MAPPINGS / f"{source}.yaml").read_text()


def mapping_for(source: str, text: Optional[str], where: Optional[str] = None) -> Mapping:
    """The mapping of an import: `text` (a mapping file's content), else the source's default."""
    if text is None:
        return load(default_mapping_text(source), f"the default {source} mapping")
    return load(text, where or "the mapping")


def problems(found: dict, team: Optional[str]) -> list[dict]:
    """What the API would refuse in one run's mapped items ({field, message}), said before anything is written."""
    errors = []
    for kind, item in found.items():
        if "existing" in item:
            continue
        body = {**item, "team": team or item.get("team")}
        if kind == "experiments":
            body.update({ref: PLACEHOLDER for ref in REFERENCES})
        try:
            MODELS[kind].model_validate({k: v for k, v in body.items() if v is not None})
        except ValidationError as exc:
            errors += [{"field": f"{kind}.{'.'.join(map(str, e['loc']))}",
                        "message": e["msg"].removeprefix("Value error, ")} for e in exc.errors(include_url=False)]
    return errors


Post = Callable[[str, dict], dict]  # (kind, {"origin", "item"}) -> {"item": the stored entry, "result": ...}


def stored_by(repo, who, declared) -> Post:
    """The API's `post`: each item through catalog_import.import_entry as POST /api/<kind>:import stores it
    (validated, the caller's role on its team, a dataset confined to its data); a refusal fails its run alone,
    its fields named as the run's (`datasets.source.uri`)."""
    def post(kind: str, body: dict) -> dict:
        try:
            item, result = catalog_import.import_entry(repo, kind, body, who, declared)
        except FieldError as exc:
            raise ItemRefused(str(exc), [{**e, "field": f"{kind}.{e['field'].removeprefix('item.')}"}
                                         for e in exc.errors]) from None
        except Forbidden as exc:
            raise ItemRefused(str(exc)) from None
        return {"item": item, "result": result}
    return post


def _post(post: Post, found: dict, origin: dict, team: Optional[str], seen: dict) -> tuple[dict, dict]:
    """Import one run's items: the configs first (one post per distinct config in this import), then its
    experiment pointing at them. (the experiment's answer, the ids by kind)"""
    ids = {}
    for kind in ("datasets", "feature_configs", "model_configs"):
        item = {**found[kind], **({"team": team} if team else {})}
        if "existing" in item:
            ids[kind] = item["existing"]
            continue
        key = (kind, repr(sorted(item.items())))
        if key not in seen:
            seen[key] = post(kind, {"origin": origin, "item": item})["item"]["id"]
        ids[kind] = seen[key]
    experiment = {**found["experiments"], **{ref: ids[k] for ref, k in REFERENCES.items()},
                  **({"team": team} if team else {})}
    return post("experiments", {"origin": origin, "item": experiment}), ids


def import_runs(source: RunSource, mapping: Mapping, experiment: str, post: Post, team: Optional[str] = None,
                dry_run: bool = False, after: Optional[str] = None, deadline: Optional[float] = None) -> dict:
    """{"runs": one row per source run, "counts": {result: n}, "next_after": None}. A row: run_id, run_name,
    result (created, updated, unchanged, valid, skipped (<state>), failed), experiment_id and ids (the entries by
    kind), and for a failed run error and errors ({field, message}). Raises SourceError when the source cannot be
    read.

    In parts (the API, whose requests have a time limit): with a `deadline` (a `time.monotonic()` time) the runs go in
    run-id order, those up to `after` are left out, and once the deadline has passed no further run starts (one
    always does): `next_after` is then the last run id done, to ask again from. Entry ids derive from the source
    run and the content (shared/domain/catalog_origin.py), so the parts add up to one import."""
    rows, counts, seen = [], Counter(), {}
    runs = source.runs(experiment)
    if deadline is not None:
        runs = sorted((run for run in runs if after is None or run.id > after), key=lambda run: run.id)
    for run in runs:
        if deadline is not None and rows and time.monotonic() >= deadline:
            return {"runs": rows, "counts": dict(counts), "next_after": rows[-1]["run_id"]}
        row = {"run_id": run.id, "run_name": run.name}
        rows.append(row)
        if not mapping.wants(run):
            row["result"] = f"skipped ({run.status.lower()})"
            counts["skipped"] += 1
            continue
        origin = {"source": source.name, "location": source.location, "experiment": experiment,
                  "run_id": run.id, "run_name": run.name, "url": run.url}
        try:
            try:
                found = items(mapping, run, experiment)
            except MappingError as exc:
                raise ItemRefused(str(exc)) from None
            errors = problems(found, team)
            if errors:
                raise ItemRefused(f"run {run.id}: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                                  errors)
            if dry_run:
                row["result"] = "valid"
                counts["valid"] += 1
                continue
            answer, row["ids"] = _post(post, found, origin, team, seen)
        except ItemRefused as exc:
            row["result"], row["error"] = "failed", str(exc)
            if exc.errors:
                row["errors"] = exc.errors
            counts["failed"] += 1
            continue
        row["experiment_id"], row["result"] = answer["item"]["id"], answer["result"]
        counts[answer["result"]] += 1
    return {"runs": rows, "counts": dict(counts), "next_after": None}


# --------------------------------------------------------------------------- what the API may read


@dataclass(frozen=True)
class SourcePolicy:
    """Where this deployment's API reads tracked experiments from."""
    mlflow_hosts: tuple[str, ...]  # host or host:port (a host alone: any port)
    vertex_projects: tuple[str, ...]

    def host_allowed(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            return False
        host = parts.hostname.lower()
        return any(entry == host or entry == f"{host}:{port}" for entry in self.mlflow_hosts)


def source_request(body: dict, policy: SourcePolicy) -> dict:
    """The source an API import reads, checked: {source, tracking_uri | project + location, experiment,
    mapping}. A FieldError names each bad field (a host or project this deployment does not read is one)."""
    if not isinstance(body, dict):
        raise FieldError.one("body", "must be a JSON object")
    known = {"source", "tracking_uri", "project", "location", "experiment", "team", "mapping", "dry_run", "after"}
    errors = [{"field": key, "message": "unknown field"} for key in sorted(set(body) - known)]

    def text(key: str, required: bool = True) -> Optional[str]:
        value = body.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                errors.append({"field": key, "message": "is required"})
            return None
        if not isinstance(value, str):
            errors.append({"field": key, "message": "must be a string"})
            return None
        return value.strip()

    source = text("source")
    if source is not None and source not in SOURCES:
        errors.append({"field": "source", "message": f"must be one of {', '.join(SOURCES)}"})
    where = {"source": source, "experiment": text("experiment"), "mapping": text("mapping", required=False),
             "after": text("after", required=False)}
    if source == "mlflow":
        uri = text("tracking_uri")
        if uri is not None and not policy.host_allowed(uri):
            errors.append({"field": "tracking_uri", "message": (
                f"{uri}: not a tracking server this deployment reads from (TRAINYARD_IMPORT_MLFLOW_HOSTS: "
                f"{', '.join(policy.mlflow_hosts) or 'none'}); import from your machine with `trainyard catalog "
                "import`, or ask an operator to allow the host")})
        where["tracking_uri"] = uri
    elif source == "vertex":
        project, location = text("project"), text("location")
        if project is not None and not _PROJECT.match(project):
            errors.append({"field": "project", "message": "is not a Google Cloud project id"})
        elif project is not None and project not in policy.vertex_projects:
            errors.append({"field": "project", "message": (
                f"{project}: not a project this deployment reads Vertex AI Experiments from "
                f"(TRAINYARD_IMPORT_VERTEX_PROJECTS: {', '.join(policy.vertex_projects) or 'none'})")})
        if location is not None and not _REGION.match(location):
            errors.append({"field": "location", "message": "is not a Vertex AI region (us-central1, europe-west4, …)"})
        where.update(project=project, location=location)
    if not isinstance(body.get("dry_run", False), bool):
        errors.append({"field": "dry_run", "message": "must be true or false"})
    if errors:
        raise FieldError(errors)
    try:
        where["parsed_mapping"] = mapping_for(source, where["mapping"], "mapping")
    except MappingError as exc:
        raise FieldError.one("mapping", str(exc).removeprefix("mapping: ")) from None
    return where

