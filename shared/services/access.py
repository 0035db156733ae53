"""Who may touch a stored resource. Every service that reads or changes a run, a schedule or a catalog
entry on a caller's behalf gets it through here, which checks the caller's role on the resource's team
(shared/domain/teams.require_on: 403 naming what is missing); lists ask `team_filter` which teams the
caller may see. The consumers act on the system's behalf and read the repository directly.

What each action needs (docs/security.md, "Teams and roles"):
    viewer    read a run (logs, history, artifacts, errors), a schedule, a catalog entry
    trainer   create, submit, cancel, retry, run now; create, pause, resume, trigger, cancel a schedule;
              create a catalog entry
    deployer  deploy, push anyway, a run whose deployment_config deploys after training (or batch_prediction_config)
    admin     delete a run, verify an experiment's metrics, move a resource to another team
"""
from __future__ import annotations

from typing import Iterable, Optional

from shared.domain import batch_predictions, data_access, runs, teams
from shared.domain.doc_ids import is_valid_id
from shared.domain.teams import Caller
from shared.errors import Conflict, FieldError, Forbidden, NotFound
from shared.services import run_writes

WHAT = {"datasets": "dataset", "feature_configs": "feature config", "model_configs": "model config",
        "experiments": "experiment"}


def run(repo, who: Caller, run_id: str, needed: str, action: str, deleted_ok: bool = False) -> dict:
    """A deleted run is gone (404) for everything but a delete's repeat and a restore."""
    doc = repo.get_run(run_id)
    if doc is not None and not deleted_ok and runs.is_deleted(doc):
        doc = None
    return _checked(doc, f"training run {run_id}", who, needed, action)


def schedule(repo, who: Caller, schedule_id: str, needed: str, action: str) -> dict:
    return _checked(repo.get_schedule(schedule_id), f"training schedule {schedule_id}", who, needed, action)


def catalog(repo, who: Caller, kind: str, doc_id: str, needed: str = teams.VIEWER,
            action: Optional[str] = None) -> dict:
    return _checked(repo.get_catalog(kind, doc_id), f"{WHAT[kind]} {doc_id}", who, needed,
                    action or f"reading a {WHAT[kind]}")


def _checked(doc: Optional[dict], what: str, who: Caller, needed: str, action: str) -> dict:
    """The document, if the caller holds `needed` on its team: 404 when it does not exist, else 403."""
    if doc is None:
        raise NotFound(what)
    teams.require_on(who, doc, needed, f"{action} ({what})")
    return doc


def team_filter(who: Caller) -> Optional[list[str]]:
    """The teams whose resources a list shows the caller: None for a platform admin (every team's, and
    those of no team); else the teams where they are at least viewer (possibly none)."""
    return None if who.platform_admin else who.teams_where(teams.VIEWER)


def declared_team(declared: Iterable[teams.Team], name: Optional[str]) -> Optional[teams.Team]:
    """The declaration of a resource's team, for what it owns (model names, endpoints). None for a
    resource of no team (only platform admins act on those: nothing more to limit). A team no longer
    declared owns nothing: refused."""
    if not name:
        return None
    team = teams.by_name(declared, name)
    if team is None:
        raise Forbidden(f"team {name!r} is no longer declared in this deployment (TRAINYARD_TEAMS); "
                        f"an admin must assign its resources to a declared team", team=name)
    return team


def check_model_name(team: Optional[teams.Team], name: str, field: str = "name") -> None:
    """A run's name is its registry model's display name (pipeline_compiler/registry.py registers a new
    version under the model of that name and moves its `default` alias): it must be one the team owns."""
    if team is not None and not teams.allows(team.model_names, name):
        raise FieldError.one(field, f"{name!r} is not a model name team {team.name!r} owns "
                                    f"(its model_names: {', '.join(team.model_names) or 'none'})")


def check_endpoint(team: Optional[teams.Team], endpoint: Optional[str], field: str) -> None:
    """An existing endpoint a run deploys to must be one its team owns, as an id or a full resource name;
    a full resource name matches only a full-name entry (or `*`), so another project's or region's
    endpoint is never taken for one of the team's ids. A new endpoint (made for the run) is the team's."""
    if team is None or not endpoint:
        return
    if not teams.allows(team.endpoints, endpoint):
        raise Forbidden(f"{field}: endpoint {endpoint!r} is not one team {team.name!r} owns "
                        f"(its endpoints: {', '.join(team.endpoints) or 'none'})", team=team.name)


