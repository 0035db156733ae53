"""In-memory fakes with the same semantics as the real adapters (cosmicpython style)."""
from __future__ import annotations

import copy
import itertools
import threading
import uuid
from datetime import datetime
from typing import Optional

from google.api_core.exceptions import AlreadyExists

from shared.errors import NotFound, TransientError
from shared.adapters.pipelines import JobRequest
from shared.contract.pipeline_jobs import JobSnapshot
from shared.adapters.repository import SEARCH_KEY, SINCE_KEY, TEAMS_KEY, UNTIL_KEY, epoch_doc_id, ledger_id
from shared.domain import run_document, run_search
from shared.domain.runs import now


class RecordedRest:
    """shared.adapters.rest_client.RestClient answering with recorded API shapes: (url marker, answer)
    pairs, an answer being a JSON body, an exception to raise or a function of the call's kwargs."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def call(self, method, url, what, **kwargs):
        self.calls.append((method, url, kwargs))
        for marker, answer in self.answers:
            if marker in url:
                if isinstance(answer, Exception):
                    raise answer
                return answer(kwargs) if callable(answer) else answer
        raise AssertionError(f"unexpected call {url}")
def _matches(doc: dict, filters: dict) -> bool:
    """Firestore's semantics: equality per field (a falsy value: no filter); `team` or `status` a list, any
    of which; a search token the stored run carries (array-contains: a run stored without tokens has none);
    created_at in [since, until)."""
    for key, value in filters.items():
        if (key == TEAMS_KEY and value is not None) or (key == "status" and isinstance(value, (list, tuple))):
            if doc.get(key) not in value:
                return False
        elif key == SEARCH_KEY:
            if value and value not in (doc.get(run_search.FIELD) or []):
                return False
        elif key in (SINCE_KEY, UNTIL_KEY):
            if value and not (doc["created_at"] >= value if key == SINCE_KEY else doc["created_at"] < value):
                return False
        elif value and doc.get(key) != value:
            return False
    return True


def _page(docs, limit, after):
    """Firestore's order_by(created_at desc, __name__ desc).start_after(cursor): a document without
    created_at is not in an index ordered by it, so not listed."""
    ordered = sorted((d for d in docs if d.get("created_at") is not None), key=lambda d: (d["created_at"], d["id"]),
                     reverse=True)
    if after:
        ordered = [d for d in ordered if (d["created_at"], d["id"]) < after]
    return copy.deepcopy(ordered[:limit])


class InMemoryRepository:
    def __init__(self):
        self.runs: dict[str, dict] = {}
        self.history: dict[str, dict[str, dict]] = {}
        self.catalog: dict[str, dict[str, dict]] = {}
        self.counters: dict[str, int] = {}
        self.schedules: dict[str, dict] = {}
        self.statuses: dict[str, dict] = {}
        self.audit: dict[str, dict] = {}
        self.fail_audit: Optional[Exception] = None  # the next audit writes raise this
        self.ledgers: dict[str, dict] = {}
        self.access: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.writes = 0

    def create_run(self, doc, counter_key, run_id=None):
        with self.lock:
            if run_id and run_id in self.runs:
                return copy.deepcopy(self.runs[run_id]), False
            number = self.counters.get(counter_key, 0) + 1
            self.counters[counter_key] = number
            new_id = run_id or f"{counter_key}-r{number}"
            stored = run_document.check({**copy.deepcopy(doc), "id": new_id, "run_number": number, "version": 1,
                                         "updated_at": now()})
            self.runs[new_id] = stored
            self.writes += 1
            return copy.deepcopy(stored), True

    def get_run(self, run_id):
        doc = self.runs.get(run_id)
        return copy.deepcopy(doc) if doc else None

    def mutate_run(self, run_id, mutate):
        with self.lock:
            if run_id not in self.runs:
                raise NotFound(f"training run {run_id}")
            current = copy.deepcopy(self.runs[run_id])
            new = mutate(current)
            if new is None:
                return None
            new = run_document.check({**copy.deepcopy(new), "version": self.runs[run_id].get("version", 0) + 1,
                                      "updated_at": now()})
            self.runs[run_id] = new
            self.writes += 1
            return copy.deepcopy(new)

    def delete_run(self, run_id, check):
        with self.lock:
            if run_id not in self.runs:
                raise NotFound(f"training run {run_id}")
            check(copy.deepcopy(self.runs[run_id]))
            self.history.pop(run_id, None)
            return self.runs.pop(run_id)

    def _matching(self, filters):
        return [r for r in self.runs.values() if _matches(r, filters)]

    def list_runs(self, filters, limit, after=None):
        return _page(self._matching(filters), limit, after)

    def count_runs(self, filters):
        return len(self._matching(filters))

    def put_epoch(self, run_id, attempt, epoch):
        self.history.setdefault(run_id, {})[epoch_doc_id(attempt, epoch["epoch"])] = {**epoch, "attempt": attempt}

    def list_epochs(self, run_id, attempt):
        return sorted((e for e in self.history.get(run_id, {}).values() if e["attempt"] == attempt),
                      key=lambda e: e["epoch"])

    def create_catalog(self, kind, doc):
        with self.lock:
            doc = copy.deepcopy(doc)
            doc["id"] = doc.get("id") or uuid.uuid4().hex[:20]
            if doc["id"] in self.catalog.get(kind, {}):  # Firestore's create() refuses an existing id
                raise AlreadyExists(f"{kind}/{doc['id']}")
            if kind == "experiments" and not doc.get("number"):
                self.counters["experiment-number"] = self.counters.get("experiment-number", 0) + 1
                doc["number"] = self.counters["experiment-number"]
            self.catalog.setdefault(kind, {})[doc["id"]] = doc
            return copy.deepcopy(doc)

    def get_catalog(self, kind, doc_id):
        doc = self.catalog.get(kind, {}).get(doc_id)
        return copy.deepcopy(doc) if doc else None

    def get_catalog_many(self, refs):
        return [self.get_catalog(kind, doc_id) for kind, doc_id in refs]

    def list_catalog(self, kind, limit, filters=None):
        items = [d for d in self.catalog.get(kind, {}).values() if _matches(d, filters or {})]
        if not set(filters or {}) - {TEAMS_KEY}:
            items.sort(key=lambda d: d.get("created_at") or datetime.min, reverse=True)
        return copy.deepcopy(items[:limit])

    def replace_catalog(self, kind, doc):
        with self.lock:
            if doc["id"] not in self.catalog.get(kind, {}):
                raise NotFound(f"{kind} {doc['id']}")
            self.catalog[kind][doc["id"]] = copy.deepcopy(doc)
            return copy.deepcopy(doc)

    def page_catalog(self, kind, filters, limit, after=None):
        return _page([d for d in self.catalog.get(kind, {}).values() if _matches(d, filters)], limit, after)

    def set_catalog_team(self, kind, doc_id, team):
        with self.lock:
            self.catalog[kind][doc_id]["team"] = team
            return copy.deepcopy(self.catalog[kind][doc_id])

    def top_experiments(self, model_type, metric, descending, limit, teams=None):
        items = [d for d in self.catalog.get("experiments", {}).values()
                 if d.get("model_type") == model_type and (d.get("metrics") or {}).get(metric) is not None
                 and _matches(d, {TEAMS_KEY: teams})]
        items.sort(key=lambda d: d["metrics"][metric], reverse=descending)
        return copy.deepcopy(items[:limit])

    def create_schedule(self, doc):
        with self.lock:
            if doc["id"] in self.schedules:
                raise AlreadyExists(f"schedule {doc['id']}")
            stored = {**copy.deepcopy(doc), "version": 1, "updated_at": now()}
            self.schedules[doc["id"]] = stored
            return copy.deepcopy(stored)

    def mutate_status(self, name, fold):
        with self.lock:
            self.statuses[name] = fold(copy.deepcopy(self.statuses.get(name)))
            return copy.deepcopy(self.statuses[name])

    def get_status(self, name):
        return copy.deepcopy(self.statuses.get(name))

    def mutate_ledger(self, team, month, fold):
        with self.lock:  # one lock, as Firestore's transaction serialises writers of one document
            new = fold(copy.deepcopy(self.ledgers.get(ledger_id(team, month))))
            if new is not None:
                self.ledgers[ledger_id(team, month)] = copy.deepcopy(new)
            return copy.deepcopy(new)

    def get_ledger(self, team, month):
        return copy.deepcopy(self.ledgers.get(ledger_id(team, month)))

    def put_access(self, email, doc):
        with self.lock:
            self.access[email] = copy.deepcopy(doc)
            self.writes += 1

    def get_access(self, email):
        return copy.deepcopy(self.access.get(email))

    def get_schedule(self, schedule_id):
        doc = self.schedules.get(schedule_id)
        return copy.deepcopy(doc) if doc else None

    def mutate_schedule(self, schedule_id, mutate):
        with self.lock:
            if schedule_id not in self.schedules:
                raise NotFound(f"training schedule {schedule_id}")
            new = mutate(copy.deepcopy(self.schedules[schedule_id]))
            if new is None:
                return None
            new = {**copy.deepcopy(new), "version": self.schedules[schedule_id].get("version", 0) + 1,
                   "updated_at": now()}
            self.schedules[schedule_id] = new
            return copy.deepcopy(new)

    def list_schedules(self, status, limit, teams=None):
        items = [d for d in self.schedules.values() if _matches(d, {"status": status, TEAMS_KEY: teams})]
        return copy.deepcopy(sorted(items, key=lambda d: d["created_at"], reverse=True)[:limit])

    def page_schedules(self, filters, limit, after=None):
        return _page([d for d in self.schedules.values() if _matches(d, filters)], limit, after)

    def due_schedules(self, before, limit):
        items = [d for d in self.schedules.values()
                 if d["status"] == "active" and d.get("next_run_at") and d["next_run_at"] <= before]
        return copy.deepcopy(sorted(items, key=lambda d: d["next_run_at"])[:limit])

    def add_audit(self, doc):
        if self.fail_audit:
            raise self.fail_audit
        with self.lock:
            if doc["id"] in self.audit:
                raise AlreadyExists(f"audit record {doc['id']}")
            self.audit[doc["id"]] = copy.deepcopy(doc)

    def list_audit(self, query, limit):
        from shared.domain.audit import matches

        found = [d for d in self.audit.values() if matches(d, query)]
        return copy.deepcopy(sorted(found, key=lambda d: (d["at"], d["id"]), reverse=True)[:limit])


class FakePublisher:
    def __init__(self, fail: bool = False):
        self.messages: list[tuple[str, dict, dict]] = []
        self.fail = fail
        self.ids = itertools.count(1)

    def publish(self, topic, payload, **attributes):
        if self.fail:
            raise TransientError("pubsub unavailable")
        self.messages.append((topic, payload, attributes))
        return str(next(self.ids))


class FakeBackend:
    """A scripted pipeline backend: tests set the snapshot get_job returns."""

    def __init__(self):
        self.created: list[JobRequest] = []
        self.jobs: dict[str, JobSnapshot] = {}
        self.cancelled: list[str] = []
        self.fail_create: Optional[Exception] = None

    def create_job(self, request):
        if self.fail_create:
            raise self.fail_create
        self.created.append(request)
        job = self.jobs.setdefault(request.job_id, JobSnapshot(
            job_id=request.job_id, name=f"projects/p/locations/r/pipelineJobs/{request.job_id}",
            state="PIPELINE_STATE_PENDING", labels=request.labels))
        return job

    def get_job(self, job_id):
        if job_id not in self.jobs:
            raise NotFound(job_id)
        return self.jobs[job_id]

    def cancel_job(self, job_id):
        self.cancelled.append(job_id)


class FakeCompiler:
    def __init__(self, fail: Optional[Exception] = None):
        self.compiled: list = []
        self.fail = fail

    def compile_run(self, spec, out_path):
        if self.fail:
            raise self.fail
        self.compiled.append(spec)
        with open(out_path, "w") as handle:
            handle.write('{"displayName": "%s", "pipelineSpec": {"root": {"dag": {"tasks": {}}}}, '
                         '"runtimeConfig": {}}' % spec.run_id)
        return out_path

    def module_files(self):
        return {}


class FakePubSub:
    """The few Pub/Sub client calls shared/adapters/dead_letters.py makes (pull, modify_ack_deadline, acknowledge,
    publish), over in-memory subscriptions: a pulled message is out until acknowledged or handed back
    (deadline 0). `fail_publish_after` makes the (n+1)th publish fail as Pub/Sub would."""

    def __init__(self, fail_publish_after: Optional[int] = None):
        self.held: dict[str, list] = {}  # subscription path -> messages (types.PubsubMessage)
        self.out: dict[str, tuple[str, object]] = {}  # ack id -> (subscription, message)
        self.published: list[tuple[str, bytes, dict]] = []
        self.fail_publish_after = fail_publish_after
        self._ids = 0

    def subscription_path(self, project, name):
        return f"projects/{project}/subscriptions/{name}"

    def topic_path(self, project, name):
        return f"projects/{project}/topics/{name}"

    def dead_letter(self, subscription: str, data: bytes, **attributes) -> str:
        from google.protobuf import timestamp_pb2
        from google.pubsub_v1 import types

        self._ids += 1
        stamp = timestamp_pb2.Timestamp()
        stamp.GetCurrentTime()
        message = types.PubsubMessage(data=data, attributes=attributes, message_id=str(self._ids),
                                      publish_time=stamp)
        self.held.setdefault(subscription, []).append(message)
        return message.message_id

    def pull(self, request, timeout=None):
        from google.pubsub_v1 import types

        path, wanted = request["subscription"], request["max_messages"]
        taken, self.held[path] = self.held.get(path, [])[:wanted], self.held.get(path, [])[wanted:]
        received = []
        for message in taken:
            self._ids += 1
            ack_id = f"ack-{self._ids}"
            self.out[ack_id] = (path, message)
            received.append(types.ReceivedMessage(ack_id=ack_id, message=message))
        return types.PullResponse(received_messages=received)

    def modify_ack_deadline(self, request):
        assert request["ack_deadline_seconds"] == 0
        for ack_id in reversed(request["ack_ids"]):  # back at the front, in their order
            path, message = self.out.pop(ack_id)
            self.held.setdefault(path, []).insert(0, message)

    def acknowledge(self, request):
        for ack_id in request["ack_ids"]:
            self.out.pop(ack_id)

    def publish(self, topic, data, **attributes):
        from concurrent.futures import Future

        from google.api_core import exceptions

        future: Future = Future()
        if self.fail_publish_after is not None and len(self.published) >= self.fail_publish_after:
            future.set_exception(exceptions.ServiceUnavailable("Pub/Sub is unavailable"))
            return future
        self.published.append((topic, data, attributes))
        self._ids += 1
        future.set_result(f"replayed-{self._ids}")
        return future
