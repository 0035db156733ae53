"""The local stack: the official Firestore and Pub/Sub emulators, the topics and push subscriptions
production has, and every function under functions-framework on its own port.

    python -m scripts.stack up      # start (idempotent: a running stack is reported, not doubled)
    python -m scripts.stack down    # stop exactly the processes `up` started
    python -m scripts.stack status

Ports and paths come from the environment (TRAINYARD_*_PORT, TRAINYARD_LOCAL_DIR), so two stacks
(e.g. the test suite's and yours) can run side by side. Tests use the same `Stack` class.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from scripts import firestore_rules
from shared.settings import BY_NAME, LOCAL_DEV_TOKEN, child_environment, export, read, read_or_default

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def _default_port(port_env: str) -> int:
    """A port's default is its declaration's (shared/settings.py), not restated here."""
    return int(BY_NAME[port_env].default)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Function:
    """One functions-framework process: a target in a source file, fed by push subscriptions."""

    name: str
    source: str
    target: str
    port_env: str
    signature: str = "cloudevent"
    topics: tuple[str, ...] = ()
    ack_deadline_s: int = 60

    @property
    def default_port(self) -> int:
        return _default_port(self.port_env)


# The consumers are terraform/consumers.json's rows, the table Terraform deploys and subscribes in the
# cloud: the same topics, handlers and ack deadlines here (only the retry backoff is faster locally).
CONSUMERS_TABLE = REPO / "terraform" / "consumers.json"


def consumers() -> tuple[Function, ...]:
    rows = json.loads(CONSUMERS_TABLE.read_text())["consumers"]
    return tuple(Function(name, f"{row['source']}/main.py", row["entry_point"], row["local_port"],
                          topics=(row["topic"],), ack_deadline_s=row["ack_deadline_seconds"])
                 for name, row in rows.items())


FUNCTIONS = (Function("api", "functions/api/main.py", "handle", "TRAINYARD_API_PORT", signature="http"),) + consumers()


@dataclass
class Service:
    """A long-running local process that is not a function (e.g. the local pipeline service): started
    as `python -m <module> --port <port>` with the functions' environment."""

    name: str
    module: str
    port_env: str
    args: tuple[str, ...] = ()

    @property
    def default_port(self) -> int:
        return _default_port(self.port_env)


SERVICES = (
    Service("pipeline_service", "pipeline_compiler.local_service", "TRAINYARD_PIPELINE_PORT"),
    # The local endpoints' server: loads deployed SavedModels and answers predict requests.
    Service("prediction_server", "scripts.prediction_server", "TRAINYARD_PREDICTION_PORT"),
)


