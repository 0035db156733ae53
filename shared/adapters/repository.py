"""The repository: every read and write of Trainyard's documents goes through this interface.

FirestoreRepository is the real one (Firestore in the cloud, the Firestore emulator locally — the
same client code; FIRESTORE_EMULATOR_HOST decides). Unit tests use an in-memory fake with the same
semantics (tests/fakes.py). Run documents change only through `mutate_run`: a transactional
read-modify-write, which is what makes every consumer idempotent and order-tolerant. Every run written
is checked against its declaration first (shared/domain/run_document.check), so no writer drifts from it.
"""
from __future__ import annotations

import copy
import random
import threading
import time
import zlib
from collections import OrderedDict
from datetime import datetime
from typing import Any, Callable, Optional, Protocol

from shared.domain import run_document, run_search
from shared.domain.doc_ids import is_valid_id
from shared.errors import NotFound, TransientError
from shared.domain.runs import is_deleted, now

RUNS = "training_runs"
SCHEDULES = "training_schedules"
HISTORY = "history"
COUNTERS = "counters"
STATUS = "trainyard_status"  # status/reconciler: what the reconciler checked and repaired
AUDIT = "audit_records"  # the audit trail (shared/domain/audit.py); expire_at is its TTL field (terraform/firestore.tf)
LEDGERS = "spend_ledgers"  # {team}-{YYYY-MM}: a team's spend this month (shared/domain/spend.py)
ACCESS = "access"  # access/{email}: the teams a dashboard user may read (shared/domain/access.py)

Mutator = Callable[[dict], Optional[dict]]
TEAMS_KEY = "team"  # in filters: a list of team names, any of which matches
# In list_runs' filters, beside the fields' equalities (`status` may be a list: any of them): a run whose
# search tokens hold this one (shared/domain/run_search.py), and created_at in [since, until).
SEARCH_KEY, SINCE_KEY, UNTIL_KEY = "search_token", "created_since", "created_until"
# Firestore answers an `in` filter of at most 30 values (30 disjunctions in disjunctive normal form:
# https://firebase.google.com/docs/firestore/query-data/queries#limits_on_or_queries); more teams are
# asked for in chunks and the answers merged.
IN_LIMIT = 30


def chunks(values: list, size: int = IN_LIMIT) -> list[list]:
    values = list(values)
    return [values[i:i + size] for i in range(0, len(values), size)] or [[]]


