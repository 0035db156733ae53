"""Puts the estimated cost (shared/domain/cost.py) on a run when it becomes terminal, from the run's stages,
its GPUs, the region, and what its pipeline job's labels say about the data stages (Dataflow or not).
An estimate is advice: a price table that cannot be read leaves the run without one, never failed."""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

from shared.domain import cost, runs
from shared import log
from shared.contract.labels import DATA_RUNNER_LABEL, DATAFLOW_MACHINE_LABEL, DATAFLOW_WORKERS_LABEL


@lru_cache(maxsize=4)
def price_table(path: str) -> dict:
    """The price table (cached: it is read once per path)."""
    return cost.load_table(path or None)


def priced(doc: Optional[dict], labels: Optional[dict] = None, settings=None) -> Optional[dict]:
    """`doc` with `estimated_cost` when it is terminal (the same document otherwise); None stays None."""
    if doc is None or not runs.is_terminal(doc.get("status", "")):
        return doc
    if settings is None:
        from shared.settings import get_settings

        settings = get_settings()
    labels = labels or {}
    try:
        shape = cost.DataflowShape(machine_type=labels.get(DATAFLOW_MACHINE_LABEL) or settings.dataflow_machine_type,
                                   max_workers=int(labels.get(DATAFLOW_WORKERS_LABEL) or settings.dataflow_max_workers))
        estimate = cost.estimate(doc, price_table(settings.price_table), settings.region, labels.get(DATA_RUNNER_LABEL), shape)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("run cost not estimated", run_id=doc.get("id"), error=str(exc))
        return doc
    return {**doc, "estimated_cost": estimate}
