"""scripts/watcher.py with a fake publisher and repository: which files it reports and when (once quiet for a
pass, never partial writes, the newest only on first sight), in the shape the data consumer reads."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from scripts.watcher import Watcher, notification
from shared.contract import topics
from shared.domain import data_triggers
from shared.services import scheduling
from tests.builders import demo_member
from tests.unit.test_schedules import body, env  # noqa: F401 (env is a fixture)

UTC = timezone.utc


def write(path, text="a,b\n", mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


@pytest.fixture
def watched(env, tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    created = datetime.now(UTC) - timedelta(minutes=10)
    scheduling.create_schedule(env["repo"], body(env["ids"], schedule_type="data",
                                                 data_trigger={"source": "folder", "path": str(folder)}),
                               *demo_member("dev@example.com"), env["jobs"], at=created)
    return {"folder": folder, "created": created, "watcher": Watcher(env["repo"], env["publisher"]), **env}


def published(env):
    return [(p["name"], a) for t, p, a in env["publisher"].messages if t == topics.DATA_LANDED]


def test_a_new_file_is_reported_once_it_is_quiet_and_once_only(watched):
    w, folder = watched["watcher"], watched["folder"]
    assert w.scan() == []  # first sight of an empty folder
    path = write(folder / "day1" / "part-1.csv")
    assert w.scan() == []  # just written: maybe still being copied
    assert w.scan() == [str(path)]
    assert w.scan() == [] and w.scan() == []
    ((name, attributes),) = published(watched)
    assert name == str(path).lstrip("/") and attributes["bucketId"] == "local"
    assert attributes["eventType"] == "OBJECT_FINALIZE"


def test_a_file_still_growing_waits_and_a_rewrite_is_new_data(watched):
    w, folder = watched["watcher"], watched["folder"]
    w.scan()
    path = write(folder / "a.csv", "1\n", watched["created"] + timedelta(minutes=1))
    w.scan()
    write(path, "1\n2\n", watched["created"] + timedelta(minutes=2))  # grew between passes
    assert w.scan() == []
    assert w.scan() == [str(path)]
    write(path, "1\n2\n3\n", watched["created"] + timedelta(minutes=3))
    w.scan()
    assert w.scan() == [str(path)]
    generations = [a["objectGeneration"] for _, a in published(watched)]
    assert len(generations) == 2 and generations[0] != generations[1]


def test_partial_and_hidden_files_are_never_reported(watched):
    w, folder = watched["watcher"], watched["folder"]
    w.scan()
    for name in (".hidden.csv", "upload.csv.part", "x.tmp", "~lock", "dl.crdownload"):
        write(folder / name)
    write(folder / ".git" / "objects.csv")
    w.scan()
    assert w.scan() == [] and published(watched) == []


def test_on_first_sight_only_the_newest_file_since_the_schedule_is_reported(watched):
    folder, created = watched["folder"], watched["created"]
    write(folder / "old.csv", mtime=created - timedelta(days=1))
    write(folder / "new-1.csv", mtime=created + timedelta(minutes=1))
    newest = write(folder / "new-2.csv", mtime=created + timedelta(minutes=2))
    w = watched["watcher"]
    assert w.scan() == []
    assert w.scan() == [str(newest)]
    assert w.scan() == []


def test_what_the_watcher_sends_is_what_the_consumer_reads(tmp_path):
    path = write(tmp_path / "in" / "x.csv")
    stat = path.stat()
    resource, attributes = notification(str(path), stat.st_mtime_ns, stat.st_size)
    event = data_triggers.from_message(attributes, resource, datetime.now(UTC))
    assert (event.source, event.location, event.version) == ("folder", str(path), str(stat.st_mtime_ns))
    assert data_triggers.matches({"source": "folder", "path": str(tmp_path / "in")}, event)
    assert abs(event.occurred_at.timestamp() - stat.st_mtime) < 1e-3


def test_a_folder_no_schedule_watches_is_forgotten(watched):
    w = watched["watcher"]
    w.scan()
    (schedule,) = watched["repo"].schedules.values()
    scheduling.cancel_schedule(watched["repo"], watched["effects"], schedule["id"], demo_member("dev@example.com")[0])
    write(watched["folder"] / "late.csv")
    w.scan()
    assert w.scan() == [] and w.seen == {}
