"""The caller's groups (shared/adapters/group_directory.py): the Cloud Identity Groups API's
searchTransitiveGroups through the real RestClient against an HTTP stand-in that speaks its protocol
(the path, the CEL query it requires, pages, a 403 for an organisation without Premium), the cache,
and the local map; and a `group:` member's role reaching the API's checks."""
from __future__ import annotations

import json
import re
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from shared.adapters.artifact_store import ArtifactStore
from shared.adapters.group_directory import DISCUSSION_FORUM, CloudIdentityGroups, StaticGroups, names_groups
from shared.adapters.rest_client import RestClient
from shared.domain import teams
from shared.http.app import Dependencies, create_app
from shared.settings import Settings
from tests.builders import local_settings
from tests.fakes import FakePublisher, InMemoryRepository

# https://cloud.google.com/identity/docs/reference/rest/v1/groups.memberships/searchTransitiveGroups:
# "A CEL expression that MUST include member specification AND label(s)".
QUERY = re.compile(r"^member_key_id == '([^']+)' && '([^']+)' in labels$")


class CloudIdentity(BaseHTTPRequestHandler):
    memberships = {"alice@example.com": ["recs-ml@example.com", "all-eng@example.com", "Staff@Example.com"]}
    refused = {"nopremium@example.com"}
    page_size = 2
    requests: list = []

    def do_GET(self):  # noqa: N802 — http.server's name
        url = urlparse(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        type(self).requests.append((url.path, params))
        if url.path != "/v1/groups/-/memberships:searchTransitiveGroups":
            return self._answer(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
        match = QUERY.match(params.get("query", ""))
        if not match or match.group(2) != DISCUSSION_FORUM:
            return self._answer(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                                "message": "query must name a member and a label"}})
        member = match.group(1)
        if member in self.refused:
            return self._answer(403, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                                "message": "This feature requires Cloud Identity Premium"}})
        groups = self.memberships.get(member, [])
        start = int(params.get("pageToken") or 0)
        page = groups[start:start + self.page_size]
        body = {"memberships": [{"group": f"groups/{n}", "groupKey": {"id": g}, "displayName": g,
                                 "labels": {DISCUSSION_FORUM: ""}, "relationType": "DIRECT"}
                                for n, g in enumerate(page, start)]}
        if start + self.page_size < len(groups):
            body["nextPageToken"] = str(start + self.page_size)
        return self._answer(200, body)

    def _answer(self, code, body):  # HTTP/1.0: the body ends with the connection
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def cloud_identity():
    CloudIdentity.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), CloudIdentity)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_the_callers_groups_come_from_search_transitive_groups_across_pages(cloud_identity):
    directory = CloudIdentityGroups(RestClient(requests.Session()), api=cloud_identity)
    assert directory("Alice@example.com") == {"recs-ml@example.com", "all-eng@example.com", "staff@example.com"}
    assert [p.get("pageToken") for _, p in CloudIdentity.requests] == [None, "2"]
    assert CloudIdentity.requests[0][1]["query"] == f"member_key_id == 'alice@example.com' && '{DISCUSSION_FORUM}' in labels"
    assert directory("bob@example.com") == frozenset()


def test_answers_are_cached_for_a_few_minutes(cloud_identity):
    clock = Clock()
    directory = CloudIdentityGroups(RestClient(requests.Session()), api=cloud_identity, cache_s=300, clock=clock)
    directory("alice@example.com")
    asked = len(CloudIdentity.requests)
    clock.now = 299
    directory("alice@example.com")
    assert len(CloudIdentity.requests) == asked
    clock.now = 301
    directory("alice@example.com")
    assert len(CloudIdentity.requests) == 2 * asked


def test_a_refusal_gives_no_groups_and_a_quote_never_reaches_the_query(cloud_identity):
    directory = CloudIdentityGroups(RestClient(requests.Session()), api=cloud_identity)
    assert directory("nopremium@example.com") == frozenset()
    assert directory("x' || true || 'y@example.com") == frozenset()
    assert all("||" not in p["query"] for _, p in CloudIdentity.requests)


def test_the_local_map_comes_from_trainyard_groups():
    settings = Settings.from_environ({"TRAINYARD_GROUPS": '{"Alice@example.com": ["ML@example.com"]}'})
    assert StaticGroups(settings.groups)("alice@example.com") == {"ml@example.com"}
    with pytest.raises(ValueError, match="TRAINYARD_GROUPS"):
        Settings.from_environ({"TRAINYARD_GROUPS": '{"alice@example.com": "ml@example.com"}'})


def test_a_group_members_role_reaches_the_api_and_only_teams_naming_groups_ask():
    declared = teams.parse({"recs": {"members": {"group:recs-ml@example.com": "trainer"}, "model_names": ["*"],
                                     "buckets": ["gs://recs-data/"]}})
    assert names_groups(declared) and not names_groups(teams.demo("dev@example.com"))
    settings = replace(local_settings("alice@example.com", "t", teams=declared),
                       groups={"alice@example.com": frozenset({"recs-ml@example.com"})})
    client = create_app(Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=ArtifactStore(),
                                     settings=settings)).test_client()
    made = client.post("/api/datasets", headers={"Authorization": "Bearer t"},
                       json={"name": "d", "source": {"kind": "files", "uri": "gs://recs-data/x.csv", "format": "csv"},
                             "columns": {"user_id": "u", "item_id": "i", "timestamp": "t"}})
    assert made.status_code == 201 and made.get_json()["item"]["team"] == "recs"
    nobody = replace(settings, groups={})
    client = create_app(Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=ArtifactStore(),
                                     settings=nobody)).test_client()
    assert client.get("/api/training-runs", headers={"Authorization": "Bearer t"}).get_json()["training_runs"] == []
