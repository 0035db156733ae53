"""Load canonical event bodies, optionally re-pointed at another run/job."""
from __future__ import annotations

import base64
import json
from pathlib import Path

HERE = Path(__file__).parent


def load_event(name: str, **replace) -> dict:
    body = json.loads((HERE / name).read_text())
    if replace:
        payload = json.loads(base64.b64decode(body["message"]["data"]))
        text = json.dumps(payload)
        for old, new in replace.items():
            text = text.replace(old, new)
        body["message"]["data"] = base64.b64encode(text.encode()).decode()
    return body


def envelope(payload, message_id: str = "1", publish_time: str | None = None) -> dict:
    """A push body as Pub/Sub delivers it: the payload (JSON, or bytes as they are) in message.data."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    message = {"data": base64.b64encode(data).decode(), "messageId": message_id}
    if publish_time:
        message["publishTime"] = publish_time
    return {"message": message, "subscription": "projects/p/subscriptions/s"}


def payload_of(body: dict):
    return json.loads(base64.b64decode(body["message"]["data"]))
