"""Pub/Sub topic names (one place; Terraform and the local stack create the same ones)."""

RUN_SUBMIT = "run-submit"  # {run_id, attempt}: the submitter claims, compiles and submits
PIPELINE_EVENTS = "pipeline-events"  # Cloud Logging sink of Vertex pipeline job/task events
TRAINING_PROGRESS = "training-progress"  # EpochMetrics from the Trainer
SCHEDULE_TRIGGER = "schedule-trigger"  # {schedule_id}: Cloud Scheduler / the local ticker
RUN_COMMANDS = "run-commands"  # {run_id, command, ...}: cancel, deploy, push-anyway (slow cloud calls)
RECONCILE = "reconcile"  # {}: Cloud Scheduler / the local ticker, every few minutes (shared/services/reconcile.py)
DATA_LANDED = "data-landed"  # bucket notifications, the BigQuery audit sink, the local watcher (data_triggers.tf)

ALL = (RUN_SUBMIT, PIPELINE_EVENTS, TRAINING_PROGRESS, SCHEDULE_TRIGGER, RUN_COMMANDS, RECONCILE, DATA_LANDED)
# What the API's account may publish to (terraform/iam.tf local.topic_publishers): its own messages (runs to
# submit, run commands) and schedule-trigger, which its Cloud Scheduler jobs target. Only those it can
# replay from a dead-letter hold; the others are replayed with an operator's own credentials
# (`trainyard admin dead-letters replay TOPIC --direct`). Security review LOW "IAM breadth".
API_PUBLISHES = (RUN_SUBMIT, RUN_COMMANDS, SCHEDULE_TRIGGER)


def dead_letter(topic: str) -> str:
    return f"{topic}-dead-letter"
