"""What every Pub/Sub consumer does around its service call (the event envelope and error mapping):

- malformed or unknown messages are logged and acknowledged (never crash-looped);
- TransientError is raised, so the push gets a 5xx and Pub/Sub redelivers (then dead-letters);
- anything else unexpected is raised too: retried, and dead-lettered after the subscription's
  maximum delivery attempts, never lost and never looping forever.
"""
from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from shared import log
from shared.errors import TransientError
from shared.adapters.messaging import MalformedMessage, PushMessage, parse_push


def consume(event_data: Any, model: type[BaseModel], handle: Callable[[Any, PushMessage], str],
            consumer: str) -> str:
    """The push envelope → the payload validated as `model` (every topic has one: shared/contract/messages.py)
    → handle(payload, message) (the message: its id, attributes, publish time). Every line logged
    inside carries the message id and the payload's run (`run_id`, a field or a property: a
    PipelineLogEntry reads it from its job id)."""
    try:
        message = parse_push(event_data)
        payload = model.model_validate(message.json())
    except ValidationError as exc:
        log.warning("malformed message acknowledged", consumer=consumer,
                    error=f"not a {model.__name__} message: {exc.errors(include_url=False)}")
        return "malformed"
    except (MalformedMessage, ValueError) as exc:
        log.warning("malformed message acknowledged", consumer=consumer, error=str(exc))
        return "malformed"
    run_id = getattr(payload, "run_id", None)
    with log.bound(consumer=consumer, message_id=message.message_id, run_id=run_id):
        try:
            outcome = handle(payload, message)
        except ValueError as exc:
            log.warning("unreadable message acknowledged", error=str(exc))
            return "malformed"
        except TransientError as exc:
            log.warning("transient failure; the message will be redelivered", error=str(exc))
            raise
        log.info("message handled", outcome=outcome)
    return outcome


def event_data(cloud_event) -> Any:
    """The data of a CloudEvent (functions-framework) or a plain dict (tests)."""
    return cloud_event.data if hasattr(cloud_event, "data") else cloud_event
