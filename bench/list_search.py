"""Run-list search at size (issue 26 part 4; not a test): rows the repository returns and wall time for
one search request, the server's list (shared/services/listing.py: a search token queried with
array-contains) against its peer, the list it replaced (the version of shared/services/run_data.py
at BEFORE, loaded from git: a scan of the newest runs, at most 5,000, matching text in memory),
on the in-memory repository (tests/fakes.py), which keeps Firestore's query semantics but not its
costs — so the row counts carry over to Firestore reads, the times only as a ratio.

    nice -n 10 .venv/bin/python bench/list_search.py [--sizes 2000 6000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.domain import run_document  # noqa: E402
from shared.services import listing  # noqa: E402
from tests.builders import demo_member  # noqa: E402
from tests.fakes import InMemoryRepository  # noqa: E402

BEFORE = "0baaf21"  # the last commit before the server-side search
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def before_module():
    source = subprocess.run(["git", "show", f"{BEFORE}:shared/services/run_data.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "run_data_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("run_data_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Counting:
    """The repository, counting the rows its list queries return (Firestore bills each as a read)."""

    def __init__(self, repo):
        self.repo, self.rows = repo, 0

    def list_runs(self, filters, limit, after=None):
        found = self.repo.list_runs(filters, limit, after)
        self.rows += len(found)
        return found

    def count_runs(self, filters):
        self.rows += 1  # an aggregation query: one read per 1,000 entries, at least one
        return self.repo.count_runs(filters)


def seeded(size: int) -> InMemoryRepository:
    repo = InMemoryRepository()
    for n in range(size):
        doc = run_document.check({"id": f"tr-{n:06d}", "name": f"recs-{n:06d}", "status": "completed",
                                  "model_type": "retrieval", "team": "demo", "created_by": "dev@example.com",
                                  "created_at": T0 + timedelta(minutes=n), "run_number": n + 1, "version": 1})
        repo.runs[doc["id"]] = doc
    return repo


def measure(call, repeats: int) -> tuple[float, float, int, list[str]]:
    times, rows, found = [], 0, []
    for _ in range(repeats):
        start = time.perf_counter()
        rows, found = call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times) - min(times), rows, found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 6000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    old = before_module()
    who = demo_member()[0]
    print(f"load before: {open('/proc/loadavg').read().split()[0]}")
    for size in args.sizes:
        repo = seeded(size)
        wanted = "recs-000000"  # the oldest run

        def new():
            counting = Counting(repo)
            page = listing.list_runs(counting, {"search": wanted}, who, b"bench-key" * 4)
            return counting.rows, [r["id"] for r in page["training_runs"]]

        def before():
            counting = Counting(repo)
            page = old.list_runs(counting, {"search": wanted}, who)
            return counting.rows, [r["id"] for r in page["training_runs"]]

        for name, call in (("before (scan, text in memory)", before), ("after (search token)", new)):
            median, spread, rows, found = measure(call, args.repeats)
            print(f"{size} runs, search for the oldest — {name}: found {found or 'nothing'}, "
                  f"{rows} rows read, median {median:.1f} ms (spread {spread:.1f} ms, {args.repeats} repeats)")
    print(f"load after: {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()
