"""Take a model off an endpoint by hand (`POST /api/endpoints/{id}/undeploy`, deployer on the team of the model's
run, or of a run deployed there for a model of no run). The models left keep serving: the undeployed model's
share goes to those that had traffic, in their proportions. Undeploying the last model that holds traffic
leaves the endpoint serving nothing, so it is refused unless the request says `force: true`. The
run-commands consumer undeploys (Vertex UndeployModel with the split that takes the model's traffic away; the
local endpoint file) and records it in the run's endpoint history; a model that is its run's own deployment
marks that deployment `undeployed`. A model already gone is done."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from shared.contract.messages import UNDEPLOY, RunCommand
from shared.domain.canary import whole_percents
from shared.domain.teams import Caller
from shared.errors import Conflict, FieldError
from shared.services import endpoint_views
from shared.services import ports
from shared.services.actions import Consumer, carry_endpoint_change, queue_endpoint_change
from shared.validation import parse


class UndeployBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deployed_model_id: str = Field(min_length=1, max_length=200, description="the deployed model to take off")
    force: bool = Field(False, description="undeploy even the last model that holds traffic (the endpoint then "
                                           "serves nothing)")
    reason: Optional[str] = Field(None, min_length=1, max_length=500, description="why, for the endpoint history")


def split_after(split: dict, model_id: str, force: bool) -> dict:
    """The split once `model_id` is gone: its share to the models that had traffic, in their proportions; empty
    (serving nothing) only with `force` when it was the last model holding traffic."""
    others = {k: v for k, v in split.items() if k != model_id and v > 0}
    if not split.get(model_id):
        return others
    if others:
        return whole_percents(others)
    if not force:
        raise Conflict(f"deployed model {model_id} holds all the endpoint's traffic: undeploying it leaves the "
                       "endpoint serving nothing. Move its traffic to another model first, or send force: true")
    return {}


def request(repo, effects: ports.Effects, endpoints, endpoint_id: str, who: Caller, body: Any) -> dict:
    asked = parse(UndeployBody, body if body is not None else {})
    view, on_it = endpoint_views.seen(repo, endpoints, endpoint_id, who)
    model = asked.deployed_model_id
    run = endpoint_views.acting_run(who, on_it, f"undeploying a model from endpoint {view.id}", model)
    if model not in view.traffic_split:
        if any(e["action"] == "undeployed" and e.get("deployed_model_id") == model
               for e in endpoint_views.history(view, on_it)):
            return {"changed": False, "message": f"{model} is undeployed from endpoint {view.id} already",
                    "run_id": run["id"], "warnings": []}
        raise FieldError.one("deployed_model_id", f"is not a model deployed on endpoint {view.id} "
                                                  f"(its models: {', '.join(view.traffic_split) or 'none'})")
    split_after(view.traffic_split, model, asked.force)  # refused now, not after the command is queued
    return queue_endpoint_change(effects, run, {
        "command": UNDEPLOY, "endpoint": view.resource_name, "deployed_model_id": model, "force": asked.force,
        "requested_by": who.email, "reason": asked.reason or f"undeployed by hand by {who.email}"},
        f"undeploying {model} from endpoint {view.id}")


def execute(command: RunCommand, consumer: Consumer) -> str:
    model = command.deployed_model_id

    def change(endpoints, before: dict) -> dict:  # the split as it is now decides where the model's share goes
        return endpoints.undeploy(command.endpoint, model, split_after(before, model, command.force)) \
            if model in before else before

    return carry_endpoint_change(command, consumer, "undeployed", model, change)
