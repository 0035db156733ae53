"""A staged (canary) deploy and the traffic changes around it, as pure decisions.

A canary deploy gives the new deployed model `percent` of an existing endpoint's traffic for
`watch_minutes`; while it is watched, each check (the run-commands `canary` command, sent by the
reconciler every pass) reads the new model's serving errors and latency since the watch began and
`judge`s them against the run's limits:

- a breach (error rate above `max_error_rate` over at least `min_requests` requests, or p95 latency
  above `max_p95_latency_ms`) rolls traffic back to the split the endpoint had before the deploy;
- a clean watch, once `watch_until` passed, promotes the new model to 100 %;
- otherwise it waits for the next check.

The watch is judged on what was served, so a canary that served nothing in its watch is promoted with
a reason saying so (the run's limits were not breached); `min_requests` keeps one error out of two
requests from rolling a model back before a rate means anything.

The traffic splits (`promoted`, `restored`) map deployed-model ids to whole percents summing to 100,
as Vertex requires (aiplatform_v1 Endpoint.traffic_split: "must add up to 100").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import Conflict

WATCHING, PROMOTED, BREACHED, STOPPED = "watching", "promoted", "breached", "stopped"
WAIT, PROMOTE, ROLLBACK = "wait", "promote", "rollback"


class CanaryConfig(BaseModel):
    """`canary` on POST …/deploy and in deployment_config."""

    model_config = ConfigDict(extra="forbid")
    percent: int = Field(ge=1, le=99, description="share of the endpoint's traffic for the new model while watched")
    watch_minutes: int = Field(ge=1, le=7 * 24 * 60, description="how long the new model is watched before it "
                                                                 "takes all traffic")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="errors / requests of the new model above which "
                                                                "traffic is rolled back")
    max_p95_latency_ms: Optional[float] = Field(None, gt=0, description="p95 prediction latency of the new model "
                                                                        "above which traffic is rolled back")
    min_requests: int = Field(20, ge=1, le=1_000_000, description="the error rate is judged over at least this "
                                                                  "many requests (or whatever the whole watch saw)")


@dataclass(frozen=True)
class Observation:
    """What a deployed model served since a time: the serving metrics adapter's answer."""

    requests: int
    errors: int
    p95_latency_ms: Optional[float]

    @property
    def error_rate(self) -> Optional[float]:
        return self.errors / self.requests if self.requests else None

    def as_dict(self) -> dict:
        return {"requests": self.requests, "errors": self.errors, "error_rate": self.error_rate,
                "p95_latency_ms": self.p95_latency_ms}


@dataclass(frozen=True)
class Verdict:
    action: str  # WAIT, PROMOTE or ROLLBACK
    reason: Optional[str] = None


def start(config: dict, at: datetime) -> dict:
    """The canary once its model serves: watched from `at` for its minutes."""
    return {**config, "status": WATCHING, "watch_started_at": at,
            "watch_until": at + timedelta(minutes=int(config["watch_minutes"]))}


def judge(canary: dict, seen: Observation, at: datetime) -> Verdict:
    """Breach → ROLLBACK; a clean watch that is over → PROMOTE; else WAIT."""
    over = at >= canary["watch_until"]
    limit = canary.get("max_p95_latency_ms")
    if limit is not None and seen.p95_latency_ms is not None and seen.p95_latency_ms > limit:
        return Verdict(ROLLBACK, f"p95 latency {seen.p95_latency_ms:.0f} ms exceeds the limit of {limit:g} ms "
                                 f"({seen.requests} requests)")
    rate = seen.error_rate
    if rate is not None and rate > canary["max_error_rate"] and (seen.requests >= canary["min_requests"] or over):
        return Verdict(ROLLBACK, f"error rate {rate:.1%} ({seen.errors} of {seen.requests} requests) exceeds the "
                                 f"limit of {canary['max_error_rate']:.1%}")
    if not over:
        return Verdict(WAIT)
    if not seen.requests:
        return Verdict(PROMOTE, f"the {canary['watch_minutes']}-minute watch is over; the new model served no "
                                "requests, so no limit was breached")
    return Verdict(PROMOTE, f"the {canary['watch_minutes']}-minute watch is over with no breach: "
                            f"{seen.errors} errors in {seen.requests} requests"
                            + (f", p95 {seen.p95_latency_ms:.0f} ms" if seen.p95_latency_ms is not None else ""))


def promoted(current: dict, new_id: str) -> dict:
    """The new model takes all the traffic; the others stay deployed at 0 (a later rollback restores them)."""
    return {**{k: 0 for k in current}, new_id: 100}


def restored(previous: dict, current: dict, new_id: str) -> dict:
    """Undo one deploy: its model goes to 0; a model deployed since (on the endpoint now, not before; another
    team's, perhaps) keeps its share; the models there before share the rest as they did before the deploy,
    over those still on the endpoint. Falls back to the other models' current shares; Conflict when no other
    model is left to take the traffic."""
    since = {k: v for k, v in current.items() if k not in (previous or {}) and k != new_id and v > 0}
    base = {k: v for k, v in (previous or {}).items() if k in current and k != new_id and v > 0}
    if previous and since and base:
        kept = sum(since.values())
        if kept < 100:  # the rest, whole percents; the models deployed since exactly as they are
            return {**{k: 0 for k in current}, **since, **whole_percents(base, 100 - kept), new_id: 0}
        base = {}
    base = base or {k: v for k, v in current.items() if k != new_id and v > 0}
    if not base:
        raise Conflict("no other model on the endpoint had traffic before this one: there is nothing to roll "
                       "back to (undeploy it, or deploy another model)")
    return {**{k: 0 for k in current}, **whole_percents(base), new_id: 0}


def whole_percents(weights: dict, total: int = 100) -> dict:
    """Scale to whole percents summing to exactly `total` (largest remainder)."""
    weight = sum(weights.values())
    exact = {k: total * v / weight for k, v in weights.items()}
    split = {k: int(v) for k, v in exact.items()}
    for key in sorted(exact, key=lambda k: exact[k] - split[k], reverse=True)[:total - sum(split.values())]:
        split[key] += 1
    return split


def history_entry(at: datetime, by: str, action: str, endpoint: Optional[str], deployed_model_id: Optional[str],
                  before: Optional[dict], after: Optional[dict], reason: Optional[str]) -> dict:
    """One traffic change of the run's endpoint, as the run view and the CLI list it."""
    return {"at": at, "by": by, "action": action, "endpoint": endpoint, "deployed_model_id": deployed_model_id,
            "from": dict(before or {}), "to": dict(after or {}), "reason": reason}