@dataclass
class StackConfig:
    project: str = BY_NAME["GOOGLE_CLOUD_PROJECT"].default
    local_dir: Path = REPO / BY_NAME["TRAINYARD_LOCAL_DIR"].default
    firestore_port: int = _default_port("TRAINYARD_FIRESTORE_PORT")
    pubsub_port: int = _default_port("TRAINYARD_PUBSUB_PORT")
    function_ports: dict = field(default_factory=dict)
    dev_token: str = LOCAL_DEV_TOKEN
    dev_identity: str = BY_NAME["TRAINYARD_DEV_IDENTITY"].default
    extra_env: dict = field(default_factory=dict)
    functions: tuple = FUNCTIONS
    services: tuple = SERVICES
    # scripts/ticker.py: what Cloud Scheduler does in the cloud (publishes schedule-trigger on time).
    ticker: bool = True
    # scripts/watcher.py: what bucket notifications do in the cloud (publishes data-landed for new files).
    watcher: bool = True

    @classmethod
    def from_env(cls) -> "StackConfig":
        return cls(
            project=read_or_default("GOOGLE_CLOUD_PROJECT"),
            local_dir=Path(read("TRAINYARD_LOCAL_DIR") or REPO / BY_NAME["TRAINYARD_LOCAL_DIR"].default).resolve(),
            firestore_port=int(read_or_default("TRAINYARD_FIRESTORE_PORT")),
            pubsub_port=int(read_or_default("TRAINYARD_PUBSUB_PORT")),
            function_ports={f.name: int(read_or_default(f.port_env)) for f in FUNCTIONS + SERVICES},
            # The API's own default is no token (shared/settings.py): the stack is what issues this one.
            dev_token=read_or_default("TRAINYARD_DEV_TOKEN") or LOCAL_DEV_TOKEN,
            dev_identity=read_or_default("TRAINYARD_DEV_IDENTITY"),
        )

    @classmethod
    def ephemeral(cls, local_dir: Path, **kwargs) -> "StackConfig":
        """Free ports everywhere: for tests running beside a developer's stack."""
        return cls(local_dir=local_dir, firestore_port=free_port(), pubsub_port=free_port(),
                   function_ports={f.name: free_port() for f in FUNCTIONS + SERVICES}, **kwargs)

    def port(self, name: str) -> int:
        fn = next(f for f in self.functions + self.services if f.name == name)
        return self.function_ports.get(name, fn.default_port)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port('api')}"

    @property
    def rules_domain(self) -> str:
        """The organisation the emulator's rules admit: TRAINYARD_ALLOWED_DOMAIN, else the developer's domain."""
        return self.extra_env.get("TRAINYARD_ALLOWED_DOMAIN") or self.dev_identity.rpartition("@")[2]

    @property
    def state_file(self) -> Path:
        return self.local_dir / "stack" / "processes.json"

    @property
    def log_dir(self) -> Path:
        return self.local_dir / "stack" / "logs"

    def emulator_env(self) -> dict:
        return {"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{self.firestore_port}",
                "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.pubsub_port}", "GOOGLE_CLOUD_PROJECT": self.project}

    def cursor_key(self) -> str:
        """The API's page-token key for this .local directory: made once and kept (owner-only), so a
        restarted stack still honours the tokens it issued."""
        path = self.local_dir / "stack" / "cursor-key"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(secrets.token_urlsafe(32))
        except FileExistsError:
            pass
        return path.read_text().strip()

    def function_env(self) -> dict:
        return child_environment(**{
            **self.emulator_env(),
            "PYTHONPATH": str(REPO),
            "TRAINYARD_AUTH": "local", "TRAINYARD_DEV_TOKEN": self.dev_token,
            "TRAINYARD_DEV_IDENTITY": self.dev_identity,
            "TRAINYARD_ADMINS": self.dev_identity,  # the laptop's developer operates its stack (admin routes)
            "TRAINYARD_CURSOR_KEY": self.cursor_key(),
            "TRAINYARD_LOCAL_DIR": str(self.local_dir),
            "TRAINYARD_ARTIFACTS_ROOT": str(self.local_dir / "artifacts"),
            "TRAINYARD_PIPELINE_ROOT": str(self.local_dir / "pipeline-root"),
            "TRAINYARD_PIPELINE_BACKEND": "local",
            **({"TRAINYARD_LOCAL_PIPELINE_URL": f"http://127.0.0.1:{self.port('pipeline_service')}"}
               if any(s.name == "pipeline_service" for s in self.services) else {}),
            # One registry for the Pusher and push-anyway; endpoints shared by run_commands and the server.
            "TRAINYARD_LOCAL_REGISTRY_DIR": str(self.local_dir / "registry"),
            "TRAINYARD_LOCAL_ENDPOINTS_DIR": str(self.local_dir / "endpoints"),
            **({"TRAINYARD_PREDICTION_URL": f"http://127.0.0.1:{self.port('prediction_server')}"}
               if any(s.name == "prediction_server" for s in self.services) else {}),
            **self.extra_env,
        })


