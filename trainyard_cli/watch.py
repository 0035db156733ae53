"""Follow a run to its end: a progress bar with the current stage, epoch and latest metric."""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional

TERMINAL = {"completed", "failed", "cancelled", "not_blessed"}
EXIT_CODES = {"completed": 0, "not_blessed": 2, "failed": 1, "cancelled": 1}


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


def watch(get_run: Callable[[], dict], interval_s: float = 0.5, out=sys.stdout, timeout_s: Optional[float] = None,
          interactive: Optional[bool] = None) -> dict:
    """Poll the API until the run is terminal; returns the final run. One line per stage change
    (what a log keeps) and, on a terminal, a bar redrawn in place."""
    interactive = out.isatty() if interactive is None else interactive
    started, last_stage, last_line = time.time(), None, None
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
            if interactive:
                out.write("\n")
            return run
        if timeout_s and time.time() - started > timeout_s:
            raise TimeoutError(f"run {run.get('id')} still {run.get('status')} after {timeout_s:.0f}s")
        time.sleep(interval_s)
