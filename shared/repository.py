"""The repository: every read and write of Trainyard's documents goes through this interface.

FirestoreRepository is the real one (Firestore in the cloud, the Firestore emulator locally — the
same client code; FIRESTORE_EMULATOR_HOST decides). Unit tests use an in-memory fake with the same
semantics (tests/fakes.py). Run documents change only through `mutate_run`: a transactional
read-modify-write, which is what makes every consumer idempotent and order-tolerant.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterable, Optional, Protocol

from shared.errors import NotFound
from shared.runs import now

RUNS = "training_runs"
HISTORY = "history"
COUNTERS = "counters"
CATALOG_KINDS = ("datasets", "feature_configs", "model_configs", "experiments")

Mutator = Callable[[dict], Optional[dict]]


class Repository(Protocol):
    def create_run(self, doc: dict, counter_key: str, run_id: Optional[str] = None) -> tuple[dict, bool]:
        """Assign the next run number for counter_key and store the run, atomically. With an explicit
        run_id that already exists, return the existing run and False (idempotent creation)."""

    def get_run(self, run_id: str) -> Optional[dict]: ...

    def mutate_run(self, run_id: str, mutate: Mutator) -> Optional[dict]:
        """Transactionally apply mutate(doc) → new doc (or None: no change). Returns the new doc or None."""

    def delete_run(self, run_id: str, check: Callable[[dict], None]) -> dict:
        """Delete after check(doc) passes (it raises to refuse), in one transaction."""

    def list_runs(self, filters: dict, limit: int, after: Optional[tuple[datetime, str]] = None) -> list[dict]: ...

    def count_runs(self, filters: dict) -> int: ...

    def put_epoch(self, run_id: str, attempt: int, epoch: dict) -> None: ...

    def list_epochs(self, run_id: str, attempt: int) -> list[dict]: ...

    def create_catalog(self, kind: str, doc: dict) -> dict: ...

    def get_catalog(self, kind: str, doc_id: str) -> Optional[dict]: ...

    def list_catalog(self, kind: str, limit: int, filters: Optional[dict] = None) -> list[dict]: ...

    def top_experiments(self, model_type: str, metric: str, descending: bool, limit: int) -> list[dict]: ...


def epoch_doc_id(attempt: int, epoch: int) -> str:
    return f"a{attempt:03d}-e{epoch:05d}"


class FirestoreRepository:
    def __init__(self, project: str, client=None):
        self.project = project
        self._client = client

    @property
    def db(self):
        if self._client is None:
            from google.cloud import firestore

            self._client = firestore.Client(project=self.project)
        return self._client

    # ------------------------------------------------------------------ runs

    def create_run(self, doc: dict, counter_key: str, run_id: Optional[str] = None) -> tuple[dict, bool]:
        from google.cloud import firestore

        counter_ref = self.db.collection(COUNTERS).document(f"run-number-{counter_key}")

        @firestore.transactional
        def create(tx):
            existing_ref = self.db.collection(RUNS).document(run_id) if run_id else None
            if existing_ref is not None:
                snap = existing_ref.get(transaction=tx)
                if snap.exists:
                    return snap.to_dict(), False
            counter = counter_ref.get(transaction=tx)
            number = (counter.to_dict() or {}).get("value", 0) + 1 if counter.exists else 1
            new_id = run_id or f"{counter_key}-r{number}"
            stored = {**doc, "id": new_id, "run_number": number, "version": 1, "updated_at": now()}
            tx.set(counter_ref, {"value": number, "updated_at": now()})
            tx.create(self.db.collection(RUNS).document(new_id), stored)
            return stored, True

        return create(self.db.transaction())

    def get_run(self, run_id: str) -> Optional[dict]:
        snap = self.db.collection(RUNS).document(run_id).get()
        return snap.to_dict() if snap.exists else None

    def mutate_run(self, run_id: str, mutate: Mutator) -> Optional[dict]:
        from google.cloud import firestore

        ref = self.db.collection(RUNS).document(run_id)

        @firestore.transactional
        def apply(tx):
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise NotFound(f"training run {run_id}")
            current = snap.to_dict()
            new = mutate(current)
            if new is None:
                return None
            new = {**new, "version": current.get("version", 0) + 1, "updated_at": now()}
            tx.set(ref, new)
            return new

        return apply(self.db.transaction())

    def delete_run(self, run_id: str, check: Callable[[dict], None]) -> dict:
        from google.cloud import firestore

        ref = self.db.collection(RUNS).document(run_id)

        @firestore.transactional
        def delete(tx):
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise NotFound(f"training run {run_id}")
            doc = snap.to_dict()
            check(doc)
            tx.delete(ref)
            return doc

        doc = delete(self.db.transaction())
        for history in ref.collection(HISTORY).list_documents():
            history.delete()
        return doc

    def _runs_query(self, filters: dict):
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.db.collection(RUNS)
        for field in ("status", "model_type", "dataset_id", "schedule_id"):
            if filters.get(field):
                query = query.where(filter=FieldFilter(field, "==", filters[field]))
        return query

    def list_runs(self, filters: dict, limit: int, after: Optional[tuple[datetime, str]] = None) -> list[dict]:
        from google.cloud import firestore

        query = self._runs_query(filters).order_by("created_at", direction=firestore.Query.DESCENDING).order_by(
            "__name__", direction=firestore.Query.DESCENDING)
        if after:
            query = query.start_after({"created_at": after[0], "__name__": self.db.collection(RUNS).document(after[1])})
        return [snap.to_dict() for snap in query.limit(limit).stream()]

    def count_runs(self, filters: dict) -> int:
        result = self._runs_query(filters).count().get()
        return int(result[0][0].value)

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
        from google.cloud import firestore

        collection = self.db.collection(kind)
        ref = collection.document(doc["id"]) if doc.get("id") else collection.document()
        if kind != "experiments" or doc.get("number"):
            stored = {**doc, "id": ref.id}
            ref.create(stored)
            return stored
        counter_ref = self.db.collection(COUNTERS).document("experiment-number")

        @firestore.transactional
        def create(tx):  # experiments are numbered ("Exp #65") in creation order
            counter = counter_ref.get(transaction=tx)
            number = (counter.to_dict() or {}).get("value", 0) + 1 if counter.exists else 1
            stored = {**doc, "id": ref.id, "number": number}
            tx.set(counter_ref, {"value": number})
            tx.create(ref, stored)
            return stored

        return create(self.db.transaction())

    def get_catalog(self, kind: str, doc_id: str) -> Optional[dict]:
        snap = self.db.collection(kind).document(doc_id).get()
        return snap.to_dict() if snap.exists else None

    def list_catalog(self, kind: str, limit: int, filters: Optional[dict] = None) -> list[dict]:
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.db.collection(kind)
        for field, value in (filters or {}).items():
            query = query.where(filter=FieldFilter(field, "==", value))
        if not filters:
            query = query.order_by("created_at", direction=firestore.Query.DESCENDING)
        return [s.to_dict() for s in query.limit(limit).stream()]

    def top_experiments(self, model_type: str, metric: str, descending: bool, limit: int) -> list[dict]:
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
        query = (self.db.collection("experiments").where(filter=FieldFilter("model_type", "==", model_type))
                 .order_by(f"metrics.{metric}", direction=direction).limit(limit))
        return [s.to_dict() for s in query.stream()]


def chunks(items: Iterable, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
