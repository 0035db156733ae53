"""`trainyard runs tensorboard RUN_ID`: a real TensorBoard on the run's event files, its data API read
over HTTP, stopped by its pid; and what the command says when the files are not on this machine."""
from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request

import pytest

from shared.contract import results
from tests.unit.test_cli import api, run_cli, stored_run  # noqa: F401 - the CLI against the API fixture
from trainyard_cli import tensorboard_command

EXPERIMENT = "projects/123/locations/europe-west4/tensorboards/456/experiments/789"


def write_scalars(log_dir: str) -> None:
    tf = pytest.importorskip("tensorflow")
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))
    with writer.as_default():
        for step, value in ((1, 4.0), (2, 2.5), (3, 1.25)):
            tf.summary.scalar("grad_norm", value, step=step)
    writer.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it is gone once its state says so.
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split()[2] != "Z"


def test_tensorboard_serves_the_runs_scalars_and_stops_by_its_pid(tmp_path):
    log_dir = str(tmp_path / "tensorboard")
    write_scalars(log_dir)
    server = tensorboard_command.start(log_dir, port=0)
    try:
        assert _alive(server.pid)
        query = urllib.parse.urlencode({"run": "train", "tag": "grad_norm"})
        with urllib.request.urlopen(f"{server.url}data/plugin/scalars/scalars?{query}", timeout=30) as response:
            points = json.load(response)  # [[wall time, step, value], ...]
        assert [(step, value) for _, step, value in points] == [(1, 4.0), (2, 2.5), (3, 1.25)]
    finally:
        server.stop()
    assert server.process.returncode is not None and not _alive(server.pid)


class FakeProcess:
    """A TensorBoard process whose wait is interrupted by Ctrl-C."""

    pid = 4242
    returncode = None

    def __init__(self):
        self.terminated = False

    def wait(self, timeout=None):
        if not self.terminated:
            raise KeyboardInterrupt
        return 0

    def poll(self):
        return 0 if self.terminated else None

    def terminate(self):
        self.terminated = True


def test_the_command_prints_the_url_and_ctrl_c_stops_tensorboard(api, tmp_path, monkeypatch):  # noqa: F811
    repo, _ = api
    artifacts = tmp_path / "artifacts" / "run"
    (artifacts / results.TENSORBOARD_DIR).mkdir(parents=True)
    run = stored_run(repo, gcs_artifacts_path=str(artifacts))
    started = {}

    def fake_start(log_dir, port):
        started.update(log_dir=log_dir, port=port)
        return tensorboard_command.Server(FakeProcess(), f"http://127.0.0.1:{port}/")

    monkeypatch.setattr(tensorboard_command, "start", fake_start)
    code, out = run_cli("runs", "tensorboard", run["id"], "--port", "6123")
    assert code == 0
    assert started == {"log_dir": str(artifacts / results.TENSORBOARD_DIR), "port": 6123}
    assert f"TensorBoard for {run['id']}: http://127.0.0.1:6123/  (pid 4242" in out


@pytest.mark.parametrize("fields, words", [
    ({"gcs_artifacts_path": "gs://bucket/training/r"}, "in the cloud (gs://bucket/training/r), not on this machine"),
    ({"gcs_artifacts_path": "/nowhere/on/this/machine/r"}, "the local stack that ran it is elsewhere"),
    ({}, "has no artifacts yet"),
])
def test_files_not_on_this_machine_are_said_so(api, capsys, fields, words):  # noqa: F811
    repo, _ = api
    run = stored_run(repo, tensorboard_experiment=EXPERIMENT, **fields)
    code, _ = run_cli("runs", "tensorboard", run["id"])
    err = capsys.readouterr().err
    assert code == 1 and words in err, err
    assert "https://europe-west4.tensorboard.googleusercontent.com/experiment/projects+123+locations+europe-west4" in err


def test_no_event_files_yet_is_said_so(api, tmp_path, capsys):  # noqa: F811
    repo, _ = api
    run = stored_run(repo, gcs_artifacts_path=str(tmp_path))
    assert run_cli("runs", "tensorboard", run["id"])[0] == 1
    assert "no TensorBoard event files yet" in capsys.readouterr().err


def test_a_busy_port_gives_way_to_a_free_one():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert tensorboard_command.free_port(taken) not in (taken, 0)
