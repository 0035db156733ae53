"""The loop of the local stand-ins for Cloud Scheduler (scripts/ticker.py) and bucket notifications
(scripts/watcher.py): one step every interval until SIGTERM (`make down`, Stack.down), surviving a bad step."""
from __future__ import annotations

import signal
import time
from typing import Callable

from shared import log
from shared.errors import TransientError


def run_until_stopped(name: str, interval_s: float, step: Callable[[], object], **started) -> int:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    log.info(f"{name} started", interval_s=interval_s, **started)
    while not stopping:
        begun = time.monotonic()
        try:
            step()
        except TransientError as exc:  # Firestore or Pub/Sub busy: the next step tries again
            log.warning(f"{name} step failed", error=str(exc))
        except Exception as exc:  # keep going; one bad step must not stop every schedule or folder
            log.error(f"{name} step failed", error=repr(exc))
        time.sleep(max(0.0, interval_s - (time.monotonic() - begun)))
    log.info(f"{name} stopped")
    return 0
