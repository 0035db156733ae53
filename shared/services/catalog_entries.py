"""Catalog services: datasets, feature configs, model configs and experiments (quick tests)."""
from __future__ import annotations

import re
from typing import Iterable, Optional

from pydantic import ValidationError

from shared.domain import data_access, model_kinds, teams
from shared.domain.teams import Caller
from shared.domain.catalog import Dataset, Experiment, FeatureConfig, ModelConfig
from shared.errors import FieldError
from shared.adapters.repository import TEAMS_KEY, Repository
from shared.services import access
from shared.domain.runs import now
from shared.validation import parse

KINDS = {"datasets": Dataset, "feature_configs": FeatureConfig, "model_configs": ModelConfig,
         "experiments": Experiment}
# The primary metric that ranks experiments for promotion, and its direction (descending unless lower is better).
PRIMARY_METRIC = {k.name: (k.primary_metric, not model_kinds.lower_is_better(k.primary_metric))
                  for k in model_kinds.KINDS}
POSTED = "posted"  # an experiment's metrics as its creator posted them (the only source today)
_EXP_NUMBER = re.compile(r"^\s*(?:exp(?:eriment)?\s*)?#?\s*(\d+)\s*$", re.IGNORECASE)


def _stored(model, who: Caller, team: str) -> dict:
    # Unset fields are left out: Firestore orders nulls first, which would top an ascending ranking list.
    doc = model.model_dump(mode="python", exclude_none=True)
    doc["created_at"] = now()
    doc["created_by"] = who.email
    doc["team"] = team
    return doc


def create(repo: Repository, kind: str, body: dict, who: Caller, declared: Iterable[teams.Team]) -> dict:
    """A new catalog entry of `kind`, owned by the team named in the body (or the caller's only one)."""
    # Where its metrics come from, set here and never by the client: the promotion list shows it.
    return repo.create_catalog(kind, prepare(repo, kind, body, who, declared, {"kind": POSTED, "by": who.email}))


def prepare(repo: Repository, kind: str, body: dict, who: Caller, declared: Iterable[teams.Team], source: dict,
            prefix: str = "") -> dict:
    """A catalog entry's document as it would be stored: validated, the caller's role on its team checked,
    an experiment's references checked and `source` (where its metrics come from) set. Field errors are
    named under `prefix` (an import's "item")."""
    model = parse(KINDS[kind], body, prefix)
    if model.id:
        raise FieldError.one(f"{prefix}.id" if prefix else "id", "is assigned by the server")
    team = teams.team_for_new(who, model.team, declared, teams.TRAINER, f"creating a {access.WHAT[kind]}")
    if kind == "datasets" and team is not None:  # no team: a platform admin's, in a deployment with none
        data_access.require_source(model.source, teams.by_name(declared, team), who)
    doc = _stored(model, who, team)
    if kind == "experiments":
        doc.update(_experiment_references(repo, model, who))
        doc["source"] = source
    return doc


def require_usable_dataset(repo: Repository, dataset_id: str, team: Optional[str], declared: Iterable[teams.Team],
                           admins, field: str = "dataset_id") -> None:
    """A run of `team` may read the dataset's data (shared/domain/data_access.py): else a 400 naming `field`
    and what the team may use. A dataset stored before its rules existed is checked as it is now."""
    doc = repo.get_catalog("datasets", dataset_id)
    if doc is None:
        raise FieldError.one(field, f"no dataset with id {dataset_id!r}")
    try:
        dataset = Dataset.model_validate({k: v for k, v in doc.items() if k in Dataset.model_fields})
    except ValidationError as exc:
        raise FieldError.one(field, f"the dataset {doc.get('name')!r} is no longer valid: {exc}") from None
    problem = data_access.run_data_problem(dataset.source, team, declared, doc.get("created_by"), admins)
    if problem:
        raise FieldError.one(field, f"the dataset {doc.get('name')!r} reads {problem}")


def _experiment_references(repo: Repository, experiment: Experiment, who: Caller) -> dict:
    """Check what an experiment points at (entries the caller may read), and keep the names for search
    and display."""
    errors, names = [], {}
    for field, kind in (("dataset_id", "datasets"), ("feature_config_id", "feature_configs"),
                        ("model_config_id", "model_configs")):
        target = repo.get_catalog(kind, getattr(experiment, field))
        if target is None:
            errors.append({"field": field, "message": f"no {kind[:-1].replace('_', ' ')} with id "
                                                      f"{getattr(experiment, field)!r}"})
        else:
            teams.require_on(who, target, teams.VIEWER, f"an experiment on a {access.WHAT[kind]} ({field})")
            names[field.replace("_id", "_name")] = target["name"]
            if kind == "model_configs" and target["model_type"] != experiment.model_type:
                errors.append({"field": "model_type", "message": f"the model config is a {target['model_type']} "
                                                                  f"model, not {experiment.model_type}"})
    if errors:
        raise FieldError(errors)
    return names


def get(repo: Repository, kind: str, doc_id: str, who: Caller) -> dict:
    return access.catalog(repo, who, kind, doc_id)


def _visible(repo: Repository, kind: str, who: Caller, limit: int, filters: dict) -> list[dict]:
    shown = access.team_filter(who)
    if shown is not None:
        filters = {**filters, TEAMS_KEY: shown}
    return repo.list_catalog(kind, limit, filters or None)


def top_for_training(repo: Repository, model_type: str, who: Caller, limit: int = 5) -> dict:
    """The best experiments of the teams the caller may view (another team's, whatever its posted
    metrics, never reaches this list), each with its `source` (who posted its metrics)."""
    if model_type not in PRIMARY_METRIC:
        raise FieldError.one("model_type", model_kinds.ONE_OF)
    if not 1 <= limit <= 50:
        raise FieldError.one("limit", "must be between 1 and 50")
    metric, descending = PRIMARY_METRIC[model_type]
    experiments = repo.top_experiments(model_type, metric, descending, limit, access.team_filter(who))
    return {"model_type": model_type, "metric": metric, "direction": "desc" if descending else "asc",
            "experiments": experiments}


def search(repo: Repository, query: str, who: Caller, limit: int = 20) -> list[dict]:
    query = (query or "").strip()
    if not query:
        raise FieldError.one("q", "give a name, an experiment number such as 'Exp #65', or a config name")
    match = _EXP_NUMBER.match(query)
    if match:
        return _visible(repo, "experiments", who, limit, {"number": int(match.group(1))})
    needle = query.lower()
    # Firestore has no substring search; the catalog of experiments is small enough to scan.
    found = []
    for exp in _visible(repo, "experiments", who, 1000, {}):
        haystack = " ".join(str(exp.get(k) or "") for k in (
            "name", "dataset_name", "feature_config_name", "model_config_name")).lower()
        if needle in haystack:
            found.append(exp)
            if len(found) >= limit:
                break
    return found
