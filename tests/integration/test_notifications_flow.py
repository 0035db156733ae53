"""Notifications through the local stack: a run with a signed webhook fails in its pipeline;
pipeline_events queues `notify` on run-commands, the run-commands consumer (functions-framework, Pub/Sub
push) posts to a local HTTP receiver that refuses twice, retries with backoff, and the receiver gets
the message exactly once, signed, with the run's name, status, error, duration, cost and link."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.conftest import NOTIFY_SECRET, NOTIFY_SECRET_NAME
from tests.integration.test_control_plane_flow import catalog, create, deliver  # noqa: F401 (fixture)
from tests.unit.scenario import job_timeline

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 503 to its first `refuse` posts."""

    def __init__(self, refuse: int):
        self.refuse, self.posts, self.accepted = refuse, [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append(time.monotonic())
                if len(receiver.posts) <= receiver.refuse:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.accepted.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/trainyard"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = Receiver(refuse=2)
    yield made
    made.stop()


def test_a_failed_run_notifies_a_receiver_that_fails_twice_exactly_once(local_stack, catalog, receiver):  # noqa: F811
    run = create(local_stack, catalog, "notify-failing", notifications={
        "webhooks": [{"url": receiver.url, "secret": NOTIFY_SECRET_NAME}], "events": ["failed", "not_blessed"]})
    job_id = f"{run['id']}-a1"
    local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="submission")
    deliver(local_stack, job_timeline(job_id, fail_at="Trainer"), job_id)
    deadline = time.time() + 60
    while not receiver.accepted and time.time() < deadline:
        time.sleep(0.1)
    assert receiver.accepted, f"no notification accepted; {len(receiver.posts)} post(s) refused"
    assert len(receiver.posts) == 3  # refused, refused (backoff between), accepted
    assert receiver.posts[2] - receiver.posts[1] >= receiver.posts[1] - receiver.posts[0] > 0.5  # backing off

    headers, body = receiver.accepted[0]
    stamp = headers["X-Trainyard-Timestamp"]
    expected = hmac.new(NOTIFY_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Trainyard-Signature"] == "v1=" + expected
    message = json.loads(body)
    assert message["trainyard"]["event"] == "failed" and message["trainyard"]["run_id"] == run["id"]
    assert f"*notify-failing #{run['run_number']}* ❌ failed" in message["text"]
    assert "Failed at Train" in message["text"] and "Estimated cost:" in message["text"]
    assert f"#run={run['id']}|Open the run>" in message["text"]

    final = local_stack.wait_for(run["id"], lambda r: (r.get("notifications_sent") or {}).get(
        "1:failed:webhook-0", {}).get("status") == "sent", what="the ledger to say sent")
    assert final["status"] == "failed" and final["notifications_sent"]["1:failed:webhook-0"]["tries"] == 1
    # The pipeline's final event again (Pub/Sub is at least once): nothing is sent twice.
    deliver(local_stack, job_timeline(job_id, fail_at="Trainer")[-1:], job_id)
    time.sleep(3)
    assert len(receiver.accepted) == 1 and len(receiver.posts) == 3
