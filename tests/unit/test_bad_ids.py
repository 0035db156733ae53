"""Ids and numbers Firestore would refuse never reach the repository: a path id is a 404, a body id or
an integer outside the 64-bit range is a 400 naming the field (shared/domain/doc_ids.py, shared/http/guards.py).
The repository here raises as the Firestore client does on such an id, so a leak would be a 500."""
from __future__ import annotations

import json

import pytest

from shared.domain import doc_ids
from shared.adapters.artifact_store import ArtifactStore
from shared.http.app import Dependencies, create_app
from shared.adapters.repository import FirestoreRepository
from tests.builders import run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository
from tests.unit.test_api import AUTH, settings  # noqa: F401  (the fixture)

BAD_IDS = ["__reserved__", "..", ".", "x" * (doc_ids.MAX_ID_CHARS + 1), "\ud800x"]


class FirestoreStrictRepository(InMemoryRepository):
    """Refuses what Firestore refuses (the client raises ValueError/InvalidArgument → a 500 if leaked)."""

    def _check(self, doc_id):
        problem = doc_ids.id_problem(doc_id)
        if problem:
            raise ValueError(f"Firestore refuses document id {doc_id!r}: {problem}")

    def get_run(self, run_id):
        self._check(run_id)
        return super().get_run(run_id)

    def mutate_run(self, run_id, mutate):
        self._check(run_id)
        return super().mutate_run(run_id, mutate)

    def delete_run(self, run_id, check):
        self._check(run_id)
        return super().delete_run(run_id, check)

    def get_catalog_many(self, refs):
        for _, doc_id in refs:
            self._check(doc_id)
        return super().get_catalog_many(refs)

    def get_schedule(self, schedule_id):
        self._check(schedule_id)
        return super().get_schedule(schedule_id)


@pytest.fixture
def repo():
    return FirestoreStrictRepository()


@pytest.fixture
def client(repo, settings):  # noqa: F811
    return create_app(Dependencies(repo=repo, publisher=FakePublisher(), store=ArtifactStore(),
                                   settings=settings)).test_client()


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("path", ["/api/training-runs/{}", "/api/training-runs/{}/errors", "/api/datasets/{}",
                                  "/api/experiments/{}", "/api/training/schedules/{}"])
def test_a_path_id_firestore_refuses_is_a_json_404(client, path, bad):
    response = client.get(path.format(bad.encode("utf-8", "surrogatepass").decode("latin-1")
                                      if "\ud800" in bad else bad), headers=AUTH)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize("action", ["cancel", "retry", "submit", "push-anyway", "run-now"])
def test_actions_on_a_reserved_id_are_404(client, action):
    response = client.post(f"/api/training-runs/__x__/{action}", headers=AUTH)
    assert response.status_code == 404, response.get_data(as_text=True)


@pytest.mark.parametrize("bad", ["", "a/b", "__x__", "..", "x" * 300])
@pytest.mark.parametrize("field", ["base_experiment_id", "dataset_id"])
def test_a_body_id_firestore_refuses_is_a_400_naming_the_field(client, repo, field, bad):
    body = run_body(seed_catalog(repo)["experiment"], **{field: bad})
    response = client.post("/api/training-runs", data=json.dumps(body),
                           headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert field in {e["field"] for e in response.get_json()["errors"]}


@pytest.mark.parametrize("number, field", [(2 ** 63, "training_params.epochs"), (-(2 ** 63) - 1, "gpu_config.gpu_count"),
                                           (10 ** 30, "training_params.lr_schedule.patience")])
def test_an_integer_beyond_64_bits_is_a_400_naming_the_field(client, repo, number, field):
    body = run_body(seed_catalog(repo)["experiment"])
    top, *rest = field.split(".")
    node = body.setdefault(top, {})
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    node[rest[-1]] = number
    response = client.post("/api/training-runs", data=json.dumps(body),
                           headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert [e["field"] for e in response.get_json()["errors"]] == [field]
    assert "64-bit" in response.get_json()["errors"][0]["message"]


def test_a_list_page_token_naming_an_impossible_run_is_a_400(client):
    import base64

    token = base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00+00:00", "a/b"]).encode()).decode()
    response = client.get(f"/api/training-runs?page_token={token}", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["field"] == "page_token"


def test_the_firestore_repository_answers_none_or_not_found_without_calling_firestore():
    from shared.errors import NotFound

    class NoClient:
        def __getattr__(self, name):
            raise AssertionError(f"Firestore was called ({name})")

    repo = FirestoreRepository("p", client=NoClient())
    for bad in ["", "a/b", "__x__", ".."]:
        assert repo.get_run(bad) is None and repo.get_schedule(bad) is None
        assert repo.get_catalog_many([("datasets", bad)]) == [None]
        with pytest.raises(NotFound):
            repo.mutate_run(bad, lambda doc: doc)
        with pytest.raises(NotFound):
            repo.delete_run(bad, lambda doc: None)


def test_the_document_says_what_an_id_is():
    from shared.http.openapi import document

    props = document()["components"]["schemas"]["CreateRunRequest"]["properties"]
    schema = props["dataset_id"]["anyOf"][0]
    assert schema["pattern"] == "^[^/]+$" and schema["maxLength"] == doc_ids.MAX_ID_CHARS
