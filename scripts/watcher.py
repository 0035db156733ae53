"""The local stand-in for Cloud Storage bucket notifications: watches the folders of active schedules whose
data_trigger is a `folder` and publishes, for each file that appeared or changed, the notification a bucket
would send (attributes eventType=OBJECT_FINALIZE, bucketId=`local`, objectId = the path without its first
"/", objectGeneration = the file's mtime in ns; the data an object resource) to `data-landed` on the
Pub/Sub emulator. functions/scheduler's data consumer then decides, as in the cloud.

    python -m scripts.watcher            # started and stopped with the stack (scripts/stack.py)

Polling (TRAINYARD_WATCHER_INTERVAL_S, default 1 s), not inotify: it works on every filesystem and mount.
A file is reported once its size and mtime held for one interval (a copy in progress is not finished data,
as an upload is not an object until finalized); names starting with "." or "~" or ending in .tmp, .part or
.crdownload are partial writes and never reported. On first sight of a folder (a new schedule, or the
watcher restarted) only its newest file changed since the schedule was made is reported: one event is enough
to start a run that reads the whole folder, and the consumer's dedupe and order rules make a repeat harmless.
"""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared import log  # noqa: E402
from shared.contract import topics  # noqa: E402
from shared.domain import data_triggers, runs, schedules  # noqa: E402
from shared.errors import TransientError  # noqa: E402

SCHEDULE_SCAN = 1000
FILES_PER_FOLDER = 100_000  # a folder larger than this is read up to here (logged)
_PARTIAL_SUFFIXES = (".tmp", ".part", ".crdownload")


def _partial(name: str) -> bool:
    return name.startswith((".", "~")) or name.endswith(_PARTIAL_SUFFIXES)


def listing(folder: str) -> dict[str, tuple[int, int]]:
    """Every finished-looking file under `folder`: path → (mtime_ns, size). A missing folder is empty."""
    found: dict[str, tuple[int, int]] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if _partial(name):
                continue
            path = os.path.join(root, name)
            try:
                stat = os.stat(path)
            except OSError:  # removed between the listing and the stat
                continue
            found[path] = (stat.st_mtime_ns, stat.st_size)
            if len(found) >= FILES_PER_FOLDER:
                log.warning("watched folder truncated", folder=folder, files=len(found))
                return found
    return found


def notification(path: str, mtime_ns: int, size: int) -> tuple[dict, dict]:
    """(object resource, attributes) as a JSON_API_V1 bucket notification carries them."""
    name = path.lstrip("/")
    at = datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    resource = {"kind": "storage#object", "bucket": data_triggers.LOCAL_BUCKET, "name": name,
                "generation": str(mtime_ns), "size": str(size), "timeCreated": at, "updated": at}
    attributes = {"eventType": data_triggers.OBJECT_FINALIZE, "payloadFormat": "JSON_API_V1",
                  "bucketId": data_triggers.LOCAL_BUCKET, "objectId": name, "objectGeneration": str(mtime_ns),
                  "eventTime": at}
    return resource, attributes


class Watcher:
    def __init__(self, repo, publisher, clock: Callable[[], datetime] = runs.now):
        self.repo = repo
        self.publisher = publisher
        self.clock = clock
        self.seen: dict[str, dict[str, tuple[int, int]]] = {}  # folder → what was reported (or baselined)
        self.pending: dict[str, dict[str, tuple[int, int]]] = {}  # folder → changes waiting one quiet interval

    def folders(self) -> dict[str, datetime]:
        """Each watched folder → the earliest creation time of the schedules watching it."""
        watched: dict[str, datetime] = {}
        for schedule in self.repo.list_schedules(schedules.ACTIVE, SCHEDULE_SCAN):
            trigger = schedule.get("data_trigger") or {}
            if trigger.get("source") == data_triggers.FOLDER:
                path = trigger["path"]
                watched[path] = min(watched.get(path, schedule["created_at"]), schedule["created_at"])
        return watched

    def scan(self) -> list[str]:
        """One pass over every watched folder; returns the paths published."""
        published = []
        watched = self.folders()
        for folder in set(self.seen) - set(watched):  # no schedule watches it any more
            self.seen.pop(folder, None)
            self.pending.pop(folder, None)
        for folder, since in watched.items():
            now = listing(folder)
            if folder not in self.seen:
                published += self._first_sight(folder, now, since)
                continue
            seen, pending = self.seen[folder], self.pending.setdefault(folder, {})
            changed = {p: v for p, v in now.items() if seen.get(p) != v}
            for path, version in changed.items():
                if pending.get(path) == version and self._publish(path, *version):  # quiet for an interval
                    seen[path] = version
                    published.append(path)
            self.pending[folder] = {p: v for p, v in changed.items() if seen.get(p) != v}
            for path in set(seen) - set(now):  # deleted: a new file of that name is new again
                seen.pop(path)
        return published

    def _first_sight(self, folder: str, now: dict, since: datetime) -> list[str]:
        since_ns = int(since.timestamp() * 1e9)
        newer = sorted((v[0], p) for p, v in now.items() if v[0] > since_ns)
        self.seen[folder] = dict(now)
        self.pending[folder] = {}
        if newer:
            path = newer[-1][1]
            del self.seen[folder][path]  # reported like any change once it is quiet
            self.pending[folder] = {path: now[path]}
        return []

    def _publish(self, path: str, mtime_ns: int, size: int) -> bool:
        resource, attributes = notification(path, mtime_ns, size)
        try:
            message_id = self.publisher.publish(topics.DATA_LANDED, resource, **attributes)
        except TransientError as exc:
            log.warning("watcher publish failed; retrying on the next pass", path=path, error=str(exc))
            return False
        log.info("new data published", path=path, generation=mtime_ns, message_id=message_id)
        return True


def main() -> int:
    from scripts.poll_loop import run_until_stopped
    from shared.composition import root

    return run_until_stopped("watcher", root.settings.watcher_interval_s, Watcher(root.repo, root.publisher).scan)


if __name__ == "__main__":
    sys.exit(main())
