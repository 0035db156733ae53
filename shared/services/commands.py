"""The run-commands consumer: each command kind is carried out by its action (shared/services/actions/),
which re-reads the run and does nothing unless the run still asks for it, so redeliveries and stale
commands are harmless."""
from __future__ import annotations

from typing import Callable, Iterable

from shared.adapters.pipelines import PipelineBackend
from shared.contract.messages import (BATCH_PREDICT, CANARY_CHECK, CANCEL, DEPLOY, ENDPOINT_TRAFFIC, GPU_FALLBACK,
                                     NOTIFY, PUSH_ANYWAY, ROLLBACK, UNDEPLOY, RunCommand)
from shared.domain import teams
from shared.services import ports
from shared.services.actions import (Consumer, batch_predict, canary_watch, cancel, deploy, endpoint_traffic,
                                     gpu_fallback, notify, push_anyway, rollback, undeploy)

EXECUTE: dict[str, Callable[[RunCommand, Consumer], str]] = {
    CANCEL: cancel.execute,  # stop the pipeline job and the Trainer's own jobs
    DEPLOY: deploy.execute,  # deploy a registered model to an endpoint
    PUSH_ANYWAY: push_anyway.execute,  # register a not-blessed model anyway
    NOTIFY: notify.execute,  # webhooks and topics, at most once
    CANARY_CHECK: canary_watch.execute,  # judge a canary's serving so far: wait, promote or roll back
    ROLLBACK: rollback.execute,  # send an endpoint's traffic back to the split before the run's deploy
    BATCH_PREDICT: batch_predict.execute,  # top-K for a list of users, to GCS and/or BigQuery
    GPU_FALLBACK: gpu_fallback.execute,  # the next GPU shape of a run Vertex could not give its GPUs
    ENDPOINT_TRAFFIC: endpoint_traffic.execute,  # an endpoint's split set by hand
    UNDEPLOY: undeploy.execute,  # a model taken off an endpoint by hand
}


def handle_command(command: RunCommand, repo, pipelines: PipelineBackend, store, serving, notifier=None, *,
                   effects: ports.Effects, declared: Iterable[teams.Team]) -> str:
    """`declared`: the deployment's teams, whose model names and endpoints a deploy or a push-anyway is
    checked against again here (the API checked them when it was asked; this catches a command that
    did not come through it, or a team whose declaration changed since)."""
    consumer = Consumer(repo=repo, pipelines=pipelines, store=store, serving=serving, notifier=notifier, effects=effects,
                        declared=tuple(declared))
    return EXECUTE[command.command](command, consumer)