class Stack:
    def __init__(self, config: StackConfig):
        self.config = config
        self.processes: dict[str, dict] = {}
        self._popens: dict[str, subprocess.Popen] = {}  # this process's own children, to see an early exit
        self.started_at, self.ready_after = time.time(), {}  # seconds from `up` until each was ready

    # ------------------------------------------------------------------ lifecycle

    def launches(self) -> list[Launch]:
        """Every process of the stack with its readiness probe: the two emulators, each function, each service."""
        if not shutil.which("gcloud"):
            raise RuntimeError("gcloud is not installed: the local stack needs the Google Cloud CLI with the "
                               "Firestore and Pub/Sub emulators (and Java 17)")
        cfg, env = self.config, self.config.function_env()
        # The security rules Terraform deploys, so the page's listeners are checked here as in the cloud
        # (the server client libraries present the emulator's admin credential: rules do not apply to them).
        rules = firestore_rules.write(cfg.rules_domain, cfg.local_dir / "stack" / "firestore.rules")
        launches = [
            Launch("firestore", ["gcloud", "emulators", "firestore", "start",
                                 f"--host-port=127.0.0.1:{cfg.firestore_port}", f"--rules={rules}"],
                   emulator_environment(), http_ready(f"http://127.0.0.1:{cfg.firestore_port}")),
            Launch("pubsub", ["gcloud", "beta", "emulators", "pubsub", "start",
                              f"--host-port=127.0.0.1:{cfg.pubsub_port}", f"--project={cfg.project}"],
                   emulator_environment(), http_ready(f"http://127.0.0.1:{cfg.pubsub_port}"))]
        launches += [Launch(fn.name, [str(VENV_BIN / "functions-framework"), "--target", fn.target, "--source",
                                      str(REPO / fn.source), "--signature-type", fn.signature, "--host", "127.0.0.1",
                                      "--port", str(cfg.port(fn.name))], env, tcp_ready(cfg.port(fn.name)))
                     for fn in cfg.functions]
        launches += [Launch(service.name, [sys.executable, "-m", service.module, "--port", str(cfg.port(service.name)),
                                           *service.args], env, tcp_ready(cfg.port(service.name)))
                     for service in cfg.services]
        return launches

    def up(self, timeout_s: float = 90) -> None:
        """Starts every process at once and waits on each one's readiness: no process needs another to
        start (clients connect on first use), so the stack is ready when its slowest process is, not
        after the sum (the pipeline service, which loads TFX before it listens, is the long pole).
        The topics and push subscriptions are made as soon as the Pub/Sub emulator answers (a push to a
        function still starting is retried), the ticker and watcher after them (they publish)."""
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        if self.running():
            raise RuntimeError(f"a stack is already running (see {self.config.state_file}); `make down` first")
        self.started_at, self.ready_after = time.time(), {}
        try:
            launches = self.launches()
            for launch in launches:
                self._spawn(launch.name, launch.argv, launch.env)
            probes = {launch.name: launch.ready for launch in launches}
            deadline = self.started_at + timeout_s
            emulators = {name: probes.pop(name) for name in ("pubsub", "firestore") if name in probes}
            if emulators:
                self._await_ready(emulators, deadline)
                self.create_topics_and_subscriptions()
                self.ready_after["topics"] = round(time.time() - self.started_at, 1)
            self._await_ready(probes, deadline)
            env = self.config.function_env()
            if self.config.ticker:  # after the topics: it publishes to schedule-trigger
                self._spawn("ticker", [sys.executable, "-m", "scripts.ticker"], env)
            if self.config.watcher:  # after the topics: it publishes to data-landed
                self._spawn("watcher", [sys.executable, "-m", "scripts.watcher"], env)
        except BaseException:
            self.down()
            raise

    def down(self) -> list[str]:
        stopped = []
        for name, proc in self._load().items():
            try:
                os.killpg(proc["pgid"], signal.SIGTERM)
                stopped.append(name)
            except ProcessLookupError:
                continue
        deadline = time.time() + 10
        for name, proc in self._load().items():
            while time.time() < deadline and self._group_alive(name, proc["pgid"]):
                time.sleep(0.1)
            if self._group_alive(name, proc["pgid"]):
                os.killpg(proc["pgid"], signal.SIGKILL)
        if self.config.state_file.exists():
            self.config.state_file.unlink()
        self.processes, self._popens = {}, {}
        return stopped

    def kill(self, name: str) -> None:
        """SIGKILL one process group, as a crash would (tests inject faults with it)."""
        proc = self._load()[name]
        os.killpg(proc["pgid"], signal.SIGKILL)
        deadline = time.time() + 10
        while _alive(proc["pgid"]) and time.time() < deadline:
            try:  # our own child stays a zombie (and "alive") until reaped
                os.waitpid(proc["pid"], os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)

    def respawn(self, name: str, timeout_s: float = 60) -> None:
        """Start a stopped function or service again with its first command line."""
        argv = self._load()[name]["argv"]
        self._spawn(name, argv, self.config.function_env())
        if name in self.config.function_ports:
            self._await_ready({name: tcp_ready(self.config.port(name))}, time.time() + timeout_s)

    def _group_alive(self, name: str, pgid: int) -> bool:
        """Whether any process of the group is left; our own child is reaped first (a zombie leader
        would keep its group "alive" until the 10 s SIGKILL)."""
        popen = self._popens.get(name)
        if popen is not None:
            popen.poll()
        return _alive(pgid)

    def running(self) -> bool:
        return any(_alive(p["pgid"]) for p in self._load().values())

    # ------------------------------------------------------------------ Pub/Sub wiring

    def create_topics_and_subscriptions(self) -> None:
        from google.api_core import exceptions
        from google.cloud import pubsub_v1

        from shared.contract import topics

        export(self.config.emulator_env())
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        project = self.config.project
        for topic in topics.ALL + tuple(topics.dead_letter(t) for t in topics.ALL):
            try:
                publisher.create_topic(name=publisher.topic_path(project, topic))
            except exceptions.AlreadyExists:
                pass
        for fn in self.config.functions:
            for topic in fn.topics:
                # The push path names the topic, which is how functions-framework builds the event source.
                endpoint = f"http://127.0.0.1:{self.config.port(fn.name)}/projects/{project}/topics/{topic}"
                request = {
                    "name": subscriber.subscription_path(project, f"{topic}-{fn.name}"),
                    "topic": publisher.topic_path(project, topic),
                    "push_config": {"push_endpoint": endpoint},
                    "ack_deadline_seconds": fn.ack_deadline_s,
                    "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 30}},
                    "dead_letter_policy": {"dead_letter_topic": publisher.topic_path(project, topics.dead_letter(topic)),
                                           "max_delivery_attempts": 10},
                }
                try:
                    subscriber.create_subscription(request=request)
                except exceptions.AlreadyExists:
                    pass
        for topic in topics.ALL:  # keep what was dead-lettered, to look at
            try:
                subscriber.create_subscription(name=subscriber.subscription_path(project, f"{topics.dead_letter(topic)}-hold"),
                                               topic=publisher.topic_path(project, topics.dead_letter(topic)))
            except exceptions.AlreadyExists:
                pass

    # ------------------------------------------------------------------ internals

    def _spawn(self, name: str, argv: list[str], env) -> None:
        log = open(self.config.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                start_new_session=True)  # its own process group: `down` stops its children too
        self._popens[name] = proc
        self.processes[name] = {"pid": proc.pid, "pgid": os.getpgid(proc.pid), "argv": argv,
                                "log": str(self.config.log_dir / f"{name}.log")}
        self.config.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.config.state_file.write_text(json.dumps(self.processes, indent=2))

    def _load(self) -> dict:
        if self.processes:
            return self.processes
        if self.config.state_file.exists():
            return json.loads(self.config.state_file.read_text())
        return {}

    def _await_ready(self, probes: dict[str, Callable[[], bool]], deadline: float) -> None:
        """Polls every named probe in turn until each passes, noting when (self.ready_after). A process
        that exits first fails the start at once, by name, with its log's last lines; at the deadline,
        the start fails naming every process still not ready."""
        pending = dict(probes)
        while pending:
            for name, ready in list(pending.items()):
                if ready():
                    self.ready_after[name] = round(time.time() - self.started_at, 1)
                    del pending[name]
                    continue
                popen = self._popens.get(name)
                if popen is not None and popen.poll() is not None:
                    raise StackStartError(f"{name} exited with code {popen.returncode} before it was ready "
                                          f"(log: {self.processes[name]['log']}):\n{_tail(self.processes[name]['log'])}")
            if pending and time.time() > deadline:
                raise StackStartError(f"not ready within {deadline - self.started_at:.0f}s: {', '.join(sorted(pending))} "
                                      f"(logs: {self.config.log_dir})")
            if pending:
                time.sleep(0.2)


