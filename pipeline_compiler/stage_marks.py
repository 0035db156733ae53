"""Stage marks in a local run's log. LocalDagRunner runs one component at a time and says so — "Component
<id> is running." (tfx/orchestration/local/local_dag_runner.py) — at absl's INFO, which the runner's log never
showed: Python logging stops at WARNING there, and INFO would let all of TFX's chatter in. While marking, the
absl logger makes INFO records, prints those two as structured lines (shared/log.py, with the stage), and lets
through only what it let through before. The logs reader (shared/adapters/run_logs.py) labels every line
after a mark with the mark's stage: the component's Beam DirectRunner and Trainer output alike."""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from shared import log
from shared.contract.nodes import STAGE_OF_NODE

_MARKS = ("Component %s is running.", "Component %s is finished.")


class _Marks(logging.Filter):
    def __init__(self, shown_from: int):
        super().__init__()
        self.shown_from = shown_from

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.shown_from:
            return True
        if record.msg in _MARKS and record.args:
            node = str(record.args[0])
            log.info(record.getMessage(), stage=STAGE_OF_NODE.get(node), node=node)
        return False


@contextlib.contextmanager
def marking() -> Iterator[None]:
    absl = logging.getLogger("absl")
    level, shown_from = absl.level, absl.getEffectiveLevel()
    marks = _Marks(shown_from)
    absl.addFilter(marks)
    absl.setLevel(min(shown_from, logging.INFO))
    try:
        yield
    finally:
        absl.removeFilter(marks)
        absl.setLevel(level)
