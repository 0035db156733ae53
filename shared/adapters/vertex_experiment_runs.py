"""Vertex AI Experiments as an import's source (the CLI's `--from vertex` and the API's; docs/import.md): the
runs of an experiment through the official SDK (`aiplatform.ExperimentRun.list`, which reads MetadataService's
contexts and executions), their params, summary metrics and state. The SDK is imported only when runs are
read: it takes seconds, which the API's cold start never pays."""
from __future__ import annotations

import importlib
import json
import threading
from typing import Iterator, Optional
from urllib.parse import quote

from shared.domain.import_mapping import SourceError, SourceRun


# `aiplatform.init` sets the SDK's one process-wide configuration, which `ExperimentRun.list` and each run's
# params and metrics read: two imports at once (the API serves requests on threads) from different projects
# would read each other's. So one import reads Vertex at a time, all it needs, before the next.
_SDK_CONFIG = threading.Lock()


class VertexExperimentRuns:
    name = "vertex"

    def __init__(self, project: str, location: str, api_endpoint: Optional[str] = None):
        self.project, self.region = project, location
        self.location = f"projects/{project}/locations/{location}"
        self.api_endpoint = api_endpoint

    def runs(self, experiment: str) -> Iterator[SourceRun]:
        # The Vertex AI SDK takes seconds to import: loaded on the first import from Vertex, never on the
        # API's cold start (as shared/adapters/vertex_gapic.py loads the GAPIC client).
        aiplatform = importlib.import_module("google.cloud.aiplatform")
        exceptions = importlib.import_module("google.api_core.exceptions")
        auth_exceptions = importlib.import_module("google.auth.exceptions")
        try:
            with _SDK_CONFIG:
                aiplatform.init(project=self.project, location=self.region, api_endpoint=self.api_endpoint)
                read = [self._source_run(run, experiment)
                        for run in sorted(aiplatform.ExperimentRun.list(experiment=experiment), key=lambda r: r.name)]
        except exceptions.NotFound:
            raise SourceError(f"Vertex AI Experiments: no experiment {experiment!r} in {self.location}") from None
        except (exceptions.GoogleAPICallError, auth_exceptions.GoogleAuthError) as exc:
            raise SourceError(f"Vertex AI Experiments in {self.location}: {exc}") from None
        yield from read

    def _source_run(self, run, experiment: str) -> SourceRun:
        run_id = run.resource_name.rsplit("/", 1)[-1]
        return SourceRun(
            id=run_id, name=run.name, status=str(run.get_state()),
            params={k: _text(v) for k, v in run.get_params().items()},
            metrics={k: float(v) for k, v in run.get_metrics().items() if isinstance(v, (int, float))},
            tags={}, artifact_uri="",
            url=(f"https://console.cloud.google.com/vertex-ai/experiments/locations/{quote(self.region)}/"
                 f"experiments/{quote(experiment)}/runs/{quote(run_id)}?project={quote(self.project)}"),
            read_artifact=_no_files)


def _text(value) -> str:
    """A param as MLflow gives it (text): the mapping decodes numbers and JSON the same way for both."""
    return value if isinstance(value, str) else json.dumps(value)


def _no_files(path: str) -> bytes:
    raise FileNotFoundError(f"{path!r}: a Vertex AI Experiments run's artifacts are lineage records (a URI), "
                            "not files the importer reads; map this kind's fields from params instead")
