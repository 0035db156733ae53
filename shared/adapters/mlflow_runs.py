"""An MLflow tracking server as an import's source (the CLI's and the API's: docs/import.md): its REST API,
so neither needs the mlflow package. Yields SourceRuns (shared/domain/import_mapping.py).

Read by the API, the URL is the caller's: `allowed(url)` (the deployment's hosts, shared/services/
experiment_import.py) is asked of the tracking URI and of every redirect before it is followed, so a server
cannot bounce the API to a host it may not reach (the metadata server, an internal service)."""
from __future__ import annotations

from typing import Callable, Iterator, Optional
from urllib.parse import quote, urljoin

import requests

from shared.domain.import_mapping import SourceError, SourceRun

# runs/search returns at most this many a page (MLflow's own cap for max_results is 50,000; a smaller
# page keeps each response small): https://mlflow.org/docs/latest/api_reference/rest-api.html#search-runs
MLFLOW_PAGE = 1000


# Redirects followed at most (requests' own default is 30): a tracking server behind a proxy needs one or two.
MAX_REDIRECTS = 5


class MlflowRuns:
    name = "mlflow"

    def __init__(self, tracking_uri: str, token: Optional[str] = None, timeout_s: float = 30,
                 allowed: Optional[Callable[[str], bool]] = None):
        self.location = tracking_uri.strip().rstrip("/")
        if not self.location.startswith(("http://", "https://")):
            raise SourceError(f"{tracking_uri}: an MLflow tracking server's http(s) URL (file: and databricks "
                              "URIs are not read; serve the store with `mlflow server`)")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout_s = timeout_s
        self.allowed = allowed or (lambda url: True)

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        url = f"{self.location}{path}"
        try:
            for _ in range(MAX_REDIRECTS + 1):
                response = self.session.request(method, url, timeout=self.timeout_s, allow_redirects=False, **kwargs)
                if not response.is_redirect:
                    return response
                url = urljoin(url, response.headers["location"])
                if not self.allowed(url):
                    raise SourceError(f"MLflow at {self.location}: redirected to {url}, a host this deployment "
                                      "does not read from")
                if response.status_code not in (307, 308):  # 301-303 turn the request into a GET without a body
                    method, kwargs = "GET", {k: v for k, v in kwargs.items() if k != "json"}
                kwargs.pop("params", None)  # the redirect's URL carries its own query
        except requests.RequestException as exc:
            raise SourceError(f"MLflow at {self.location}: {exc}") from None
        raise SourceError(f"MLflow at {self.location}: more than {MAX_REDIRECTS} redirects")

    def _json(self, method: str, path: str, **kwargs) -> dict:
        response = self._call(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text[:300]
            raise SourceError(f"MLflow at {self.location}: {method} {path}: HTTP {response.status_code}: {message}")
        return response.json()

    def runs(self, experiment: str) -> Iterator[SourceRun]:
        found = self._json("GET", "/api/2.0/mlflow/experiments/get-by-name",
                           params={"experiment_name": experiment})["experiment"]
        experiment_id = found["experiment_id"]
        token = None
        while True:
            body = {"experiment_ids": [experiment_id], "max_results": MLFLOW_PAGE, "run_view_type": "ACTIVE_ONLY",
                    "order_by": ["attributes.start_time ASC"]}
            if token:
                body["page_token"] = token
            page = self._json("POST", "/api/2.0/mlflow/runs/search", json=body)
            for run in page.get("runs", []):
                yield self._run(experiment_id, run)
            token = page.get("next_page_token")
            if not token:
                return

    def _run(self, experiment_id: str, logged: dict) -> SourceRun:
        """A run as runs/search returns it ({info, data}; an MLflow run, not a Trainyard one)."""
        info, data = logged["info"], logged.get("data", {})
        run_id = info["run_id"]

        def read_artifact(path: str) -> bytes:
            # The tracking server's own download route (what its UI uses), for any artifact store it serves.
            response = self._call("GET", "/get-artifact", params={"path": path, "run_uuid": run_id})
            if response.status_code == 200:
                return response.content
            listed = self._json("GET", "/api/2.0/mlflow/artifacts/list", params={"run_id": run_id}).get("files", [])
            raise FileNotFoundError(f"the run has no artifact {path!r} (it has: "
                                    f"{', '.join(f['path'] for f in listed) or 'none'})")

        return SourceRun(
            id=run_id, name=info.get("run_name") or run_id, status=info.get("status", ""),
            params={p["key"]: p.get("value", "") for p in data.get("params", [])},
            metrics={m["key"]: m["value"] for m in data.get("metrics", [])},
            tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
            artifact_uri=info.get("artifact_uri", ""),
            url=f"{self.location}/#/experiments/{quote(experiment_id)}/runs/{quote(run_id)}",
            read_artifact=read_artifact)