def check_new_run(repo, who: Caller, declared: Iterable[teams.Team], doc: dict, prefix: str = "") -> None:
    """What a new run (or a schedule's template) may use, beyond the trainer role on its team: a model
    name its team owns; a deploy after training needs deployer and, to an existing endpoint, one the
    team owns; the catalog entries it is built from must be ones the caller may read."""
    team = declared_team(declared, doc.get("team"))
    check_model_name(team, doc["name"], f"{prefix}name")
    config = doc.get("deployment_config") or {}
    if config.get("action") in ("deploy_new", "deploy_existing"):
        teams.require_on(who, doc, teams.DEPLOYER, f"a run that deploys after training ({prefix}deployment_config)")
        check_endpoint(team, config.get("existing_endpoint_id"), f"{prefix}deployment_config.existing_endpoint_id")
    batch = doc.get("batch_prediction_config")
    if batch:  # as POST …/batch-predictions asks: deployer, outputs and users' file under the team's own
        field = f"{prefix}batch_prediction_config"
        teams.require_on(who, doc, teams.DEPLOYER, f"a run that writes batch predictions after training ({field})")
        batch_predictions.check_outputs(team, batch.get("gcs_output"), batch.get("bigquery_output"), f"{field}.")
        batch_predictions.check_population(team, batch.get("users"), f"{field}.users")
    used = [("datasets", doc.get("dataset_id")), ("feature_configs", doc.get("feature_config_id")),
            ("model_configs", doc.get("model_config_id")),
            ("experiments", (doc.get("base_experiment") or {}).get("id")),
            ("experiments", ((doc.get("training_params") or {}).get("warm_restart") or {}).get("experiment_id"))]
    for kind, doc_id in used:
        if doc_id:
            catalog(repo, who, kind, doc_id, teams.VIEWER, f"building a run from a {WHAT[kind]}")
    check_warm_source(repo, who, team, doc.get("warm_source"), prefix)


def check_warm_source(repo, who: Caller, team: Optional[teams.Team], source: Optional[dict], prefix: str = "") -> None:
    """The weights a run warm-starts from: a run the caller may read, and an experiment's SavedModel in the
    team's buckets like its data (shared/domain/data_access.py): an experiment's saved_model_uri is typed
    by whoever made it, so it could name another team's model. A run's model is under the platform's
    artifacts root, found from the run the caller may read; a champion is the run's own model name's."""
    if not source or source.get("source") == "champion":
        return
    field = f"{prefix}training_params.warm_restart"
    if source["source"] == "run":
        run(repo, who, source["source_id"], teams.VIEWER, f"warm-starting from a run ({field}.run_id)")
        return
    if team is None:  # no teams (a platform admin's run): nothing to confine to
        return
    try:
        uri = data_access.file_uri(source["uri"])
    except ValueError as exc:
        raise FieldError.one(f"{field}.experiment_id", f"the experiment's saved_model_uri: {exc}") from None
    inside = data_access.under_buckets(team.buckets, uri) if uri.startswith(data_access.GS) else \
        teams.ANYTHING in team.buckets
    if not inside:
        raise FieldError.one(f"{field}.experiment_id", f"experiment {source['source_id']}'s saved_model_uri {uri} "
                                                       f"is not under a bucket team {team.name!r} may read "
                                                       f"(its buckets: {', '.join(team.buckets) or 'none declared'})")


COLLECTIONS = ("training_runs", "training_schedules", *WHAT)


def assign_team(repo, who: Caller, declared: Iterable[teams.Team], kind: str, doc_id: str, team: str) -> dict:
    """Give a resource a team (POST /api/admin/team-assignments): admin on the team it leaves (a platform
    admin for one made before teams) and on the team it joins. A run or schedule may move between
    teams; a catalog entry only takes a team when it has none (API instances cache catalog entries,
    and a stale copy must never admit more than the document does)."""
    if kind not in COLLECTIONS:
        raise FieldError.one("kind", f"must be one of {', '.join(COLLECTIONS)}")
    if not isinstance(doc_id, str) or not is_valid_id(doc_id):
        raise FieldError.one("id", "must be the id of a document of that kind")
    if not isinstance(team, str) or teams.by_name(declared, team) is None:
        raise FieldError.one("team", f"{team!r} is not a team of this deployment "
                                     f"(teams: {', '.join(t.name for t in declared) or 'none declared'})")
    what = {"training_runs": "run", "training_schedules": "schedule"}.get(kind) or WHAT[kind]
    found = {"training_runs": repo.get_run, "training_schedules": repo.get_schedule}.get(
        kind, lambda i: repo.get_catalog(kind, i))(doc_id)
    doc = _checked(found, f"{what} {doc_id}", who, teams.ADMIN, f"moving a {what} out of its team")
    teams.require(who, team, teams.ADMIN, f"moving a {what} into team {team!r}")
    if doc.get("team") == team:
        return doc
    if kind == "training_runs":
        return run_writes.write(repo, doc_id, lambda d: {**d, "team": team}) or repo.get_run(doc_id)
    if kind == "training_schedules":  # its next runs follow it; those it made stay where they are
        return repo.mutate_schedule(doc_id, lambda d: {**d, "team": team}) or repo.get_schedule(doc_id)
    if doc.get("team"):
        raise Conflict(f"{what} {doc_id} belongs to team {doc['team']!r}; a catalog entry keeps its team "
                       f"(create it again in {team!r})")
    return repo.set_catalog_team(kind, doc_id, team)
