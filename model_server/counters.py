"""What each deployed model served: the local prediction server's own counters (scripts/prediction_server.py),
the local side of Vertex's Cloud Monitoring metrics (prediction/online/response_count, error_count,
prediction_latencies) that a canary's watch reads.

One record per predict request: when, how long, and whether the server failed it (a 5xx: the model or the
server broke; a malformed request is the caller's error, 4xx, and not the model's). The records are kept
per (endpoint, deployed model) in a bounded ring, so a long-running server holds a fixed amount of memory;
a watch reads a window of them.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from datetime import datetime
from typing import Optional

KEPT = 50_000  # records per deployed model: hours of a local endpoint's traffic


class ServingCounters:
    def __init__(self, kept: int = KEPT):
        self.kept = kept
        self._records: dict[tuple[str, str], deque] = {}
        self._lock = threading.Lock()

    def record(self, endpoint_id: str, deployed_model_id: str, at: datetime, latency_ms: float, failed: bool) -> None:
        with self._lock:
            ring = self._records.setdefault((endpoint_id, deployed_model_id), deque(maxlen=self.kept))
            ring.append((at, latency_ms, failed))

    def summary(self, endpoint_id: str, deployed_model_id: str, since: Optional[datetime] = None,
                until: Optional[datetime] = None) -> dict:
        """requests, errors and p95 latency (ms, nearest rank; None with no request) in [since, until)."""
        with self._lock:
            records = list(self._records.get((endpoint_id, deployed_model_id), ()))
        window = [r for r in records if (since is None or r[0] >= since) and (until is None or r[0] < until)]
        latencies = sorted(r[1] for r in window)
        p95 = latencies[max(0, math.ceil(0.95 * len(latencies)) - 1)] if latencies else None
        return {"deployed_model_id": deployed_model_id, "requests": len(window),
                "errors": sum(1 for r in window if r[2]), "p95_latency_ms": p95}