class Repository(Protocol):
    def create_run(self, doc: dict, counter_key: str, run_id: Optional[str] = None) -> tuple[dict, bool]:
        """Store a run with the next run number for counter_key (unique under concurrency). With an
        explicit run_id that already exists, return the existing run and False (idempotent creation)."""

    def get_run(self, run_id: str) -> Optional[dict]: ...

    def mutate_run(self, run_id: str, mutate: Mutator) -> Optional[dict]:
        """Transactionally apply mutate(doc) → new doc (or None: no change). Returns the new doc or None."""

    def delete_run(self, run_id: str, check: Callable[[dict], None]) -> dict:
        """Delete after check(doc) passes (it raises to refuse), in one transaction."""

    def list_runs(self, filters: dict, limit: int, after: Optional[tuple[datetime, str]] = None) -> list[dict]:
        """Newest first (created_at, then id), after the `after` cursor. filters: equality on status (or a
        list: any of them), model_type, dataset_id, schedule_id, deployment_status, batch_prediction_status;
        `team` is a list of teams (any of them: TEAMS_KEY); SEARCH_KEY a search token the run carries;
        SINCE_KEY / UNTIL_KEY bound created_at (from, before)."""

    def count_runs(self, filters: dict) -> int: ...

    def put_epoch(self, run_id: str, attempt: int, epoch: dict) -> None: ...

    def list_epochs(self, run_id: str, attempt: int) -> list[dict]: ...

    def create_catalog(self, kind: str, doc: dict) -> dict: ...

    def get_catalog(self, kind: str, doc_id: str) -> Optional[dict]: ...

    def get_catalog_many(self, refs: list[tuple[str, str]]) -> list[Optional[dict]]:
        """Several catalog documents in one round trip, in the order asked (None where missing)."""

    def list_catalog(self, kind: str, limit: int, filters: Optional[dict] = None) -> list[dict]:
        """Newest first; equality filters, and `team` as a list of teams (any of them)."""

    def page_catalog(self, kind: str, filters: dict, limit: int,
                     after: Optional[tuple[datetime, str]] = None) -> list[dict]:
        """Newest first (created_at, then id) after the cursor; filters: model_type, `team` (a list)."""

    def top_experiments(self, model_type: str, metric: str, descending: bool, limit: int,
                        teams: Optional[list[str]] = None) -> list[dict]:
        """Best first by `metric`; only those of `teams` when given."""

    def set_catalog_team(self, kind: str, doc_id: str, team: str) -> dict:
        """Give a catalog entry made before teams its team (the only change a catalog entry takes)."""

    def replace_catalog(self, kind: str, doc: dict) -> dict:
        """Overwrite an existing catalog entry (doc["id"]): an imported experiment whose source run changed
        (shared/services/catalog_import.py). NotFound when there is none."""

    def create_schedule(self, doc: dict) -> dict:
        """Store a new schedule under doc["id"] (version 1)."""

    def get_schedule(self, schedule_id: str) -> Optional[dict]: ...

    def mutate_schedule(self, schedule_id: str, mutate: Mutator) -> Optional[dict]:
        """Transactionally apply mutate(doc) → new doc (or None: no change), as mutate_run."""

    def list_schedules(self, status: Optional[str], limit: int, teams: Optional[list[str]] = None) -> list[dict]:
        """Newest first, optionally of one status; only those of `teams` when given."""

    def page_schedules(self, filters: dict, limit: int, after: Optional[tuple[datetime, str]] = None) -> list[dict]:
        """Newest first (created_at, then id) after the cursor; filters: status, `team` (a list, any of them)."""

    def due_schedules(self, before: datetime, limit: int) -> list[dict]:
        """Active schedules whose next_run_at is at or before `before`, soonest first."""

    def mutate_status(self, name: str, fold: Callable[[Optional[dict]], dict]) -> dict:
        """In one transaction: status/{name} (None when there is none yet) → fold → stored. Returns it.
        (The reconciler keeps its passes there: shared/services/reconcile.py.)"""

    def get_status(self, name: str) -> Optional[dict]: ...

    def add_audit(self, doc: dict) -> None:
        """Store one audit record under doc["id"] (shared/domain/audit.py)."""

    def list_audit(self, query, limit: int) -> list[dict]:
        """Audit records matching an audit.Query (equality filters, since <= at < until, after the cursor),
        newest first (at, then id, descending)."""
    def mutate_ledger(self, team: str, month: str, fold: Callable[[Optional[dict]], Optional[dict]]) -> Optional[dict]:
        """In one transaction: the team's ledger for the month (None when there is none yet) → fold → stored
        (fold returns None: nothing written; it may raise to refuse). Returns what was stored, or None.
        The one document per team-month is what makes two admissions against the last budget serialise."""

    def get_ledger(self, team: str, month: str) -> Optional[dict]: ...

    def put_access(self, email: str, doc: dict) -> None:
        """Replace the caller's access document (terraform/firestore.rules reads it)."""

    def get_access(self, email: str) -> Optional[dict]: ...


def _named(snap) -> dict:
    """A listed document with its id as Firestore names it: the page's cursor orders by that name, and a
    document written by hand (a seed, a console edit) may lack the `id` field the API writes."""
    return {**snap.to_dict(), "id": snap.id}


def ledger_id(team: str, month: str) -> str:
    return f"{team}-{month}"


