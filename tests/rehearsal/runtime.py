"""Start the deployment as described (tests/rehearsal/deployment.py) on this machine:

- each light function from its zip — written with Terraform's archive rules and unpacked — in a
  virtual environment that holds exactly what Cloud Functions' Python build installs from the zip's
  requirements.txt (`pip install -r`, no constraints), started the way the platform starts an
  HTTP-deployed function (functions-framework --target <entry point> --signature-type http);
- each Cloud Run service from its image's tree (the Dockerfile's COPY lines over the context its
  .dockerignore lets through), with the image's ENV and WORKDIR and the command Terraform gives it;
- with exactly the environment Terraform gives it, plus what the platform sets (PORT, K_SERVICE, ...)
  and the stand-ins below; nothing of this machine's environment (no PYTHONPATH, no settings) leaks in;
- fed by push subscriptions made on the Pub/Sub emulator from Terraform's own (topic, path, ack
  deadline, retry and dead-letter policy).

What differs from the cloud, all of it here:
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from shared import settings as S
from tests.rehearsal.deployment import Deployment, Function, Service, image_of

REPO = Path(__file__).resolve().parents[2]
VENVS = REPO / ".venv-rehearsal"

# Stand-ins for Google's services (all declared local-only in shared/settings.py).
STAND_INS = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "TRAINYARD_VERTEX_EMULATOR_HOST",
             "TRAINYARD_SCHEDULER_EMULATOR_HOST")
# Values swapped for local ones, and why.
SWAPPED = {
    "TRAINYARD_ARTIFACTS_ROOT": "TensorFlow's GCS filesystem (compiling writes under the roots) has no emulator "
                                "endpoint: gs:// is a local directory here",
    "TRAINYARD_PIPELINE_ROOT": "as TRAINYARD_ARTIFACTS_ROOT",
}
# And: the rehearsal runs the images' trees with this machine's Python (3.11, the images' too) and the
# project's .venv, installed from the same requirements/constraints.txt; IAM, OIDC push tokens and
# ingress are not checked by the emulators (tests/unit/test_terraform.py checks the grants statically).


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_zip(function: Function, path: Path) -> Path:
    """The function's source zip, as data.archive_file builds it from local.files."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, source in sorted(function.files.items()):
            archive.writestr(name, source.read_text())
    return path


def function_venv(requirements: Path) -> Path:
    """A virtual environment with what Cloud Functions' build installs from this requirements.txt,
    made once per distinct file (kept in .venv-rehearsal/ between runs). pip resolves and installs as the
    build's pip would; --no-compile leaves the bytecode to the first import (what a function imports, not every
    module of every package: half pip's CPU here, 30 -> 15 s a venv), which changes nothing that is installed."""
    digest = hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()[:16]
    venv = VENVS / digest
    if (venv / ".complete").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                             "--no-compile", "-r", str(requirements)],
                            capture_output=True, text=True, env=_clean_env(), timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"installing {requirements} as Cloud Functions would failed:\n{result.stderr[-3000:]}")
    (venv / ".complete").write_text(requirements.read_text())
    return venv


def installed(venv: Path) -> dict[str, str]:
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze",
                          "--disable-pip-version-check"], capture_output=True, text=True, check=True).stdout
    return {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in out.splitlines() if "==" in line}


def _clean_env() -> dict[str, str]:
    """What a container starts with: a PATH and a HOME, nothing of this machine's settings.

    Its temporary directory stays the test session's scratch: a Cloud Run instance's /tmp is its own
    in-memory filesystem, gone with it, and the submitter's pipeline compiles leave TFX's wheel build
    directories there (47 in /tmp a suite before)."""
    here = S.child_environment()
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": here.get("HOME", "/root"), "LANG": "C.UTF-8",
            **{k: here[k] for k in ("PIP_CACHE_DIR", "TMPDIR") if k in here}}


