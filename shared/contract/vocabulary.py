"""The words a client needs to show runs, served at `GET /api/vocabulary` and built here from the domain's
own sets, so the dashboard (and any other client) never restates them:

- `statuses`: every run status in lifecycle order, and the groups the rules use (active, terminal, …);
- `stages`: the pipeline's stages in order, the node each comes from and its share of the progress bar;
  `stage_statuses`: what a stage can be;
- `model_types`: each kind of shared/domain/model_kinds.py: what it retrieves or ranks, its tasks and
  towers, its primary metric (ranks experiments; the gate when no threshold names one) and the metrics a
  blessing threshold may use;
- `metrics`: each metric with its direction;
- `training`: the training parameters a new run gets when it names none (`defaults`, TrainingParams()),
  each LR schedule's own defaults, and the rule for reduce-on-plateau's min_lr floor, which follows
  the learning rate (`min_lr`: `default` when it is below the rate, else `share_of_rate` of the rate);
- `gate`: the blessing threshold a run gets when it names none, on its kind's primary metric: a
  higher-is-better metric at least `default_min_value`; a lower-is-better one at most `derived_max_slack`
  times the base experiment's;
- `gpu_types`: each accelerator with the counts a machine holds and its memory, and the default GPU request;
- `failure_kinds`: the texts that make a failed run's root cause out of memory (shared/domain/failure_kinds.py);
- `champion_gate`, `canary`, `max_fallbacks`: where the retraining loop's settings start when a run names
  none (evaluator_config's champion gate, a staged deploy's limits that have a default) and how many GPU
  fallback shapes a run may list;
- `roles`: the team roles, weakest first (each may do what those before it may);
- `actions`: what a run offers in which status — `statuses` where the API accepts it, `requires` run
  fields that must be set, `unless` run fields that must be unset — and the route that carries it out.

Presentation (words, icons, colours) stays with the client, keyed by these values: a client shows a
value it does not know in a neutral way rather than failing.
"""
from __future__ import annotations

from typing import get_args

from shared.domain import canary, failure_kinds, gpu_machines, model_kinds, run_config, runs, teams
from shared.contract.nodes import NODE_OF_STAGE, STAGES

_RUN = "/api/training-runs/{run_id}"
_REGISTERED = "vertex_model_resource_name"  # a run whose model is in the Model Registry

# Each action: the statuses it is offered in (the same sets the services check), and its route.
# `submit` is offered for drafts; the API also accepts it for a pending run, to queue it again.
ACTIONS: tuple[dict, ...] = (
    {"name": "submit", "statuses": (runs.DRAFT,), "method": "POST", "path": f"{_RUN}/submit"},
    {"name": "run-now", "statuses": (runs.SCHEDULED,), "method": "POST", "path": f"{_RUN}/run-now"},
    # a team admin's decision on a run above the team's per-run cap (shared/services/spending.py)
    {"name": "approve", "statuses": (runs.AWAITING_APPROVAL,), "method": "POST", "path": f"{_RUN}/approve"},
    {"name": "reject", "statuses": (runs.AWAITING_APPROVAL,), "method": "POST", "path": f"{_RUN}/reject"},
    {"name": "cancel", "statuses": runs.CANCELLABLE, "method": "POST", "path": f"{_RUN}/cancel"},
    {"name": "retry", "statuses": runs.RETRYABLE, "method": "POST", "path": f"{_RUN}/retry"},
    {"name": "deploy", "statuses": runs.DEPLOYABLE, "requires": (_REGISTERED,), "method": "POST",
     "path": f"{_RUN}/deploy"},
    {"name": "push-anyway", "statuses": (runs.NOT_BLESSED,), "unless": (_REGISTERED,), "method": "POST",
     "path": f"{_RUN}/push-anyway"},
    {"name": "delete", "statuses": runs.DELETABLE, "method": "DELETE", "path": _RUN},
)

STAGE_STATUSES = (runs.STAGE_PENDING, runs.STAGE_RUNNING, runs.STAGE_COMPLETED, runs.STAGE_CACHED,
                  runs.STAGE_FAILED, runs.STAGE_CANCELLED, runs.STAGE_SKIPPED)


