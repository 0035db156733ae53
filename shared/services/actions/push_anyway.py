"""Register a not-blessed model anyway: the API records `pushing` and queues the `push_anyway` command; the
consumer registers the model with the Pusher's own code (the registrar the entry point hands in)."""
from __future__ import annotations

from typing import Iterable, Optional

from shared import log
from shared.contract import results
from shared.contract.messages import PUSH_ANYWAY, RunCommand
from shared.domain import runs, teams
from shared.domain.run_config import RunSpec
from shared.domain.teams import Caller
from shared.errors import PermanentError
from shared.services import access, model_cards, ports, run_writes
from shared.services.actions import Consumer, outcome, owned, publish_command, run_for


def request(repo, effects: ports.Effects, run_id: str, who: Caller, declared: Iterable[teams.Team]) -> dict:
    """Register a not-blessed model anyway: deployer on its team, under a model name the team owns."""
    doc = access.run(repo, who, run_id, teams.DEPLOYER, "pushing a run anyway")
    access.check_model_name(access.declared_team(declared, doc.get("team")), doc["name"])
    identity = who.email

    def decide(doc):
        return runs.request_push_anyway(doc, identity, runs.now())

    run, changed = run_writes.write_or_read(repo, run_id, decide)
    warning = None
    if run["push_anyway"]["status"] == runs.PUSHING:
        warning = publish_command(effects.publisher, {"command": PUSH_ANYWAY, "run_id": run_id})
    message = "registering the model anyway" if changed else f"already {run['push_anyway']['status']}"
    return {**outcome(run, changed, message), "warnings": [warning] if warning else []}


def execute(command: RunCommand, consumer: Consumer) -> str:
    run = run_for(command, consumer)
    if run is None or run["status"] != runs.NOT_BLESSED or (run.get("push_anyway") or {}).get("status") != runs.PUSHING:
        return "skipped"
    repo, store, serving = consumer.repo, consumer.store, consumer.serving

    def update(changes: dict, top: Optional[dict] = None):
        return run_writes.write(repo, run["id"], lambda doc: runs.record_push(doc, changes, top))

    base = run.get("gcs_artifacts_path") or ""
    try:
        owned(consumer.declared, run, lambda team: access.check_model_name(team, run["name"]))
        text = store.read_text(results.join(base, results.CONFIG_FILE)) if base else None
        if not text:
            raise PermanentError(f"the run has no {results.CONFIG_FILE} under {base!r}", stage="Push")
        spec = RunSpec.model_validate_json(text)
        entry = serving.registrar.register(spec, results.join(base, results.SAVED_MODEL_DIR))
    except PermanentError as exc:
        update({"status": runs.PUSH_FAILED, "error": str(exc)})
        return "failed"
    entry = entry.model_copy(update={"pushed_anyway": True})
    store.write_text(results.join(base, results.REGISTRY_FILE), entry.model_dump_json(indent=2))
    model_cards.write_card(store, spec, entry, serving_image=serving.registrar.serving_image, artifacts_uri=base)
    update({"status": runs.PUSHED, "pushed_at": runs.now(), "model_resource_name": entry.model_resource_name,
            "model_version_id": entry.model_version_id},
           {"pushed_anyway": True, "vertex_model_name": entry.model_display_name,
            "vertex_model_resource_name": entry.model_resource_name, "vertex_model_version": entry.model_version_id})
    log.info("model registered anyway", run_id=run["id"], model=entry.model_resource_name)
    return "pushed"
