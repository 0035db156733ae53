"""POST /api/experiments:import-from makes the API fetch what its caller names, so (docs/import.md,
docs/security.md): only a trainer of the team imports into it, and the source is refused before anything is
read otherwise; only the tracking hosts TRAINYARD_IMPORT_MLFLOW_HOSTS lists are read (a 400 naming
tracking_uri); a redirect to any other host is not followed (the real MLflow reader against two local HTTP
servers: the second is never reached); Vertex AI Experiments only in the deployment's own project."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.security.test_ownership import World, refused
from tests.unit.test_experiment_import import FakeRuns
from tests.unit.test_import_mapping import a_logged_run

BODY = {"source": "mlflow", "tracking_uri": "http://localhost:5000", "experiment": "quick", "team": "recs"}


class SourcedWorld(World):
    """World's API (local settings: TRAINYARD_IMPORT_MLFLOW_HOSTS is localhost and 127.0.0.1), its import
    source a fake, or the real MLflow reader (`real`)."""

    def __init__(self, real: bool = False):
        self.source = None if real else FakeRuns([a_logged_run(data_uri="gs://recs-data/t.csv")])
        super().__init__(experiment_runs=self.source)


@pytest.mark.parametrize("who,needed", [("mallory@example.com", None), ("eve@example.com", None),
                                        ("vic@example.com", "trainer")])
def test_another_teams_import_is_refused_before_the_source_is_read(who, needed):
    world = SourcedWorld()
    refused(world.call(who, "POST", "/api/experiments:import-from", BODY), needed=needed)
    assert world.source.opened == [] and world.repo.catalog.get("experiments", {}) == {}
    ok = world.call("tom@example.com", "POST", "/api/experiments:import-from", BODY)
    assert ok.status_code == 200 and ok.get_json()["counts"] == {"created": 1}, ok.get_json()
    audited = [a for a in world.repo.audit.values() if a.get("path") == "/api/experiments:import-from"]
    assert [a["status"] for a in audited] == [403, 200]


@pytest.mark.parametrize("uri", ["http://169.254.169.254/computeMetadata/v1/", "http://metadata.google.internal/",
                                 "http://localhost@10.0.0.1:5000/", "http://10.0.0.1:5000", "file:///etc/passwd"])
def test_a_host_not_allowed_is_a_400_naming_tracking_uri(uri):
    world = SourcedWorld()
    answer = world.call("tom@example.com", "POST", "/api/experiments:import-from", {**BODY, "tracking_uri": uri})
    assert answer.status_code == 400 and [e["field"] for e in answer.get_json()["errors"]] == ["tracking_uri"]
    assert world.source.opened == []


def test_vertex_in_another_project_is_refused():
    world = SourcedWorld()
    answer = world.call("tom@example.com", "POST", "/api/experiments:import-from",
                        {"source": "vertex", "project": "someone-elses", "location": "europe-west4",
                         "experiment": "q", "team": "recs"})
    assert answer.status_code == 400 and [e["field"] for e in answer.get_json()["errors"]] == ["project"]
    assert world.source.opened == []


class _Recorder(BaseHTTPRequestHandler):
    redirect_to = None
    seen: list

    def do_GET(self):  # noqa: N802 — http.server's name
        self.seen.append(self.path)
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to + self.path)
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"experiment": {"experiment_id": "1"}}')

    def log_message(self, *args):
        pass


def _serve(host: str, redirect_to=None):
    handler = type("Handler", (_Recorder,), {"redirect_to": redirect_to, "seen": []})
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler.seen


def test_a_redirect_to_a_host_not_allowed_is_not_followed():
    # 127.0.0.2 is this machine too (all of 127/8 is loopback), but not a listed host: it stands for the
    # metadata server or an internal service a tracking server could bounce the API to.
    inside, inside_seen = _serve("127.0.0.2")
    outside, outside_seen = _serve("127.0.0.1", redirect_to=f"http://127.0.0.2:{inside.server_port}")
    try:
        world = SourcedWorld(real=True)
        answer = world.call("tom@example.com", "POST", "/api/experiments:import-from",
                            {**BODY, "tracking_uri": f"http://127.0.0.1:{outside.server_port}"})
        assert answer.status_code == 502, answer.get_json()
        assert "redirected to http://127.0.0.2" in answer.get_json()["message"]
        assert len(outside_seen) == 1 and inside_seen == []
    finally:
        inside.shutdown()
        outside.shutdown()