class StackStartError(RuntimeError):
    """A process of the stack did not become ready: the message names it."""


# The emulators are Java servers that live for a test or a demo: HotSpot's C1 compiler alone (no C2) and the serial
# collector halve their CPU and lose no speed over such a workload (a Firestore emulator serving 2,000 writes,
# queries and transactions: 12 -> 6 CPU s, 7.8 -> 6.5 s): on 2 cores, CPU the rest of the suite gets back.
EMULATOR_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def emulator_environment() -> dict[str, str]:
    """What a Java emulator starts with: our environment and EMULATOR_JVM_OPTIONS after any JAVA_TOOL_OPTIONS
    already set (the JVM reads that variable itself; gcloud passes the environment on)."""
    env = child_environment()
    env["JAVA_TOOL_OPTIONS"] = " ".join(filter(None, [env.get("JAVA_TOOL_OPTIONS", ""), EMULATOR_JVM_OPTIONS]))
    return env


@dataclass
class Launch:
    """One process of the stack: its command line, environment and readiness probe."""

    name: str
    argv: list[str]
    env: dict
    ready: Callable[[], bool]


def http_ready(url: str) -> Callable[[], bool]:
    """Ready when the URL answers (the emulators answer their root before they serve requests)."""
    def probe() -> bool:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return True
        except OSError:
            return False
    return probe


def tcp_ready(port: int) -> Callable[[], bool]:
    """Ready when something listens on the port (functions-framework binds after importing its target)."""
    def probe() -> bool:
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", port)) == 0
    return probe


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def readiness(stack: Stack) -> str:
    """When each process was ready, slowest first: where a start's time went."""
    return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in
                     sorted(stack.ready_after.items(), key=lambda item: -item[1]))


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    stack = Stack(StackConfig.from_env())
    if command == "up":
        started = time.time()
        stack.up()
        cfg = stack.config
        print(f"Trainyard local stack is up ({time.time() - started:.1f}s).")
        print(f"  Ready after: {readiness(stack)}")
        print(f"  API:        {cfg.api_url}   (Authorization: Bearer {cfg.dev_token})")
        print(f"  Firestore:  127.0.0.1:{cfg.firestore_port}   Pub/Sub: 127.0.0.1:{cfg.pubsub_port}")
        print(f"  Logs:       {cfg.log_dir}")
        print("  Stop with:  make down")
        return 0
    if command == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    if command == "status":
        for name, proc in stack._load().items():
            print(f"{name:18} pid {proc['pid']:>7}  {'running' if _alive(proc['pgid']) else 'stopped'}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
