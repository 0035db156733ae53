"""Follow a run to its end: a progress bar with the current stage, epoch and latest metric, then, for a run
that deploys after training (deployment_config deploy_new / deploy_existing), its deployment to the end."""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional

TERMINAL = {"completed", "failed", "cancelled", "not_blessed"}
EXIT_CODES = {"completed": 0, "not_blessed": 2, "failed": 1, "cancelled": 1}
DEPLOY_FAILED_EXIT = 3  # the run completed but its deployment failed
AUTOMATIC_ACTIONS = ("deploy_new", "deploy_existing")
DEPLOY_REQUEST_GRACE_S = 120.0  # how long a completed run may take to show the deployment it asks for


def progress_line(run: dict, width: int = 30) -> str:
    percent = int(run.get("progress_percent") or 0)
    filled = width * percent // 100
    bar = "#" * filled + "-" * (width - filled)
    parts = [f"[{bar}] {percent:3d}%", f"{run.get('status', '?'):<11}"]
    if run.get("current_stage"):
        parts.append(f"stage {run['current_stage']}")
    if run.get("current_epoch"):
        parts.append(f"epoch {run['current_epoch']}/{run.get('total_epochs') or '?'}")
    live = run.get("live_metrics") or {}
    for key in ("loss", "val_loss", "recall_at_100", "rmse"):
        if live.get(key) is not None:
            parts.append(f"{key} {live[key]:.4f}")
    return "  ".join(parts)


def _target(deployment: dict) -> str:
    return deployment.get("endpoint_resource_name") or deployment.get("endpoint_id") or \
        f"a new endpoint {deployment.get('endpoint_name')!r}"


def deployment_lines(run: dict) -> list[str]:
    """What a person reads about the run's deployment: status, endpoint and predict URL."""
    deployment = run.get("deployment") or {}
    config = run.get("deployment_config") or {}
    if not deployment:
        if config.get("action") in AUTOMATIC_ACTIONS and run.get("status") not in ("failed", "cancelled", "not_blessed"):
            where = config.get("existing_endpoint_id") or config.get("endpoint_name") or run.get("name")
            return [f"deployment: {config['action']} to {where} after training"]
        return ["deployment: not deployed"]
    how = " (automatic)" if deployment.get("automatic") else ""
    status = deployment.get("status")
    if status == "deployed":
        lines = [f"deployment: deployed{how} to {_target(deployment)}"]
        if deployment.get("predict_url"):
            lines.append(f"predict URL: {deployment['predict_url']}")
        return lines
    if status == "failed":
        return [f"deployment: failed{how}: {deployment.get('error') or 'unknown error'}"]
    return [f"deployment: {status}{how} to {_target(deployment)}"]


def deploy_expected(run: dict) -> bool:
    """Completed, registered and asking for a deploy after training, which has not been requested yet."""
    return (run.get("status") == "completed" and not run.get("deployment") and bool(run.get("vertex_model_resource_name"))
            and (run.get("deployment_config") or {}).get("action") in AUTOMATIC_ACTIONS)


def exit_code(run: dict) -> int:
    """0 completed (and deployed, when it deploys), 2 not blessed, 1 failed or cancelled, 3 deploy failed."""
    if run.get("status") == "completed" and (run.get("deployment") or {}).get("status") == "failed":
        return DEPLOY_FAILED_EXIT
    return EXIT_CODES[run["status"]]


def watch(get_run: Callable[[], dict], interval_s: float = 0.5, out=sys.stdout, timeout_s: Optional[float] = None,
          interactive: Optional[bool] = None, deploy_grace_s: float = DEPLOY_REQUEST_GRACE_S) -> dict:
    """Poll the API until the run is terminal — and, for a run that deploys after training, until its
    deployment is deployed or failed; returns the final run. One line per stage change (what a log
    keeps) and per deployment change and, on a terminal, a bar redrawn in place."""
    interactive = out.isatty() if interactive is None else interactive
    started, last_stage, last_line, last_deploy, ended_at = time.time(), None, None, None, None
    while True:
        run = get_run()
        stage = run.get("current_stage")
        line = progress_line(run)
        if stage != last_stage and stage:
            if interactive and last_line:
                out.write("\n")
            out.write(f"→ {stage}\n" if interactive else f"{line}\n")
            last_stage = stage
        elif not interactive and line != last_line and run.get("current_epoch"):
            out.write(line + "\n")
        if interactive:
            out.write("\r" + line.ljust(120))
        out.flush()
        last_line = line
        if run.get("status") in TERMINAL:
            ended_at = ended_at or time.time()
            deployment = run.get("deployment") or {}
            state = (deployment.get("id"), deployment.get("status"))
            if deployment and state != last_deploy:
                out.write(("\n" if interactive else "") + "\n".join(deployment_lines(run)) + "\n")
                last_deploy = state
            waiting = deployment.get("status") == "deploying" or (
                deploy_expected(run) and time.time() - ended_at < deploy_grace_s)
            if not waiting:
                if interactive and not deployment:
                    out.write("\n")
                if deploy_expected(run):
                    out.write(f"the deploy after training was not requested within {deploy_grace_s:.0f}s; "
                              f"`trainyard runs get {run.get('id')}` shows it when it is\n")
                return run
        if timeout_s and time.time() - started > timeout_s:
            raise TimeoutError(f"run {run.get('id')} still {run.get('status')} after {timeout_s:.0f}s")
        time.sleep(interval_s)
