"""Out of memory, told from a failed run's root cause (shared/domain/failure_kinds.py), on the texts TensorFlow,
CUDA, the kernel and Vertex AI write; the dashboard reads the same fixture (dashboard/src/retryform.test.js)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.contract.vocabulary import vocabulary
from shared.domain import failure_kinds, root_cause

MESSAGES = json.loads((Path(__file__).resolve().parents[2] / "dashboard" / "src" / "testdata"
                       / "failure_messages.json").read_text())


@pytest.mark.parametrize("message", MESSAGES["out_of_memory"])
def test_out_of_memory_in_every_framework_s_words(message):
    assert failure_kinds.out_of_memory(message)
    assert failure_kinds.kind({"error_message": message}) == failure_kinds.OUT_OF_MEMORY


@pytest.mark.parametrize("message", MESSAGES["not_out_of_memory"])
def test_quota_capacity_and_bugs_are_not_out_of_memory(message):
    assert not failure_kinds.out_of_memory(message)
    assert failure_kinds.kind({"error_message": message}) is None


def test_a_training_container_s_oom_traceback_as_vertex_reports_it():
    # Vertex's text for a failed CustomJob: its first line, then the tail of the container's stderr.
    vertex = ("The replica workerpool0-0 exited with a non-zero status of 1. Termination reason: Error.\n"
              "Traceback (most recent call last):\n"
              '  File "/pipeline/trainer/run.py", line 88, in run_fn\n'
              "    model.fit(train, epochs=epochs)\n"
              "tensorflow.python.framework.errors_impl.ResourceExhaustedError: Graph execution error:\n\n"
              "Detected at node 'retrieval/embedding/MatMul' defined at (most recent call last):\n"
              '    File "/pipeline/trainer/run.py", line 88, in run_fn\n'
              "OOM when allocating tensor with shape[8192,1048576] and type float on "
              "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc\n")
    message = root_cause.from_text(vertex)
    assert message.startswith("ResourceExhaustedError: OOM when allocating")
    assert failure_kinds.wants_more_gpu_memory({"error_message": message, "error_stage": "Train"})


def test_more_gpu_memory_only_where_the_gpus_are():
    oom = "ResourceExhaustedError: OOM when allocating tensor with shape[8192,64]"
    assert failure_kinds.wants_more_gpu_memory({"error_message": oom, "error_stage": "Train"})
    assert failure_kinds.wants_more_gpu_memory({"error_message": oom})  # a stage not recorded: the Trainer's
    # a Beam worker's memory is not the run's GPUs: out of memory, but no GPU preset
    transform = {"error_message": "MemoryError: Unable to allocate 3.1 GiB", "error_stage": "Transform"}
    assert failure_kinds.kind(transform) == failure_kinds.OUT_OF_MEMORY
    assert not failure_kinds.wants_more_gpu_memory(transform)
    assert not failure_kinds.wants_more_gpu_memory({"error_message": "KeyError: 'user_id'", "error_stage": "Train"})


def test_the_vocabulary_serves_patterns_that_sort_the_messages_as_the_server_does():
    served = vocabulary()["failure_kinds"][failure_kinds.OUT_OF_MEMORY]
    # the dashboard's rule (retryform.js outOfMemory), here with Python's re on the served pattern strings
    def client(text):
        hit = lambda patterns: any(re.search(p, text, re.I) for p in patterns)  # noqa: E731
        return bool(text) and (hit(served["patterns"]) or hit(served["exhausted"]) and not hit(served["unless"]))
    for message in MESSAGES["out_of_memory"] + MESSAGES["not_out_of_memory"]:
        assert client(message) == failure_kinds.out_of_memory(message), message
    assert served["gpu_stages"] == ["Train"]
    assert {g["name"]: g["memory_gb"] for g in vocabulary()["gpu_types"]}["NVIDIA_L4"] == 24
