"""scripts/stack.py's start: every process at once, each waited on by its own readiness probe; a process
that dies or never gets ready is named. Small Python processes stand in for the emulators and functions."""
from __future__ import annotations

import os
import sys

import pytest

from scripts.stack import FUNCTIONS, SERVICES, Launch, Stack, StackConfig, StackStartError, free_port, tcp_ready

# Touches its own "started" file, waits for another file (or none: "-"), then listens on its port.
LISTENER = """
import pathlib, socket, sys, time
port, started, after = int(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
started.touch()
while after != "-" and not pathlib.Path(after).exists():
    time.sleep(0.05)
server = socket.socket(); server.bind(("127.0.0.1", port)); server.listen()
time.sleep(600)
"""


class ScriptedStack(Stack):
    """The real start (spawn, wait, topics, stop) over stand-in processes; topics leave a marker file."""

    def __init__(self, config: StackConfig, launches: list[Launch]):
        super().__init__(config)
        self.scripted = launches
        self.topics_marker = config.local_dir / "topics-made"

    def launches(self) -> list[Launch]:
        return self.scripted

    def create_topics_and_subscriptions(self) -> None:
        self.topics_marker.touch()


@pytest.fixture
def config(tmp_path) -> StackConfig:
    return StackConfig.ephemeral(tmp_path, functions=(), services=(), ticker=False, watcher=False)


def listener(tmp_path, name: str, after: str = "-") -> Launch:
    port = free_port()
    return Launch(name, [sys.executable, "-c", LISTENER, str(port), str(tmp_path / f"{name}.started"), after],
                  dict(os.environ), tcp_ready(port))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_process_starts_before_any_is_waited_on(config, tmp_path):
    # Each listens only once the other has started: a start that waited on one before spawning the next would hang.
    stack = ScriptedStack(config, [listener(tmp_path, "first", after=str(tmp_path / "second.started")),
                                   listener(tmp_path, "second", after=str(tmp_path / "first.started"))])
    try:
        stack.up(timeout_s=30)
        assert set(stack.ready_after) == {"first", "second"}
    finally:
        stack.down()


def test_topics_are_made_once_pubsub_answers_not_after_the_slowest_process(config, tmp_path):
    stack = ScriptedStack(config, [listener(tmp_path, "pubsub"),
                                   listener(tmp_path, "pipeline_service", after=str(config.local_dir / "topics-made"))])
    try:
        stack.up(timeout_s=30)
        assert stack.ready_after["pubsub"] <= stack.ready_after["topics"] <= stack.ready_after["pipeline_service"]
    finally:
        stack.down()


def test_a_process_that_exits_fails_the_start_at_once_by_name_with_its_log(config, tmp_path):
    healthy = listener(tmp_path, "api")
    crashing = Launch("pipeline_service", [sys.executable, "-c", "import sys; print('ImportError: no tfx'); sys.exit(3)"],
                      dict(os.environ), tcp_ready(free_port()))
    stack = ScriptedStack(config, [healthy, crashing])
    with pytest.raises(StackStartError) as failure:
        stack.up(timeout_s=120)
    message = str(failure.value)
    assert "pipeline_service exited with code 3 before it was ready" in message
    assert "ImportError: no tfx" in message  # the log's last lines, so the cause is on screen
    assert "not ready within" not in message  # it did not sit out the timeout
    assert not stack.running() and not config.state_file.exists()  # the healthy one was stopped too


def test_the_timeout_names_only_the_processes_still_not_ready(config, tmp_path):
    never = listener(tmp_path, "prediction_server", after=str(tmp_path / "never"))
    stack = ScriptedStack(config, [listener(tmp_path, "api"), never])
    with pytest.raises(StackStartError, match=r"not ready within 3s: prediction_server \(logs"):
        stack.up(timeout_s=3)
    assert not stack.running()


def test_down_reaps_its_own_children_without_waiting_for_the_kill(config, tmp_path):
    stack = ScriptedStack(config, [listener(tmp_path, "api")])
    stack.up(timeout_s=30)
    pid = stack.processes["api"]["pid"]
    assert stack.down() == ["api"]
    assert not alive(pid)  # reaped, not a zombie left until the SIGKILL


def test_the_real_stack_launches_both_emulators_every_function_and_service(tmp_path, monkeypatch):
    monkeypatch.setattr("scripts.stack.shutil.which", lambda _: "/usr/bin/gcloud")
    launches = Stack(StackConfig.ephemeral(tmp_path)).launches()
    names = [launch.name for launch in launches]
    assert sorted(names) == sorted(["firestore", "pubsub", *(f.name for f in FUNCTIONS + SERVICES)])
    assert all(callable(launch.ready) for launch in launches)


def test_only_the_java_emulators_get_the_jvm_options_after_any_the_caller_set(tmp_path, monkeypatch):
    from scripts.stack import EMULATOR_JVM_OPTIONS

    monkeypatch.setattr("scripts.stack.shutil.which", lambda _: "/usr/bin/gcloud")
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Xmx2g")
    launches = {launch.name: launch for launch in Stack(StackConfig.ephemeral(tmp_path)).launches()}
    for emulator in ("firestore", "pubsub"):
        assert launches[emulator].env["JAVA_TOOL_OPTIONS"] == f"-Xmx2g {EMULATOR_JVM_OPTIONS}"
    assert all(launch.env.get("JAVA_TOOL_OPTIONS") == "-Xmx2g" for name, launch in launches.items()
               if name not in ("firestore", "pubsub"))
