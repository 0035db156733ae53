"""The mapping file of an import (`trainyard catalog import`, POST /api/experiments:import-from; docs/import.md):
which of a source run's params, metrics, tags and artifacts become which fields of the catalog entries it is
imported as. The sources (MLflow, Vertex AI Experiments) are read by shared/adapters/ into SourceRuns.

    version: 1
    runs: {status: [FINISHED]}                    # which runs to import (default: finished ones)
    datasets:
      artifact: trainyard/dataset.yaml            # a YAML/JSON file the run logged: the entry's fields
      fields: {name: "{params.dataset} ({experiment})"}   # set or override fields
    model_configs:
      fields: {model_type: {param: model_type}, query_tower: {param: query_tower}}
    feature_configs: {existing: 3f2a...}          # an entry already in the catalog instead
    experiments:
      fields: {metrics: {recall_at_100: {metric: recall_at_100}}}

A field's value is a literal, a template string ("{run.name}", "{params.X}", "{tags.X}", "{metrics.X}",
"{experiment}", "{run.id}"), or a source: {param: X} | {metric: X} | {tag: X} | {artifact_uri: path}
with optional `default:` and `as: str|int|float|bool|list|json`. A param or tag read as a source is
decoded as JSON where it is JSON ("[64, 32]" → a list, "0.01" → a number), else kept as text.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Protocol

from shared.domain import yaml_text

KINDS = ("datasets", "feature_configs", "model_configs", "experiments")
ROUTES = {"datasets": "datasets", "feature_configs": "feature-configs", "model_configs": "model-configs",
          "experiments": "experiments"}
# What the importer fills itself: an experiment points at the entries its run was imported as.
REFERENCES = {"dataset_id": "datasets", "feature_config_id": "feature_configs", "model_config_id": "model_configs"}
SOURCES = ("param", "metric", "tag", "artifact_uri")
CASTS = ("str", "int", "float", "bool", "list", "json")
SECTION_KEYS = {"artifact", "fields", "existing"}
TEMPLATE = re.compile(r"\{([a-z_]+)(?:\.([^{}]+))?\}")


class MappingError(ValueError):
    """The mapping file is wrong (names the key), or a run lacks what it asks for (names the run too)."""


class SourceError(Exception):
    """The source cannot be read (unreachable, no such experiment, refused): its message names the source."""


@dataclass
class SourceRun:
    """One run of the source experiment, as both sources (MLflow, Vertex AI Experiments) are read."""
    id: str
    name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifact_uri: str
    url: Optional[str]
    read_artifact: Callable[[str], bytes] = field(repr=False)


class RunSource(Protocol):
    """A tracking system's experiment runs (shared/adapters/mlflow_runs.py, vertex_experiment_runs.py)."""
    name: str  # mlflow | vertex
    location: str  # the tracking URI, or projects/P/locations/L

    def runs(self, experiment: str) -> Iterator[SourceRun]:
        """Every run of the experiment; raises SourceError when the source cannot be read."""


@dataclass
class Section:
    artifact: Optional[str] = None
    fields: dict = field(default_factory=dict)
    existing: Optional[str] = None


@dataclass
class Mapping:
    sections: dict[str, Section]
    statuses: tuple[str, ...]

    def wants(self, run: SourceRun) -> bool:
        return not self.statuses or run.status.upper() in self.statuses


def parse(document: dict, where: str = "the mapping") -> Mapping:
    """A mapping from its file's contents; a MappingError names the first wrong key."""
    if not isinstance(document, dict):
        raise MappingError(f"{where} must be a mapping of keys")
    if document.get("version", 1) != 1:
        raise MappingError(f"{where}: version: only 1 is known")
    unknown = sorted(set(document) - {"version", "runs", *KINDS})
    if unknown:
        raise MappingError(f"{where}: unknown key {unknown[0]!r} (known: version, runs, {', '.join(KINDS)})")
    runs = document.get("runs") or {}
    if not isinstance(runs, dict) or set(runs) - {"status"}:
        raise MappingError(f"{where}: runs: only `status: [FINISHED, ...]` is known")
    statuses = runs.get("status", ["FINISHED"])
    statuses = tuple(s.upper() for s in ([statuses] if isinstance(statuses, str) else statuses or []))
    sections = {}
    for kind in KINDS:
        section = document.get(kind)
        if section is None:
            raise MappingError(f"{where}: {kind}: missing (give its fields, an artifact, or an existing id)")
        if not isinstance(section, dict) or set(section) - SECTION_KEYS:
            raise MappingError(f"{where}: {kind}: the keys are {', '.join(sorted(SECTION_KEYS))}")
        if section.get("existing") and (section.get("fields") or section.get("artifact")):
            raise MappingError(f"{where}: {kind}: existing names a catalog entry; give no fields or artifact with it")
        if kind == "experiments" and section.get("existing"):
            raise MappingError(f"{where}: experiments: each run is imported as its own experiment (no existing)")
        fields = section.get("fields") or {}
        if not isinstance(fields, dict):
            raise MappingError(f"{where}: {kind}.fields must be a mapping of field names")
        for ref in REFERENCES:
            if kind == "experiments" and ref in fields:
                raise MappingError(f"{where}: experiments.fields.{ref}: set by the importer (the run's own "
                                   f"{REFERENCES[ref]} entry)")
        _check_values(fields, f"{where}: {kind}.fields")
        sections[kind] = Section(section.get("artifact"), fields, section.get("existing"))
    return Mapping(sections, statuses)


