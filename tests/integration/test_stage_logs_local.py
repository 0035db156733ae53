"""Logs of every stage, locally: the API reads the local pipeline service's job log, where the local runner now
marks each component (pipeline_compiler/stage_marks.py, the very lines it prints), and labels the Beam
DirectRunner's and the Trainer's lines with their stage; the stage and severity filters and the signed page
and follow tokens work through the HTTP API of the local stack."""
from __future__ import annotations

import logging

import pytest

from tests.integration.test_control_plane_flow import catalog, create, submitted  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


def runner_lines(capsys) -> list[str]:
    """What the local runner's log holds for three components: its marks, as stage_marks prints them, and the
    components' own output between them."""
    from pipeline_compiler import stage_marks

    absl, lines = logging.getLogger("absl"), []
    with stage_marks.marking():
        for node, output in (("ExampleGen", ["WARNING:apache_beam.io.tfrecordio:Couldn't find python-snappy"]),
                             ("Transform", ["2026-12-07 02:11:42.679456: E external/xla/cuda_dnn.cc:9261] cuDNN",
                                            "running bdist_wheel"]),
                             ("Trainer", ["Epoch 1/2", "Epoch 2/2"])):
            capsys.readouterr()
            absl.info("Component %s is running.", node)
            lines += capsys.readouterr().out.splitlines() + output
    return lines


def test_local_lines_are_labelled_filtered_paged_and_followed(local_stack, catalog, capsys):  # noqa: F811
    run = submitted(local_stack, catalog, "stage-logs")
    job_id = f"{run['id']}-a1"
    local_stack.pipeline.logs[job_id] = runner_lines(capsys)
    path = f"/api/training-runs/{run['id']}/logs"

    transform = local_stack.get(path, stage="Transform").json()["entries"]
    assert [e["message"] for e in transform][1:] == ["2026-12-07 02:11:42.679456: E external/xla/cuda_dnn.cc:9261] cuDNN",
                                                     "running bdist_wheel"]
    assert {e["stage"] for e in transform} == {"Transform"}
    errors = local_stack.get(path, severity="ERROR").json()["entries"]
    assert [(e["stage"], e["severity"]) for e in errors] == [("Transform", "ERROR")]

    first = local_stack.get(path, page_size=4).json()
    assert [e["stage"] for e in first["entries"]] == ["Examples", "Examples", "Transform", "Transform"]
    rest = local_stack.get(path, page_size=4, page_token=first["next_page_token"]).json()
    assert [e["stage"] for e in rest["entries"]] == ["Transform", "Train", "Train", "Train"]
    assert rest["next_page_token"] is None and rest["follow_token"]

    local_stack.pipeline.logs[job_id].append("Epoch 2/2 done: val_loss 0.41")
    later = local_stack.get(path, page_size=4, page_token=rest["follow_token"]).json()
    assert [(e["stage"], e["message"]) for e in later["entries"]] == [("Train", "Epoch 2/2 done: val_loss 0.41")]
    assert local_stack.get(path, stage="Train", page_token=rest["follow_token"]).status_code == 400