def mutate_or_read_run(repo: Repository, run_id: str, decide: Mutator) -> tuple[dict, bool]:
    """For a request: decide(doc) → new doc (changed) or None (a no-op; it may raise Conflict/FieldError).
    Returns (the run, whether it changed); NotFound when there is no such run, or it is deleted (a deleted
    run takes no action but its restore: shared/services/actions/deletion.py)."""
    def unless_deleted(doc: dict) -> Optional[dict]:
        if is_deleted(doc):
            raise NotFound(f"training run {run_id}")
        return decide(doc)

    updated = repo.mutate_run(run_id, unless_deleted)
    if updated is not None:
        return updated, True
    run = repo.get_run(run_id)
    if run is None or is_deleted(run):
        raise NotFound(f"training run {run_id}")
    return run, False


def epoch_doc_id(attempt: int, epoch: int) -> str:
    return f"a{attempt:03d}-e{epoch:05d}"


class FirestoreRepository:
    TRANSACTION_ATTEMPTS = 30
    # Catalog documents are create-only (the API has no update or delete for them), so an instance
    # may keep the ones it has read: creating runs from a known experiment then costs two round
    # trips fewer. The one exception, an imported experiment re-imported from a changed source run
    # (replace_catalog), is never kept: another instance would go on reading the old one.
    CATALOG_CACHE_SIZE = 2048

    def __init__(self, project: str, client=None):
        self.project = project
        self._client = client
        # Threads of one instance updating the same run queue here instead of deadlocking on
        # Firestore's pessimistic locks (both read, both wait to write, one times out).
        self._run_locks = [threading.Lock() for _ in range(64)]
        self._catalog_cache: OrderedDict = OrderedDict()
        self._catalog_lock = threading.Lock()

    def _cached(self, kind: str, doc_id: str) -> Optional[dict]:
        with self._catalog_lock:
            doc = self._catalog_cache.get((kind, doc_id))
            if doc is not None:
                self._catalog_cache.move_to_end((kind, doc_id))
            return copy.deepcopy(doc)

    def _remember(self, kind: str, doc_id: str, doc: dict) -> None:
        if kind == "experiments" and doc.get("origin"):  # replaceable (above)
            return
        with self._catalog_lock:
            self._catalog_cache[(kind, doc_id)] = copy.deepcopy(doc)
            if len(self._catalog_cache) > self.CATALOG_CACHE_SIZE:
                self._catalog_cache.popitem(last=False)

    @property
    def db(self):
        if self._client is None:
            from google.cloud import firestore

            self._client = firestore.Client(project=self.project)
        return self._client

    def _in_transaction(self, body):
        """Run body(tx) in a transaction, retrying contention with jittered backoff (the client's own
        retries are immediate, so writers of one busy run document keep colliding). Exhausted →
        TransientError: a 503 to API callers, a redelivery to consumers."""
        from google.api_core import exceptions
        from google.cloud import firestore

        error: Exception | None = None
        for attempt in range(1, self.TRANSACTION_ATTEMPTS + 1):
            try:
                return firestore.transactional(body)(self.db.transaction(max_attempts=1))
            except (exceptions.Aborted, exceptions.Conflict) as exc:
                error = exc
            except ValueError as exc:  # the client's "Failed to commit transaction in N attempts"
                if "transaction" not in str(exc).lower():
                    raise
                error = exc
            time.sleep(random.uniform(0.002, 0.01) * min(attempt, 10))
        raise TransientError(f"Firestore transaction kept conflicting: {error}")

    def _next_number(self, counter_id: str) -> int:
        """An atomic server-side increment: unique numbers without a read-modify-write transaction, so
        concurrent creators never queue on a lock. A create that fails afterwards leaves a gap."""
        from google.cloud import firestore

        result = self.db.collection(COUNTERS).document(counter_id).set(
            {"value": firestore.Increment(1), "updated_at": now()}, merge=True)
        return int(result.transform_results[0].integer_value)

    # ------------------------------------------------------------------ runs

    def create_run(self, doc: dict, counter_key: str, run_id: Optional[str] = None) -> tuple[dict, bool]:
        from google.api_core import exceptions

        number = self._next_number(f"run-number-{counter_key}")
        ref = self.db.collection(RUNS).document(run_id or f"{counter_key}-r{number}")
        stored = run_document.check({**doc, "id": ref.id, "run_number": number, "version": 1, "updated_at": now()})
        try:
            ref.create(stored)  # fails on an existing id: no read first, one round trip fewer
        except exceptions.AlreadyExists:  # a deterministic id made before (a duplicate trigger): it stands
            return ref.get().to_dict(), False
        return stored, True

    def get_run(self, run_id: str) -> Optional[dict]:
        if not is_valid_id(run_id):  # no document can have it; the client would raise (shared/domain/doc_ids.py)
            return None
        snap = self.db.collection(RUNS).document(run_id).get()
        return snap.to_dict() if snap.exists else None

    def _with_document(self, collection: str, doc_id: str, what: str, act: Callable) -> Any:
        """act(tx, ref, current) inside one transaction on an existing document (NotFound otherwise)."""
        if not is_valid_id(doc_id):
            raise NotFound(f"{what} {doc_id!r}")
        ref = self.db.collection(collection).document(doc_id)

        def apply(tx):
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise NotFound(f"{what} {doc_id}")
            return act(tx, ref, snap.to_dict())

        with self._run_locks[zlib.crc32(f"{collection}/{doc_id}".encode()) % len(self._run_locks)]:
            return self._in_transaction(apply)

    def _mutate(self, collection: str, doc_id: str, mutate: Mutator, what: str,
                checked: Callable[[dict], dict] = lambda doc: doc) -> Optional[dict]:
        """Transactional read-modify-write of one document; bumps `version` when it changes. `checked`
        validates what is written (and may upgrade it): it raises before anything is stored."""
        def change(tx, ref, current):
            new = mutate(current)
            if new is None:
                return None
            new = checked({**new, "version": current.get("version", 0) + 1, "updated_at": now()})
            tx.set(ref, new)
            return new

        return self._with_document(collection, doc_id, what, change)

    def mutate_run(self, run_id: str, mutate: Mutator) -> Optional[dict]:
        return self._mutate(RUNS, run_id, mutate, "training run", run_document.check)

    def delete_run(self, run_id: str, check: Callable[[dict], None]) -> dict:
        def delete(tx, ref, current):
            check(current)
            tx.delete(ref)
            return current

        doc = self._with_document(RUNS, run_id, "training run", delete)
        for history in self.db.collection(RUNS).document(run_id).collection(HISTORY).list_documents():
            history.delete()
        return doc

    @staticmethod
    def _filtered(query, filters: dict, fields, team_chunk: Optional[list]):
        from google.cloud.firestore_v1.base_query import FieldFilter

        for field in fields:
            if filters.get(field):
                query = query.where(filter=FieldFilter(field, "==", filters[field]))
        if team_chunk is not None:
            query = query.where(filter=FieldFilter(TEAMS_KEY, "in", team_chunk))
        return query

    @staticmethod
    def _team_chunks(filters: dict) -> list:
        """[None] when no team filter; else the teams in chunks Firestore accepts ([] when none: no query)."""
        if filters.get(TEAMS_KEY) is None:
            return [None]
        return [c for c in chunks(filters[TEAMS_KEY]) if c]

    RUN_FIELDS = ("status", "model_type", "dataset_id", "schedule_id", "deployment_status", "batch_prediction_status",
                  "deleted")

    def _run_queries(self, filters: dict) -> list:
        """One query per group of teams and per status asked for (a list of statuses is several
        queries, merged: `in` on both team and status would multiply past Firestore's 30 disjunctions)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        statuses = filters.get("status")
        each_status = statuses if isinstance(statuses, (list, tuple)) else [statuses]
        queries = []
        for chunk in self._team_chunks(filters):
            for status in each_status:
                query = self._filtered(self.db.collection(RUNS), {**filters, "status": status}, self.RUN_FIELDS, chunk)
                if filters.get(SEARCH_KEY):  # `in` and array-contains may share a query (StructuredQuery's
                    # FieldFilter.Operator: IN forbids only NOT_IN beside it)
                    query = query.where(filter=FieldFilter(run_search.FIELD, "array_contains", filters[SEARCH_KEY]))
                if filters.get(SINCE_KEY):  # a range on the field the list is ordered by: no other index
                    query = query.where(filter=FieldFilter("created_at", ">=", filters[SINCE_KEY]))
                if filters.get(UNTIL_KEY):
                    query = query.where(filter=FieldFilter("created_at", "<", filters[UNTIL_KEY]))
                queries.append(query)
        return queries

    def list_runs(self, filters: dict, limit: int, after: Optional[tuple[datetime, str]] = None) -> list[dict]:
        from google.cloud import firestore

        found: list[dict] = []
        for query in self._run_queries(filters):
            query = query.order_by("created_at", direction=firestore.Query.DESCENDING).order_by(
                "__name__", direction=firestore.Query.DESCENDING)
            if after:
                query = query.start_after({"created_at": after[0],
                                           "__name__": self.db.collection(RUNS).document(after[1])})
            found += [_named(snap) for snap in query.limit(limit).stream()]
        # Each query is newest first; merged, the newest `limit` of all are the page.
        return sorted(found, key=lambda r: (r["created_at"], r["id"]), reverse=True)[:limit]

    def count_runs(self, filters: dict) -> int:
        total = 0
        for query in self._run_queries(filters):  # the queries' teams and statuses are disjoint: counts add up
            total += int(query.count().get()[0][0].value)
        return total

    def put_epoch(self, run_id: str, attempt: int, epoch: dict) -> None:
        ref = self.db.collection(RUNS).document(run_id).collection(HISTORY).document(
            epoch_doc_id(attempt, epoch["epoch"]))
        ref.set({**epoch, "attempt": attempt})  # same id for a redelivery: idempotent

    def list_epochs(self, run_id: str, attempt: int) -> list[dict]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.db.collection(RUNS).document(run_id).collection(HISTORY).where(
            filter=FieldFilter("attempt", "==", attempt))
        return sorted((s.to_dict() for s in query.stream()), key=lambda e: e["epoch"])

    # ------------------------------------------------------------------ catalog

    def create_catalog(self, kind: str, doc: dict) -> dict:
        collection = self.db.collection(kind)
        ref = collection.document(doc["id"]) if doc.get("id") else collection.document()
        stored = {**doc, "id": ref.id}
        if kind == "experiments" and not doc.get("number"):
            stored["number"] = self._next_number("experiment-number")  # shown as "Exp #65"
        ref.create(stored)
        self._remember(kind, ref.id, stored)
        return stored

    def get_catalog(self, kind: str, doc_id: str) -> Optional[dict]:
        return self.get_catalog_many([(kind, doc_id)])[0]

    def get_catalog_many(self, refs: list[tuple[str, str]]) -> list[Optional[dict]]:
        docs = [self._cached(kind, doc_id) for kind, doc_id in refs]
        missing = [(n, self.db.collection(kind).document(doc_id)) for n, (kind, doc_id) in enumerate(refs)
                   if docs[n] is None and is_valid_id(doc_id)]
        if missing:
            found = {snap.reference.path: snap.to_dict() for snap in self.db.get_all([ref for _, ref in missing])
                     if snap.exists}
            for n, ref in missing:
                docs[n] = found.get(ref.path)
                if docs[n] is not None:
                    self._remember(refs[n][0], refs[n][1], docs[n])
        return docs

    def list_catalog(self, kind: str, limit: int, filters: Optional[dict] = None) -> list[dict]:
        from google.cloud import firestore

        filters = filters or {}
        equal = [f for f in filters if f != TEAMS_KEY]
        found: list[dict] = []
        for chunk in self._team_chunks(filters):
            query = self._filtered(self.db.collection(kind), filters, equal, chunk)
            if not equal:  # newest first (terraform/firestore.tf has (team, created_at) for the team filter)
                query = query.order_by("created_at", direction=firestore.Query.DESCENDING)
            found += [s.to_dict() for s in query.limit(limit).stream()]
        if len(found) > limit or (filters.get(TEAMS_KEY) is not None and not equal):
            found.sort(key=lambda d: d.get("created_at") or datetime.min, reverse=True)
        return found[:limit]

    def page_catalog(self, kind: str, filters: dict, limit: int,
                     after: Optional[tuple[datetime, str]] = None) -> list[dict]:
        return self._page(kind, filters, ("model_type",), limit, after)

    def _page(self, collection: str, filters: dict, fields: tuple, limit: int,
              after: Optional[tuple[datetime, str]]) -> list[dict]:
        """A page of a list other than the runs', newest first, each group of teams queried and merged
        (indexes (team, [field,] created_at) in terraform/firestore.tf)."""
        from google.cloud import firestore

        found: list[dict] = []
        for chunk in self._team_chunks(filters):
            query = self._filtered(self.db.collection(collection), filters, fields, chunk).order_by(
                "created_at", direction=firestore.Query.DESCENDING).order_by("__name__", direction=firestore.Query.DESCENDING)
            if after:
                query = query.start_after({"created_at": after[0],
                                           "__name__": self.db.collection(collection).document(after[1])})
            found += [_named(snap) for snap in query.limit(limit).stream()]
        return sorted(found, key=lambda d: (d["created_at"], d["id"]), reverse=True)[:limit]

    def set_catalog_team(self, kind: str, doc_id: str, team: str) -> dict:
        # Only a team-less entry takes a team (shared/services/access.assign_team): another instance's
        # cached copy still says "no team", which admits platform admins only, so it is never looser.
        ref = self.db.collection(kind).document(doc_id)
        ref.update({"team": team})
        with self._catalog_lock:
            self._catalog_cache.pop((kind, doc_id), None)
        return ref.get().to_dict()

    def replace_catalog(self, kind: str, doc: dict) -> dict:
        def replace(tx, ref, current):
            tx.set(ref, doc)
            return dict(doc)

        replaced = self._with_document(kind, doc["id"], kind, replace)
        with self._catalog_lock:
            self._catalog_cache.pop((kind, doc["id"]), None)
        return replaced

    def top_experiments(self, model_type: str, metric: str, descending: bool, limit: int,
                        teams: Optional[list[str]] = None) -> list[dict]:
        from google.cloud import firestore

        direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
        filters = {"model_type": model_type, TEAMS_KEY: teams}
        found: list[dict] = []
        for chunk in self._team_chunks(filters):
            query = self._filtered(self.db.collection("experiments"), filters, ("model_type",), chunk).order_by(
                f"metrics.{metric}", direction=direction).limit(limit)
            found += [s.to_dict() for s in query.stream()]
        found.sort(key=lambda d: d["metrics"][metric], reverse=descending)  # the chunks' bests, merged
        return found[:limit]

    # ------------------------------------------------------------------ schedules

    def create_schedule(self, doc: dict) -> dict:
        stored = {**doc, "version": 1, "updated_at": now()}
        self.db.collection(SCHEDULES).document(doc["id"]).create(stored)
        return stored

    def get_schedule(self, schedule_id: str) -> Optional[dict]:
        if not is_valid_id(schedule_id):
            return None
        snap = self.db.collection(SCHEDULES).document(schedule_id).get()
        return snap.to_dict() if snap.exists else None

    def mutate_schedule(self, schedule_id: str, mutate: Mutator) -> Optional[dict]:
        return self._mutate(SCHEDULES, schedule_id, mutate, "training schedule")

    def list_schedules(self, status: Optional[str], limit: int, teams: Optional[list[str]] = None) -> list[dict]:
        from google.cloud import firestore

        filters = {"status": status, TEAMS_KEY: teams}
        found: list[dict] = []
        for chunk in self._team_chunks(filters):
            query = self._filtered(self.db.collection(SCHEDULES), filters, ("status",), chunk)
            if status:  # sorted here: (status, created_at) has no composite index, and schedules are few
                found += [s.to_dict() for s in query.stream()]
            else:
                found += [s.to_dict() for s in query.order_by("created_at", direction=firestore.Query.DESCENDING)
                          .limit(limit).stream()]
        return sorted(found, key=lambda d: d["created_at"], reverse=True)[:limit]

    def page_schedules(self, filters: dict, limit: int, after: Optional[tuple[datetime, str]] = None) -> list[dict]:
        return self._page(SCHEDULES, filters, ("status",), limit, after)

    def due_schedules(self, before: datetime, limit: int) -> list[dict]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        # The composite index (status ==, next_run_at asc) in terraform/firestore.tf serves this.
        query = (self.db.collection(SCHEDULES).where(filter=FieldFilter("status", "==", "active"))
                 .where(filter=FieldFilter("next_run_at", "<=", before)).order_by("next_run_at").limit(limit))
        return [s.to_dict() for s in query.stream()]

    # ------------------------------------------------------------------ status documents (the reconciler's)

    def mutate_status(self, name: str, fold: Callable[[Optional[dict]], dict]) -> dict:
        ref = self.db.collection(STATUS).document(name)

        def apply(tx):
            snap = ref.get(transaction=tx)
            status = fold(snap.to_dict() if snap.exists else None)
            tx.set(ref, status)
            return status

        return self._in_transaction(apply)

    def get_status(self, name: str) -> Optional[dict]:
        snap = self.db.collection(STATUS).document(name).get()
        return snap.to_dict() if snap.exists else None

    # ------------------------------------------------------------------ the audit trail

    def add_audit(self, doc: dict) -> None:
        self.db.collection(AUDIT).document(doc["id"]).create(doc)

    def list_audit(self, query, limit: int) -> list[dict]:
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        # Equality filters, a range on `at` and the order by `at`: served by the (filter, at desc)
        # composite indexes of terraform/firestore.tf (several filters at once by index merging).
        found = self.db.collection(AUDIT)
        for field, value in query.filters.items():
            found = found.where(filter=FieldFilter(field, "==", value))
        if query.since:
            found = found.where(filter=FieldFilter("at", ">=", query.since))
        if query.until:
            found = found.where(filter=FieldFilter("at", "<", query.until))
        found = found.order_by("at", direction=firestore.Query.DESCENDING).order_by(
            "__name__", direction=firestore.Query.DESCENDING)
        if query.after:
            found = found.start_after({"at": query.after[0],
                                       "__name__": self.db.collection(AUDIT).document(query.after[1])})
        return [snap.to_dict() for snap in found.limit(limit).stream()]
    def mutate_ledger(self, team: str, month: str, fold: Callable[[Optional[dict]], Optional[dict]]) -> Optional[dict]:
        ref = self.db.collection(LEDGERS).document(ledger_id(team, month))

        def apply(tx):
            snap = ref.get(transaction=tx)
            ledger = fold(snap.to_dict() if snap.exists else None)
            if ledger is not None:
                tx.set(ref, ledger)
            return ledger

        return self._in_transaction(apply)

    def get_ledger(self, team: str, month: str) -> Optional[dict]:
        snap = self.db.collection(LEDGERS).document(ledger_id(team, month)).get()
        return snap.to_dict() if snap.exists else None

    # ------------------------------------------------------------------ access documents (GET /api/me)

    def put_access(self, email: str, doc: dict) -> None:
        # A whole-document set: teams someone has lost must disappear, not linger from a merge.
        self.db.collection(ACCESS).document(email).set(doc)

    def get_access(self, email: str) -> Optional[dict]:
        snap = self.db.collection(ACCESS).document(email).get()
        return snap.to_dict() if snap.exists else None
