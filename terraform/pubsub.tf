# Every topic of shared/contract/topics.py with its dead-letter topic, and each consumer's push subscription:
# Pub/Sub pushes straight to the consumer's service (no Eventarc), so Terraform owns the ack
# deadline, the retry backoff and the dead-letter policy of every subscription.

module "topic" {
  source   = "./modules/pubsub_topic_with_dlq"
  for_each = toset(local.topics)

  project_id                 = var.project_id
  name                       = each.value
  pubsub_service_agent_email = local.pubsub_agent_email
  labels                     = var.labels

  depends_on = [google_project_service.enabled, google_project_service_identity.pubsub]
}

locals {
  # consumer => the topic it consumes and how long one push may take (its request timeout, so nothing
  # is redelivered while it is still being handled). scripts/stack.py wires the local twin from the
  # same table (tests/rehearsal checks they agree).
  consumers = {
    submitter         = { topic = "run-submit", ack_deadline_seconds = 600 }
    pipeline_events   = { topic = "pipeline-events", ack_deadline_seconds = 60 }
    training_progress = { topic = "training-progress", ack_deadline_seconds = 60 }
    scheduler         = { topic = "schedule-trigger", ack_deadline_seconds = 60 }
    run_commands      = { topic = "run-commands", ack_deadline_seconds = 600 }
    reconciler        = { topic = "reconcile", ack_deadline_seconds = 120 }
  }
  # Each consumer's retry window. The invariant (tests/unit/test_terraform.py): a delivery refused
  # because another one holds the work must be redelivered after that hold ends. A submit claim is
  # held for TRAINYARD_SUBMIT_LEASE_SECONDS — the holder's request timeout plus a margin, as the
  # holder cannot outlive its request — and every redelivery waits at least minimum_backoff, so the
  # submitter needs (max_delivery_attempts - 1) x minimum_backoff beyond the lease, whatever the
  # backoff's growth. The default policy (5 attempts from 10 s) gave up in about five minutes, inside
  # the ten-minute lease, and dead-lettered a run a dead submitter left behind.
  submit_lease_seconds = local.consumers["submitter"].ack_deadline_seconds + 30
  retry = {
    submitter         = { minimum_backoff = "60s", max_delivery_attempts = 15 }
    pipeline_events   = { minimum_backoff = var.retry_minimum_backoff, max_delivery_attempts = var.max_delivery_attempts }
    training_progress = { minimum_backoff = var.retry_minimum_backoff, max_delivery_attempts = var.max_delivery_attempts }
    scheduler         = { minimum_backoff = var.retry_minimum_backoff, max_delivery_attempts = var.max_delivery_attempts }
    run_commands      = { minimum_backoff = var.retry_minimum_backoff, max_delivery_attempts = var.max_delivery_attempts }
    # A lost pass costs nothing: the next one comes with the next tick of the reconcile job.
    reconciler = { minimum_backoff = var.retry_minimum_backoff, max_delivery_attempts = var.max_delivery_attempts }
  }
  consumer_urls = {
    submitter         = module.run_submitter.uri
    pipeline_events   = module.fn_pipeline_events.uri
    training_progress = module.fn_training_progress.uri
    scheduler         = module.fn_scheduler.uri
    run_commands      = module.run_commands.uri
    reconciler        = module.fn_reconciler.uri
  }
}

module "push" {
  source   = "./modules/push_subscription"
  for_each = local.consumers

  project_id                 = var.project_id
  name                       = "${each.value.topic}-${each.key}"
  topic_name                 = module.topic[each.value.topic].topic_name
  dead_letter_topic_name     = module.topic[each.value.topic].dead_letter_topic_name
  endpoint_url               = local.consumer_urls[each.key]
  push_service_account_email = google_service_account.push[each.key].email
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  max_delivery_attempts      = local.retry[each.key].max_delivery_attempts
  minimum_backoff            = local.retry[each.key].minimum_backoff
  maximum_backoff            = var.retry_maximum_backoff
  pubsub_service_agent_email = local.pubsub_agent_email
  labels                     = var.labels

  depends_on = [google_service_account_iam_member.pubsub_token_creator]
}
