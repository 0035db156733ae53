import pytest


@pytest.fixture(scope="session")
def tiny_transform(tmp_path_factory):
    """Tiny demo data through the real preprocessing_fn with tft_beam (once per session, ~30 s)."""
    from tests.unit.pipeline_compiler.tiny_data import run_tiny_transform

    return run_tiny_transform(str(tmp_path_factory.mktemp("tiny")))
