"""The training cluster the Trainer runs in, read from TF_CONFIG: one machine, or a chief + workers.

On Vertex AI every replica of a CustomJob with several worker pools gets TF_CONFIG: `cluster` maps
task types to the replicas' addresses and `task` names this replica's type and index;
workerPoolSpecs[0] (the primary replica) is the task type `chief`, workerPoolSpecs[1] `worker`
(cloud.google.com/vertex-ai/docs/training/distributed-training, "Configure a distributed training
job": workerPoolSpecs[0] = "Primary, chief", [1] = workers; the TF_CONFIG format, and "chief" vs the
legacy "master": cloud.google.com/ai-platform/training/docs/distributed-training-details). With one
machine there is no cluster of several tasks and the Trainer keeps its single-machine strategy.

Every replica runs the same run_fn (TFX's Vertex Trainer gives every worker pool the executor's
command: tfx/extensions/google_cloud_ai_platform/training_clients.py, VertexJobClient). With
MultiWorkerMirroredStrategy all of them train, checkpoint and export (saving can run collective
ops, so every worker must take part), but only the chief writes where others read: the model, the
checkpoints, the metrics files, the progress events. The others write into a scratch directory of
their own and delete it (the TF guide "Multi-worker training with Keras", "Model saving and
loading": `write_filepath`).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Mapping, Optional

from shared.settings import read

TF_CONFIG = "TF_CONFIG"
TRAINING_TASK_TYPES = ("chief", "master", "worker")  # the tasks that train (not ps, not evaluator)


@dataclass(frozen=True)
class Cluster:
    task_type: str = "chief"
    task_index: int = 0
    machines: int = 1
    has_chief: bool = True  # TF_CONFIG lists a chief; without one, worker 0 is the chief (TF's rule)

    @property
    def multi_worker(self) -> bool:
        return self.machines > 1

    @property
    def is_chief(self) -> bool:
        return self.task_type in ("chief", "master") or (
            self.task_type == "worker" and self.task_index == 0 and not self.has_chief)

    @property
    def scratch_root(self) -> str:
        """This worker's own directory (not the chief's): what it writes there is thrown away."""
        return os.path.join(tempfile.gettempdir(), f"trainyard-{self.task_type}-{self.task_index}-{os.getpid()}")

    def scratch_dir(self, name: str) -> str:
        return os.path.join(self.scratch_root, name)

    def write_dir(self, shared_dir: str, name: str) -> str:
        """The chief writes to `shared_dir`; every other worker to its scratch directory."""
        return shared_dir if self.is_chief else self.scratch_dir(name)

    def discard_scratch(self) -> None:
        if not self.is_chief:
            shutil.rmtree(self.scratch_root, ignore_errors=True)


def from_tf_config(environ: Optional[Mapping[str, str]] = None) -> Cluster:
    """The cluster TF_CONFIG describes; no TF_CONFIG (or one task) is a single machine."""
    raw = read(TF_CONFIG, environ)
    if not raw.strip():
        return Cluster()
    try:
        config = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"{TF_CONFIG} is not JSON: {error}") from None
    cluster = config.get("cluster") or {}
    machines = sum(len(cluster.get(kind) or []) for kind in TRAINING_TASK_TYPES)
    task = config.get("task") or {}
    task_type, task_index = str(task.get("type") or "chief"), int(task.get("index") or 0)
    if machines > 1 and task_type not in TRAINING_TASK_TYPES:
        raise ValueError(f"{TF_CONFIG} task type {task_type!r} does not train; the Trainer runs on "
                         f"{', '.join(TRAINING_TASK_TYPES)} replicas only")
    has_chief = bool(cluster.get("chief") or cluster.get("master"))
    return Cluster(task_type=task_type, task_index=task_index, machines=max(1, machines), has_chief=has_chief)
