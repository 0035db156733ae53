"""Change an endpoint's traffic split by hand (`POST /api/endpoints/{id}/traffic`, deployer on the team of a run
deployed there): a share for each of its deployed models, together 100 (a model left out gets 0). The request
checks the split against the models the endpoint has now and queues the change on a run deployed there
(shared/services/endpoint_views.acting_run); a model whose share changes needs deployer on its own run's team
(endpoint_views.require_models_of: a shared endpoint's other team keeps its traffic). The run-commands consumer
sets it (Vertex UpdateEndpoint, the local endpoint file) and records it in that run's endpoint history, once.
The same split twice changes nothing."""
from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from shared.contract.messages import ENDPOINT_TRAFFIC, RunCommand
from shared.domain.teams import Caller
from shared.errors import FieldError
from shared.services import endpoint_views
from shared.services import ports
from shared.services.actions import Consumer, carry_endpoint_change, queue_endpoint_change
from shared.validation import parse

Percent = Annotated[StrictInt, Field(ge=0, le=100)]


class TrafficBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    traffic_split: dict[str, Percent] = Field(
        description="deployed model id → whole percent of the endpoint's traffic, together 100; a deployed model "
                    "left out gets 0 (it stays deployed)")
    reason: Optional[str] = Field(None, min_length=1, max_length=500, description="why, for the endpoint history")


def wanted_split(asked: dict, deployed: list[str], endpoint_id: str) -> dict:
    """Every deployed model's share as asked: 400 naming the field when a model is not on the endpoint or the
    shares do not add up to 100."""
    unknown = sorted(set(asked) - set(deployed))
    if unknown:
        raise FieldError([{"field": f"traffic_split.{k}", "message": f"is not a model deployed on endpoint "
                                                                     f"{endpoint_id} (its models: {', '.join(deployed)})"}
                          for k in unknown])
    total = sum(asked.values())
    if total != 100:
        raise FieldError.one("traffic_split", f"must add up to 100 (it adds up to {total})")
    return {k: int(asked.get(k, 0)) for k in deployed}


def request(repo, effects: ports.Effects, endpoints, endpoint_id: str, who: Caller, body: Any) -> dict:
    asked = parse(TrafficBody, body if body is not None else {})
    view, on_it = endpoint_views.seen(repo, endpoints, endpoint_id, who)
    run = endpoint_views.acting_run(who, on_it, f"changing the traffic of endpoint {view.id}")
    split = wanted_split(asked.traffic_split, [m.id for m in view.deployed_models], view.id)
    endpoint_views.require_models_of(who, on_it, [k for k, v in split.items() if v != view.traffic_split.get(k, 0)],
                                     f"changing the traffic of endpoint {view.id}")
    if split == view.traffic_split:
        return {"changed": False, "message": f"endpoint {view.id} already routes traffic so", "run_id": run["id"],
                "warnings": []}
    return queue_endpoint_change(effects, run, {
        "command": ENDPOINT_TRAFFIC, "endpoint": view.resource_name, "traffic_split": split,
        "requested_by": who.email, "reason": asked.reason or f"traffic changed by hand by {who.email}"},
        f"changing the traffic of endpoint {view.id}")


def execute(command: RunCommand, consumer: Consumer) -> str:
    def change(endpoints, before: dict) -> dict:  # a model undeployed meanwhile refuses the split (FieldError)
        wanted = wanted_split(command.traffic_split or {}, list(before), command.endpoint)
        return endpoints.set_traffic(command.endpoint, wanted) if before != wanted else before

    return carry_endpoint_change(command, consumer, "traffic_changed", None, change)
