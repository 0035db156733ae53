"""Several machines, played on localhost: the real trainer in two CPU processes (a chief and a worker,
each with the TF_CONFIG Vertex gives its replicas, on free ports) trains with
MultiWorkerMirroredStrategy on the tiny transformed demo data. The worker is killed (SIGKILL, by pid)
mid-training, the chief stopped (as Vertex restarts the whole job when a worker restarts), both are
started again: training resumes from the chief's last checkpoint, finishes, and only the chief's
model, metrics and progress events exist."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime

import numpy as np
import pytest

from pipeline_compiler.modules.cluster import Cluster, from_tf_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
EPOCHS, CHECKPOINT_EVERY, WORKER_PAUSES_AFTER = 5, 2, 3


# --------------------------------------------------------------------------- TF_CONFIG, read


def _tf_config(task_type, index, cluster=None):
    cluster = cluster or {"chief": ["host-a:2222"], "worker": ["host-b:2222", "host-c:2222"]}
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}


def test_no_tf_config_is_one_machine_and_its_chief():
    cluster = from_tf_config({})
    assert cluster.machines == 1 and not cluster.multi_worker and cluster.is_chief
    assert cluster.write_dir("gs://b/run", "artifacts") == "gs://b/run"


def test_vertex_tf_config_names_the_chief_and_the_workers():
    chief = from_tf_config(_tf_config("chief", 0))
    worker = from_tf_config(_tf_config("worker", 1))
    assert chief.machines == worker.machines == 3 and chief.multi_worker
    assert chief.is_chief and not worker.is_chief
    assert chief.write_dir("gs://b/run", "artifacts") == "gs://b/run"
    scratch = worker.write_dir("gs://b/run", "artifacts")
    assert scratch.startswith(tempfile.gettempdir()) and "worker-1" in scratch
    # Without a chief task, worker 0 is the chief (TensorFlow's rule); ps/evaluator replicas do not train.
    assert from_tf_config(_tf_config("worker", 0, {"worker": ["a:1", "b:1"]})).is_chief
    assert not from_tf_config(_tf_config("worker", 1, {"worker": ["a:1", "b:1"]})).is_chief
    with pytest.raises(ValueError, match="does not train"):
        from_tf_config(_tf_config("ps", 0, {"chief": ["a:1"], "worker": ["b:1"], "ps": ["c:1"]}))
    with pytest.raises(ValueError, match="not JSON"):
        from_tf_config({"TF_CONFIG": "{oops"})
    # A cluster of one task (Vertex with one replica) is a single machine.
    assert not from_tf_config(_tf_config("chief", 0, {"chief": ["a:1"]})).multi_worker
    assert Cluster().is_chief


# --------------------------------------------------------------------------- two processes, one kill

WORKER = textwrap.dedent("""
    import json, os, sys, time
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)  # two processes on a shared 2-core machine
    from pipeline_compiler.modules import callbacks, trainer
    from tests.unit.pipeline_compiler.tiny_data import tiny_spec

    workdir, train, evaluation, transform, pause_after, epochs, every = sys.argv[1:8]
    published = []

    def record(self, metrics):  # what reaches ProgressPublisher, and for which topic
        published.append([self.topic, metrics.epoch])
        return False

    callbacks.ProgressPublisher.publish = record

    class PauseAfter(tf.keras.callbacks.Callback):
        # Holds this process after an epoch so the test can kill it there: mid-training, by pid.
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == int(pause_after):
                open(os.path.join(workdir, f"paused-{os.getpid()}"), "w").close()
                time.sleep(600)

    spec = tiny_spec(workdir, run_id="multi", progress_topic="projects/p/topics/training-progress",
                     gpu_config={"gpu_type": "NVIDIA_L4", "gpu_count": 1, "machine_count": 2},
                     training_params={"epochs": int(epochs), "checkpoint_every_epochs": int(every),
                                      "early_stopping": {"enabled": False}, "retrieval_index": {"type": "brute_force"}})
    result = trainer.train_and_export(spec, [train], [evaluation], transform, export=True,
                                      serving_model_dir=os.path.join(workdir, "serving"), extra_callbacks=[PauseAfter()])
    print("RESULT", json.dumps({
        "replicas": result.replicas, "resumed_from": result.metrics.resumed_from_epoch,
        "epochs": [[e.epoch, e.timestamp.isoformat()] for e in result.metrics.epochs],
        "saved_model": result.artifacts.saved_model, "published": published,
        "serving_model_dir_exists": os.path.exists(os.path.join(workdir, "serving", "saved_model.pb"))}), flush=True)