def _metrics() -> list[dict]:
    names = dict.fromkeys(model_kinds.RETRIEVAL_METRICS + model_kinds.RANKING_METRICS + run_config.TRAINING_METRICS)
    return [{"name": name, "lower_is_better": model_kinds.lower_is_better(name) or name in run_config.TRAINING_METRICS}
            for name in names]


def _model_types() -> list[dict]:
    return [{"name": k.name, "summary": k.summary, "retrieves": k.retrieves, "ranks": k.ranks, "tasks": list(k.tasks),
             "towers": list(k.towers), "primary_metric": k.primary_metric, "gate_metrics": list(k.gate_metrics)}
            for k in model_kinds.KINDS]


def _training() -> dict:
    """TrainingParams' defaults as the API fills them in, so a client's form starts where the server would."""
    schedules = get_args(get_args(run_config.LRSchedule)[0])
    return {
        "defaults": run_config.TrainingParams().model_dump(mode="json"),
        "lr_schedules": {s.model_fields["type"].default: s().model_dump(mode="json", exclude={"type"})
                         for s in schedules},
        "min_lr": {"default": run_config.DEFAULT_MIN_LR, "share_of_rate": run_config.MIN_LR_SHARE},
    }


def vocabulary() -> dict:
    """The vocabulary as JSON-ready data (lists, in the domain's order)."""
    default_gpu = run_config.GpuConfig()
    return {
        "statuses": list(runs.STATUSES),
        "status_groups": {"active": list(runs.ACTIVE), "terminal": [s for s in runs.STATUSES if s in runs.TERMINAL],
                          "cancellable": list(runs.CANCELLABLE), "retryable": list(runs.RETRYABLE),
                          "deletable": list(runs.DELETABLE)},
        "stages": [{"name": stage, "node": NODE_OF_STAGE.get(stage), "weight": runs.STAGE_WEIGHTS[stage]}
                   for stage in STAGES],
        "stage_statuses": list(STAGE_STATUSES),
        "model_types": _model_types(),
        "metrics": _metrics(),
        "training": _training(),
        "gate": {"default_min_value": run_config.DEFAULT_MIN_VALUE, "derived_max_slack": run_config.DERIVED_MAX_SLACK},
        # per GPU count: the machine a run gets by default and every machine Vertex accepts with it
        "gpu_types": [{"name": gpu, "counts": gpu_machines.counts(gpu), "memory_gb": gpu_machines.MEMORY_GB[gpu],
                       "machines": {str(n): {"default": run_config.GPU_MACHINES[gpu][n],
                                             "admitted": gpu_machines.admitted(gpu, n)} for n in gpu_machines.counts(gpu)}}
                      for gpu in get_args(run_config.GpuType)],
        "default_gpu": {"gpu_type": default_gpu.gpu_type, "gpu_count": default_gpu.gpu_count,
                        "machine_count": default_gpu.machine_count, "preemptible": default_gpu.preemptible,
                        "region": default_gpu.region, "fallbacks": default_gpu.fallbacks},
        "max_machines": run_config.MAX_MACHINES,
        "failure_kinds": failure_kinds.vocabulary(),  # what a failed run's root cause says (the retry form's preset)
        "champion_gate": {name: run_config.EvaluatorConfig.model_fields[name].default
                          for name in ("compare_to_champion", "champion_tolerance")},
        "canary": {name: field.default for name, field in canary.CanaryConfig.model_fields.items()
                   if not field.is_required()},
        "max_fallbacks": run_config.MAX_FALLBACKS,
        "roles": list(teams.ROLES),
        "actions": [{"name": a["name"], "statuses": list(a["statuses"]), "requires": list(a.get("requires", ())),
                     "unless": list(a.get("unless", ())), "method": a["method"], "path": a["path"]}
                    for a in ACTIONS],
    }


if __name__ == "__main__":  # the dashboard's test copy: python -m shared.contract.vocabulary > dashboard/src/testdata/vocabulary.json
    import json

    print(json.dumps(vocabulary(), indent=1))
