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
  # consumer => its topic, ack deadline, code and identity: consumers.json, the one table Terraform and
  # the local twin (scripts/stack.py) read.
  consumers = jsondecode(file("${path.module}/consumers.json")).consumers
  # Each consumer's retry window. The invariant (tests/unit/test_terraform.py): a delivery refused
  # because another one holds the work must be redelivered after that hold ends. A submit claim is
  # held for TRAINYARD_SUBMIT_LEASE_SECONDS — the holder's request timeout plus a margin, as the
  # holder cannot outlive its request — and every redelivery waits at least minimum_backoff, so the
  # submitter needs (max_delivery_attempts - 1) x minimum_backoff beyond the lease, whatever the
  # backoff's growth (its row's retry). The default policy (5 attempts from 10 s) gave up in about five
  # minutes, inside the ten-minute lease, and dead-lettered a run a dead submitter left behind.
  submit_lease_seconds = local.consumers["submitter"].ack_deadline_seconds + 30
  retry_default        = { minimum_backoff = var.retry_minimum_backoff, max_delivery_attempts = var.max_delivery_attempts }
  retry                = { for name, c in local.consumers : name => merge(local.retry_default, try(c.retry, {})) }
  consumer_urls        = merge({ for name, m in module.consumer_function : name => m.uri }, { for name, m in module.consumer_service : name => m.uri })
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