""")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


class TwoMachines:
    """A chief and a worker process; every process it starts is stopped by pid."""

    def __init__(self, tiny, logs):
        self.tiny, self.logs, self.processes, self.started = tiny, logs, {}, 0

    def start(self, worker_pauses_after=0):
        ports = [_free_port(), _free_port()]
        cluster = {"chief": [f"localhost:{ports[0]}"], "worker": [f"localhost:{ports[1]}"]}
        t = self.tiny
        for role, pause in (("chief", 0), ("worker", worker_pauses_after)):
            env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2",
                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": role, "index": 0}})}
            self.started += 1
            log = open(os.path.join(self.logs, f"{self.started}-{role}.log"), "w")
            self.processes[role] = (subprocess.Popen(
                [sys.executable, "-c", WORKER, t.workdir, t.train_pattern, t.eval_pattern, t.transform_output_dir,
                 str(pause), str(EPOCHS), str(CHECKPOINT_EVERY)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log)

    def pid(self, role):
        return self.processes[role][0].pid

    def kill(self, role):
        process, log = self.processes[role]
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        log.close()

    def wait(self, timeout):
        results = {}
        deadline = time.monotonic() + timeout
        for role, (process, log) in self.processes.items():
            process.wait(timeout=max(1, deadline - time.monotonic()))
            log.close()
            with open(log.name) as handle:
                text = handle.read()
            assert process.returncode == 0, f"{role} exited {process.returncode}:\n{text[-3000:]}"
            line = [l for l in text.splitlines() if l.startswith("RESULT ")][-1]
            results[role] = json.loads(line[len("RESULT "):])
        return results

    def stop_all(self):
        for role in list(self.processes):
            self.kill(role)


@pytest.fixture(scope="module")
def killed_and_resumed(tiny_transform, tmp_path_factory):
    """Run 1: the worker is killed after epoch 3 (the chief's last checkpoint is epoch 2's), then the
    chief. Run 2: both again, from the checkpoint, to the end."""
    logs = str(tmp_path_factory.mktemp("multi-worker-logs"))
    machines = TwoMachines(tiny_transform, logs)
    try:
        machines.start(worker_pauses_after=WORKER_PAUSES_AFTER)
        marker = os.path.join(tiny_transform.workdir, f"paused-{machines.pid('worker')}")
        deadline = time.monotonic() + 240  # generous: the machine is shared
        while not os.path.exists(marker):
            assert time.monotonic() < deadline, open(os.path.join(logs, "2-worker.log")).read()[-3000:]
            assert machines.processes["chief"][0].poll() is None, open(os.path.join(logs, "1-chief.log")).read()[-3000:]
            time.sleep(0.2)
        machines.kill("worker")  # mid-training: the chief is waiting for it in epoch 4's all-reduce
        killed_at = datetime.now().astimezone()
        machines.kill("chief")  # Vertex restarts the whole job (restart_job_on_worker_restart)
        # The killed worker's scratch checkpoints (on Vertex they vanish with its VM).
        shutil.rmtree(os.path.join(tempfile.gettempdir(), f"trainyard-worker-0-{machines.pid('worker')}"),
                      ignore_errors=True)
        machines.start()
        results = machines.wait(timeout=300)
        results["killed_at"] = killed_at
        results["worker_scratch"] = os.path.join(tempfile.gettempdir(), f"trainyard-worker-0-{machines.pid('worker')}")
        return results
    finally:
        machines.stop_all()


def test_training_resumes_from_the_chiefs_checkpoint_after_a_worker_is_killed(killed_and_resumed):
    chief, worker = killed_and_resumed["chief"], killed_and_resumed["worker"]
    assert chief["replicas"] == worker["replicas"] == 2  # one CPU replica per machine, in sync
    assert chief["resumed_from"] == worker["resumed_from"] == CHECKPOINT_EVERY  # not restarted from scratch
    epochs = [e for e, _ in chief["epochs"]]
    assert epochs == list(range(1, EPOCHS + 1))  # the count continues from the checkpoint and finishes
    killed_at = killed_and_resumed["killed_at"]
    stamps = {e: datetime.fromisoformat(t) for e, t in chief["epochs"]}
    assert all(stamps[e] < killed_at for e in range(1, CHECKPOINT_EVERY + 1))  # kept from run 1
    assert all(stamps[e] > killed_at for e in range(CHECKPOINT_EVERY + 1, EPOCHS + 1))  # trained in run 2
    assert [e for e, _ in worker["epochs"]] == epochs


def test_only_the_chief_writes_the_model_metrics_and_progress(killed_and_resumed, tiny_transform):
    from shared.contract import results as R

    chief, worker = killed_and_resumed["chief"], killed_and_resumed["worker"]
    artifacts = os.path.join(tiny_transform.workdir, "artifacts", "multi")
    assert chief["saved_model"] == os.path.join(artifacts, R.SAVED_MODEL_DIR)
    assert not worker["saved_model"].startswith(artifacts)  # the worker's copy went to its scratch dir
    assert not os.path.exists(killed_and_resumed["worker_scratch"])  # ...which it removed
    # TFX's executor checks serving_model_dir on every replica: the chief wrote it before either returned.
    assert chief["serving_model_dir_exists"] and worker["serving_model_dir_exists"]
    # Progress: the chief publishes each epoch it trained to the topic; the worker publishes to none.
    assert [e for topic, e in chief["published"] if topic] == list(range(CHECKPOINT_EVERY + 1, EPOCHS + 1))
    assert all(topic is None for topic, _ in worker["published"])
    with open(os.path.join(artifacts, R.TRAINING_METRICS_FILE)) as handle:
        written = R.TrainingMetrics.model_validate_json(handle.read())
    assert written.resumed_from_epoch == CHECKPOINT_EVERY and len(written.epochs) == EPOCHS
    checkpoints = sorted(n for n in os.listdir(os.path.join(artifacts, R.CHECKPOINTS_DIR)) if n.endswith(".index"))
    assert checkpoints == ["ckpt-2.index", "ckpt-4.index"]  # the chief's, run 1 and run 2


def test_the_chiefs_model_serves_with_sane_recall(killed_and_resumed, tiny_transform):
    import tensorflow as tf

    raw = tiny_transform.raw
    serving = tf.saved_model.load(killed_and_resumed["chief"]["saved_model"]).signatures["serving_default"]
    cut = int(len(raw["timestamp"]) * 0.8)  # tiny_data's train/eval cut: score the eval rows
    rows = slice(cut, len(raw["timestamp"]))
    out = serving(**{c: tf.constant(raw[c][rows]) for c in ("customer_id", "segment", "city", "timestamp")})
    top = out["ids"].numpy().astype(str)
    truth = raw["product_id"][rows]
    assert top.shape == (len(truth), 100)
    products = len(set(raw["product_id"]))
    recall_at_10 = float(np.mean([t in row[:10] for t, row in zip(truth, top)]))
    # Guessing would find 10 of the ~200 products; most-popular is the bar a trained model must clear.
    train_counts = {}
    for item in raw["product_id"][:cut]:
        train_counts[item] = train_counts.get(item, 0) + 1
    popular = sorted(train_counts, key=train_counts.get, reverse=True)[:10]
    most_popular_at_10 = float(np.mean([t in popular for t in truth]))
    assert recall_at_10 > 2 * 10 / products, recall_at_10
    assert recall_at_10 > most_popular_at_10, (recall_at_10, most_popular_at_10)
