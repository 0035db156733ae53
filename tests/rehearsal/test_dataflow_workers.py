"""A5: Dataflow workers run what the launcher pickled — our ExampleGen DoFns (by module reference),
TFX's readers — so they need the launcher's packages. Rehearsed with the two images' own trees: the
launcher from the GPU image's, a Beam worker pool (the SDK harness Dataflow's boot program starts)
from the Dataflow image's, each with nothing else on its path. A worker without pipeline_compiler —
what TFX's public image or Beam's plain SDK image would be — fails the same stage."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.rehearsal import images

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(image: images.Image, tree: Path) -> dict:
    # TMPDIR: the container's own /tmp is the session's scratch here (tests/conftest.py), not this machine's.
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tree), "LANG": "C.UTF-8",
           "TMPDIR": tempfile.gettempdir()}
    env.update({k: v.replace(image.workdir, str(tree)) if v.startswith(image.workdir) else v for k, v in image.env.items()})
    return env


def run_stage(tmp_path: Path, worker_tree: Path, worker_image: images.Image) -> subprocess.CompletedProcess:
    gpu = images.load(REPO / "gpu_image" / "Dockerfile")
    launcher_tree = tmp_path / "gpu"
    if not launcher_tree.exists():
        gpu.assemble(launcher_tree)
    port = _port()
    pool = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
                            cwd=tmp_path, env=_env(worker_image, worker_tree), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.time() < deadline and pool.poll() is None, "the worker pool did not start"
            time.sleep(0.2)
        workdir = tmp_path / f"stage-{port}"
        return subprocess.run([sys.executable, str(REPO / "tests" / "rehearsal" / "data_stage.py"), str(workdir / "data.csv"),
                               str(workdir), str(port)], cwd=tmp_path, env=_env(gpu, launcher_tree),
                              capture_output=True, text=True, timeout=600)
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(timeout=30)


def test_a_data_stage_runs_on_workers_of_the_dataflow_image(tmp_path):
    image = images.load(REPO / "dataflow_image" / "Dockerfile")
    tree = image.assemble(tmp_path / "dataflow")
    result = run_stage(tmp_path, tree, image)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "SPLITS Split-eval Split-test Split-train" in result.stdout


def test_the_same_stage_fails_on_workers_without_our_code(tmp_path):
    image = images.load(REPO / "dataflow_image" / "Dockerfile")
    tree = image.assemble(tmp_path / "dataflow")
    for package in ("pipeline_compiler", "shared"):
        subprocess.run(["rm", "-rf", str(tree / package)], check=True)
    result = run_stage(tmp_path, tree, image)
    assert result.returncode != 0
    assert "No module named 'pipeline_compiler'" in result.stderr
