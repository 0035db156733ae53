"""Structured logs: one JSON object a line, with the context a consumer binds once per message."""
from __future__ import annotations

import json

from shared import log
from shared.consumer import consume
from shared.contract.messages import RunSubmit
from tests.events import envelope


def _entries(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_every_entry_a_consumer_writes_carries_the_message_and_its_run(capsys):
    def handle(request, message):
        log.info("working on it", step=1)
        return "done"

    assert consume(envelope({"run_id": "tr-1", "attempt": 1}, "m-1"), RunSubmit, handle, "submitter") == "done"
    log.info("after the message")
    working, handled, after = _entries(capsys)
    assert working == {**working, "message": "working on it", "step": 1, "run_id": "tr-1", "message_id": "m-1",
                       "consumer": "submitter", "severity": "INFO"}
    assert handled["run_id"] == "tr-1" and handled["outcome"] == "done"
    assert "run_id" not in after and "message_id" not in after  # unbound when the message is done


def test_bound_context_nests_and_an_explicit_field_wins(capsys):
    with log.bound(run_id="tr-1", schedule_id=None):
        with log.bound(attempt=2):
            log.warning("inner", run_id="tr-2")
        log.error("outer")
    inner, outer = _entries(capsys)
    assert (inner["run_id"], inner["attempt"], inner["severity"]) == ("tr-2", 2, "WARNING")
    assert outer["run_id"] == "tr-1" and "attempt" not in outer and "schedule_id" not in outer
