"""Catalog services: datasets, feature configs, model configs and experiments (quick tests)."""
from __future__ import annotations

import re
from typing import Iterable, Optional

from shared.domain import run_config, teams
from shared.domain.teams import Caller
from shared.domain.catalog import Dataset, Experiment, FeatureConfig, ModelConfig
from shared.errors import FieldError, NotFound
from shared.adapters.repository import Repository
from shared.domain.runs import now
from shared.validation import parse

KINDS = {"datasets": Dataset, "feature_configs": FeatureConfig, "model_configs": ModelConfig,
         "experiments": Experiment}
# The primary metric that ranks experiments for promotion, and its direction (descending unless lower is better).
PRIMARY_METRIC = {model_type: (metric, metric not in run_config.LOWER_IS_BETTER)
                  for model_type, metric in run_config.PRIMARY_METRIC.items()}
_EXP_NUMBER = re.compile(r"^\s*(?:exp(?:eriment)?\s*)?#?\s*(\d+)\s*$", re.IGNORECASE)


WHAT = {"datasets": "dataset", "feature_configs": "feature config", "model_configs": "model config",
        "experiments": "experiment"}


def _stored(model, who: Caller, team: str) -> dict:
    # Unset fields are left out: Firestore orders nulls first, which would top an ascending ranking list.
    doc = model.model_dump(mode="python", exclude_none=True)
    doc["created_at"] = now()
    doc["created_by"] = who.email
    doc["team"] = team
    return doc


def create(repo: Repository, kind: str, body: dict, who: Caller, declared: Iterable[teams.Team]) -> dict:
    """A new catalog entry of `kind`, owned by the team named in the body (or the caller's only one)."""
    model = parse(KINDS[kind], body)
    if model.id:
        raise FieldError.one("id", "is assigned by the server")
    team = teams.team_for_new(who, model.team, declared, teams.TRAINER, f"creating a {WHAT[kind]}")
    doc = _stored(model, who, team)
    if kind == "experiments":
        doc.update(_experiment_references(repo, model))
    return repo.create_catalog(kind, doc)


def _experiment_references(repo: Repository, experiment: Experiment) -> dict:
    """Check what an experiment points at, and keep the names for search and display."""
    errors, names = [], {}
    for field, kind in (("dataset_id", "datasets"), ("feature_config_id", "feature_configs"),
                        ("model_config_id", "model_configs")):
        target = repo.get_catalog(kind, getattr(experiment, field))
        if target is None:
            errors.append({"field": field, "message": f"no {kind[:-1].replace('_', ' ')} with id "
                                                      f"{getattr(experiment, field)!r}"})
        else:
            names[field.replace("_id", "_name")] = target["name"]
            if kind == "model_configs" and target["model_type"] != experiment.model_type:
                errors.append({"field": "model_type", "message": f"the model config is a {target['model_type']} "
                                                                  f"model, not {experiment.model_type}"})
    if errors:
        raise FieldError(errors)
    return names


def get(repo: Repository, kind: str, doc_id: str) -> dict:
    doc = repo.get_catalog(kind, doc_id)
    if doc is None:
        raise NotFound(f"{kind[:-1].replace('_', ' ')} {doc_id}")
    return doc


def list_all(repo: Repository, kind: str, limit: int = 50, model_type: Optional[str] = None) -> list[dict]:
    filters = {"model_type": model_type} if model_type else None
    return repo.list_catalog(kind, limit, filters)


def top_for_training(repo: Repository, model_type: str, limit: int = 5) -> dict:
    if model_type not in PRIMARY_METRIC:
        raise FieldError.one("model_type", "must be one of retrieval, ranking, multitask")
    if not 1 <= limit <= 50:
        raise FieldError.one("limit", "must be between 1 and 50")
    metric, descending = PRIMARY_METRIC[model_type]
    experiments = repo.top_experiments(model_type, metric, descending, limit)
    return {"model_type": model_type, "metric": metric, "direction": "desc" if descending else "asc",
            "experiments": experiments}


def search(repo: Repository, query: str, limit: int = 20) -> list[dict]:
    query = (query or "").strip()
    if not query:
        raise FieldError.one("q", "give a name, an experiment number such as 'Exp #65', or a config name")
    match = _EXP_NUMBER.match(query)
    if match:
        return repo.list_catalog("experiments", limit, {"number": int(match.group(1))})
    needle = query.lower()
    # Firestore has no substring search; the catalog of experiments is small enough to scan.
    found = []
    for exp in repo.list_catalog("experiments", 1000):
        haystack = " ".join(str(exp.get(k) or "") for k in (
            "name", "dataset_name", "feature_config_name", "model_config_name")).lower()
        if needle in haystack:
            found.append(exp)
            if len(found) >= limit:
                break
    return found
