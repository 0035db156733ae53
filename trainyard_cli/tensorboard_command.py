"""`trainyard runs tensorboard RUN_ID`: TensorBoard on the run's event files, on this machine.

The Trainer writes them under the run's artifacts, tensorboard/ (pipeline_compiler/modules/tensorboard_logs.py).
The command asks the API where the run's artifacts are; a local directory that exists here is served
by the `tensorboard` package (installed with TensorFlow) until Ctrl-C stops it. A run whose files are
not on this machine (the local stack runs elsewhere, or a cloud run) is said so, with the Vertex
TensorBoard experiment's link when the run has one.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Optional

from shared.contract import results
from trainyard_cli.output import Output

DEFAULT_PORT = 6006  # TensorBoard's own default
READY_SECONDS = 90.0  # TensorBoard imports TensorFlow before it serves: seconds on a loaded machine


class TensorBoardError(RuntimeError):
    """TensorBoard could not be started or did not answer."""


def register(runs, common) -> None:
    board = common(runs.add_parser("tensorboard", help="serve the run's TensorBoard event files (scalars, weight and "
                                                      "gradient histograms) here until Ctrl-C"))
    board.add_argument("run_id")
    board.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; a busy one: any free port")
    board.set_defaults(handler=tensorboard_run)


def free_port(preferred: int) -> int:
    """`preferred` when nothing listens there, else a port the system picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise TensorBoardError("no free port")


@dataclass
class Server:
    process: subprocess.Popen
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stops this TensorBoard, by its own process id (SIGTERM, then SIGKILL)."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(log_dir: str, port: int = DEFAULT_PORT, ready_seconds: float = READY_SECONDS) -> Server:
    """TensorBoard on log_dir, at 127.0.0.1 only, once it answers its data API."""
    try:
        import tensorboard  # noqa: F401 - only to say plainly when it is missing
    except ImportError:
        raise TensorBoardError("the tensorboard package is not installed here (it comes with TensorFlow: "
                               "requirements/ml.txt)") from None
    port = free_port(port)
    url = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", log_dir, "--host", "127.0.0.1", "--port", str(port),
         "--reload_interval", "5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(process, url)
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TensorBoardError(f"TensorBoard exited ({process.returncode}): "
                                   f"{process.stderr.read().decode(errors='replace')[-800:]}")
        try:
            with urllib.request.urlopen(url + "data/runs", timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    raise TensorBoardError(f"TensorBoard did not answer at {url} within {ready_seconds:.0f} s")


def log_dir_of(run: dict) -> tuple[Optional[str], str]:
    """(the run's event-file directory on this machine, or None and why not)."""
    artifacts = run.get("gcs_artifacts_path")
    if not artifacts:
        return None, "the run has no artifacts yet (its Trainer has not started)"
    if "://" in artifacts:
        return None, f"the run's files are in the cloud ({artifacts}), not on this machine"
    directory = results.join(artifacts, results.TENSORBOARD_DIR)
    if not os.path.isdir(artifacts):
        return None, (f"the run's artifacts ({artifacts}) are not on this machine: the local stack that ran it is "
                      "elsewhere")
    if not os.path.isdir(directory):
        return None, f"no TensorBoard event files yet under {directory} (they appear with the first epoch)"
    return directory, ""


def tensorboard_run(args, client, ui: Output) -> int:
    run = client.get(f"/api/training-runs/{args.run_id}")["training_run"]
    directory, why = log_dir_of(run)
    if directory is None:
        experiment = run.get("tensorboard_experiment")
        sys.stderr.write(f"trainyard: {why}\n")
        if experiment:  # the same link as the run view's (dashboard/src/trainingtab.js)
            location = experiment.split("/")[3]
            sys.stderr.write(f"Vertex AI TensorBoard: https://{location}.tensorboard.googleusercontent.com/experiment/"
                             f"{experiment.replace('/', '+')}\n")
        return 1
    try:
        server = start(directory, args.port)
    except TensorBoardError as error:
        sys.stderr.write(f"trainyard: {error}\n")
        return 1
    ui.result({"run_id": args.run_id, "url": server.url, "log_dir": directory, "pid": server.pid},
              lambda d: ui.line(f"TensorBoard for {d['run_id']}: {d['url']}  (pid {d['pid']}, {d['log_dir']}; Ctrl-C stops it)"))
    ui.out.flush()  # the URL before the wait, also into a pipe
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
