"""A scripted pipeline process for testing the local pipeline service alone: it records node
executions in an ML-Metadata-shaped sqlite (the tables and states the service reads), then exits the
way the job's run spec name says: `...-ok` succeeds, `...-crash-at-<node>` dies at that node without
a word, `...-slow` runs until it is cancelled, `...-stubborn-slow` also ignores SIGTERM and starts a
helper in its process group (as Beam workers do). Every start is recorded in `<job_dir>/started`."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

NODES = ("ExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer", "Evaluator", "Pusher")


def main(job_dir: str) -> int:
    job = json.load(open(os.path.join(job_dir, "job.json")))
    behaviour = json.load(open(job["run_spec_path"]))["run_name"]
    with open(os.path.join(job_dir, "started"), "a") as handle:
        handle.write(f"{os.getpid()} {time.time()}\n")
    if "-stubborn" in behaviour:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                          "signal.SIG_IGN); time.sleep(600)"])
    os.makedirs(os.path.dirname(job["metadata_path"]), exist_ok=True)
    db = sqlite3.connect(job["metadata_path"], isolation_level=None)
    db.executescript("""
        CREATE TABLE IF NOT EXISTS Type (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE IF NOT EXISTS Context (id INTEGER PRIMARY KEY, type_id INT, name TEXT);
        CREATE TABLE IF NOT EXISTS Execution (id INTEGER PRIMARY KEY, type_id INT, last_known_state INT,
            create_time_since_epoch INT, last_update_time_since_epoch INT);
        CREATE TABLE IF NOT EXISTS Association (id INTEGER PRIMARY KEY, context_id INT, execution_id INT);
        INSERT INTO Type (id, name) VALUES (1, 'node');""")
    for node in NODES:
        now = int(time.time() * 1000)
        context = db.execute("INSERT INTO Context (type_id, name) VALUES (1, ?)",
                             (f"{job['pipeline_name']}.{node}",)).lastrowid
        execution = db.execute("INSERT INTO Execution (type_id, last_known_state, create_time_since_epoch, "
                               "last_update_time_since_epoch) VALUES (2, 2, ?, ?)", (now, now)).lastrowid
        db.execute("INSERT INTO Association (context_id, execution_id) VALUES (?, ?)", (context, execution))
        time.sleep(0.6)
        if behaviour.endswith(f"crash-at-{node.lower()}"):
            os._exit(3)  # no exit.json, no goodbye: what a segfault or OOM kill looks like
        if behaviour.endswith("-slow") and node == "Trainer":
            time.sleep(600)
        db.execute("UPDATE Execution SET last_known_state = 3, last_update_time_since_epoch = ? WHERE id = ?",
                   (int(time.time() * 1000), execution))
    with open(os.path.join(job_dir, "exit.json"), "w") as handle:
        json.dump({"exit_code": 0, "error": None}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
