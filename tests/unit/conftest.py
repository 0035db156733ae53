"""The fixtures unit tests share: the in-memory adapters (tests/fakes.py), fresh for each test, asked
for by name. A test module that needs another shape (a wrapped repository, a failing publisher)
defines its own fixture of the same name, which wins there. The fake keeps the real repository's
semantics: tests/integration/test_repository_contract.py runs both through the same contract."""
from __future__ import annotations

import pytest

from shared.adapters.artifact_store import ArtifactStore
from tests.builders import seed_catalog
from tests.fakes import FakeBackend, FakePublisher, InMemoryRepository


@pytest.fixture
def repo() -> InMemoryRepository:
    return InMemoryRepository()


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def store() -> ArtifactStore:
    """gs:// through a client built on first use; local paths (tmp_path) as files."""
    return ArtifactStore()


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def ids(repo) -> dict:
    """A dataset, feature config, model config and experiment of the demo team (tests/builders.seed_catalog)."""
    return seed_catalog(repo)