def load(text: str, where: str) -> Mapping:
    """A mapping from its file's text (YAML or JSON)."""
    try:
        document = yaml_text.load(text)
    except Exception as exc:  # noqa: BLE001 — the parser's message says where
        raise MappingError(f"{where}: not YAML/JSON: {exc}") from None
    return parse(document, where)


def _is_source(value: Any) -> bool:
    return isinstance(value, dict) and any(key in value for key in SOURCES)


def _check_values(fields: dict, path: str) -> None:
    for key, value in fields.items():
        if _is_source(value):
            named = [k for k in SOURCES if k in value]
            extra = sorted(set(value) - set(SOURCES) - {"default", "as"})
            if len(named) != 1 or extra:
                raise MappingError(f"{path}.{key}: give one of {', '.join(SOURCES)} (with default, as)"
                                   + (f"; unknown {extra[0]!r}" if extra else ""))
            if value.get("as", "str") not in CASTS:
                raise MappingError(f"{path}.{key}.as: one of {', '.join(CASTS)}")
        elif isinstance(value, dict):
            _check_values(value, f"{path}.{key}")
        elif isinstance(value, str):
            for match in TEMPLATE.finditer(value):
                _template_name(match, f"{path}.{key}")


_MISSING = object()


def _template_name(match, path: str) -> tuple[str, Optional[str]]:
    scope, name = match.group(1), match.group(2)
    if scope in ("params", "tags", "metrics") and name:
        return scope, name
    if scope == "run" and name in ("id", "name"):
        return scope, name
    if scope == "experiment" and not name:
        return scope, None
    raise MappingError(f"{path}: unknown template {match.group(0)!r} (known: {{run.name}}, {{run.id}}, "
                       "{experiment}, {params.X}, {tags.X}, {metrics.X})")


def _decoded(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _cast(value: Any, cast: Optional[str], path: str, run: SourceRun) -> Any:
    if cast is None:
        return _decoded(value) if isinstance(value, str) else value
    try:
        if cast == "str":
            return str(value)
        if cast == "float":
            return float(value)
        if cast == "int":
            number = float(value)
            if not number.is_integer():
                raise ValueError("not a whole number")
            return int(number)
        if cast == "bool":
            return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")
        if cast == "list":
            decoded = _decoded(value) if isinstance(value, str) else value
            if isinstance(decoded, list):
                return decoded
            return [_decoded(part.strip()) for part in str(value).split(",") if part.strip()]
        return json.loads(value) if isinstance(value, str) else value
    except (TypeError, ValueError) as exc:
        raise MappingError(f"run {run.id}: {path}: {value!r} is not {cast}: {exc}") from None


def _value(spec: Any, path: str, run: SourceRun, experiment: str) -> Any:
    if _is_source(spec):
        kind = next(k for k in SOURCES if k in spec)
        name = spec[kind]
        if kind == "artifact_uri":
            found = f"{run.artifact_uri.rstrip('/')}/{str(name).lstrip('/')}"
        else:
            found = {"param": run.params, "metric": run.metrics, "tag": run.tags}[kind].get(name, _MISSING)
        if found is _MISSING:
            return spec.get("default", _MISSING)
        return _cast(found, spec.get("as"), path, run)
    if isinstance(spec, dict):
        out = {}
        for key, inner in spec.items():
            value = _value(inner, f"{path}.{key}", run, experiment)
            if value is not _MISSING:
                out[key] = value
        return out
    if isinstance(spec, str) and TEMPLATE.search(spec):
        scopes = {"params": run.params, "tags": run.tags, "metrics": run.metrics,
                  "run": {"id": run.id, "name": run.name}}
        missing = []

        def fill(match):
            scope, name = _template_name(match, path)
            if scope == "experiment":
                return experiment
            if name not in scopes[scope]:
                missing.append(match.group(0))
                return ""
            return str(scopes[scope][name])

        text = TEMPLATE.sub(fill, spec)
        return _MISSING if missing else text
    return spec


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def items(mapping: Mapping, run: SourceRun, experiment: str) -> dict[str, dict]:
    """The catalog items `run` maps to, by kind: {"existing": id} for a kind mapped to an existing entry.
    The experiment's references to the others are left for the importer to fill."""
    found = {}
    for kind, section in mapping.sections.items():
        if section.existing:
            found[kind] = {"existing": section.existing}
            continue
        item: dict = {}
        if section.artifact:
            try:
                text = run.read_artifact(section.artifact).decode()
            except FileNotFoundError as exc:
                raise MappingError(f"run {run.id}: {kind}.artifact: {exc}") from None
            try:
                item = yaml_text.load(text)
            except Exception as exc:  # noqa: BLE001 — the parser's message says where
                raise MappingError(f"run {run.id}: {kind}.artifact {section.artifact}: not YAML/JSON: {exc}") from None
            if not isinstance(item, dict):
                raise MappingError(f"run {run.id}: {kind}.artifact {section.artifact}: must hold one object")
        found[kind] = _merge(item, _value(section.fields, kind, run, experiment))
    return found