@dataclass
class Process:
    module: str
    port: int
    popen: subprocess.Popen
    log: Path
    cwd: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Rehearsal:
    def __init__(self, deployment: Deployment, workdir: Path, stand_ins: dict[str, str]):
        unknown = [n for n in stand_ins if n not in STAND_INS]
        assert not unknown, f"not a declared stand-in: {unknown}"
        self.deployment = deployment
        self.workdir = workdir
        self.stand_ins = stand_ins
        self.processes: dict[str, Process] = {}
        self.roots = {"TRAINYARD_ARTIFACTS_ROOT": str(workdir / "gs" / "artifacts"),
                      "TRAINYARD_PIPELINE_ROOT": str(workdir / "gs" / "pipeline-root")}

    # ------------------------------------------------------------------ the environment

    def environment(self, deployable, port: int, platform: dict[str, str]) -> dict[str, str]:
        env = {**_clean_env(), **platform, "PORT": str(port), **deployable.env}
        for name in SWAPPED:
            if name in env:
                env[name] = self.roots[name]
        reads = {v.name for v in S.read_by(deployable.role)}
        env.update({k: v for k, v in self.stand_ins.items() if k in reads})
        return env

    # ------------------------------------------------------------------ assemble and start

    def assemble_function(self, function: Function) -> tuple[Path, Path]:
        zip_path = write_zip(function, self.workdir / f"{function.name}.zip")
        source = self.workdir / "functions" / function.name
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(source)
        return source, function_venv(source / "requirements.txt")

    def start_function(self, function: Function) -> Process:
        source, venv = self.assemble_function(function)
        port = free_port()
        # An HTTP-deployed gen2 function: the platform passes its target and the http signature type;
        # the entry points' @functions_framework.cloud_event decorators make them CloudEvent functions.
        platform = {"K_SERVICE": function.name, "K_REVISION": f"{function.name}-00001", "FUNCTION_TARGET":
                    function.entry_point, "FUNCTION_SIGNATURE_TYPE": "http"}
        env = self.environment(function, port, platform)
        env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
        argv = [str(venv / "bin" / "functions-framework"), "--target", function.entry_point, "--signature-type", "http"]
        return self._spawn(function.module, argv, source, env, port)

    def assemble_image(self, service: Service) -> Path:
        tree = self.workdir / "images" / service.dockerfile.parent.name
        if not tree.exists():
            image_of(service).assemble(tree)
        return tree

    def start_service(self, service: Service) -> Process:
        image = image_of(service)
        tree = self.assemble_image(service)
        port = free_port()
        image_env = {k: v.replace(image.workdir, str(tree)) if v.startswith(image.workdir) else v
                     for k, v in image.env.items()}
        platform = {**image_env, "K_SERVICE": service.name, "K_REVISION": f"{service.name}-00001"}
        env = self.environment(service, port, platform)
        # The image's Python with the pinned packages: the project's .venv (same constraints).
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        argv = service.command + service.args
        return self._spawn(service.module, argv, tree, env, port)

    def _spawn(self, module: str, argv: list[str], cwd: Path, env: dict, port: int) -> Process:
        log = self.workdir / "logs" / f"{module}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = open(log, "ab")
        popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(module, port, popen, log, cwd, env)
        self.processes[module] = process
        return process

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.time() + timeout_s
        for process in self.processes.values():
            while True:
                if process.popen.poll() is not None:
                    raise RuntimeError(f"{process.module} exited ({process.popen.returncode}):\n{process.text()[-3000:]}")
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", process.port)) == 0:
                        break
                if time.time() > deadline:
                    raise RuntimeError(f"{process.module} did not listen within {timeout_s:.0f}s:\n{process.text()[-3000:]}")
                time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes.values():
            try:
                os.killpg(process.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in self.processes.values():
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(timeout=5)

    # ------------------------------------------------------------------ Pub/Sub as Terraform wires it

    def subscribe(self, project: str) -> None:
        """Each Terraform push subscription on the emulator, pointed at the process of its target."""
        from google.cloud import pubsub_v1

        subscriber, publisher = pubsub_v1.SubscriberClient(), pubsub_v1.PublisherClient()
        for push in self.deployment.pushes.values():
            process = self.processes[push.target]
            subscriber.create_subscription(request={
                "name": subscriber.subscription_path(project, push.name),
                "topic": publisher.topic_path(project, push.topic),
                "push_config": {"push_endpoint": process.url + push.path},
                "ack_deadline_seconds": push.ack_deadline_s,
                "retry_policy": {"minimum_backoff": {"seconds": push.minimum_backoff_s},
                                 "maximum_backoff": {"seconds": push.maximum_backoff_s}},
                "dead_letter_policy": {"dead_letter_topic": publisher.topic_path(project, push.dead_letter_topic),
                                       "max_delivery_attempts": push.max_delivery_attempts},
            })
