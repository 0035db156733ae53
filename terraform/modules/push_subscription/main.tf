# One consumer's subscription: Pub/Sub pushes each message of a topic to a Cloud Run service or a
# Cloud Functions gen2 function ("Direct Pub/Sub trigger (Recommended)",
# https://cloud.google.com/run/docs/triggering/pubsub-triggers), authenticated with an OIDC token of
# the consumer's own push identity. Terraform owns everything an Eventarc-made subscription would hide:
# the ack deadline (the consumer's whole handling time, so nothing is redelivered mid-flight), the
# retry backoff and the dead-letter policy.
#
# The push path names the topic (/projects/P/topics/T), which is how functions-framework builds the
# CloudEvent it hands the handler from a plain push body - the same path the local stack's emulator
# subscriptions use (scripts/stack.py).

locals {
  topic_id             = "projects/${var.project_id}/topics/${var.topic_name}"
  dead_letter_topic_id = "projects/${var.project_id}/topics/${var.dead_letter_topic_name}"
}

resource "google_pubsub_subscription" "this" {
  project                    = var.project_id
  name                       = var.name
  topic                      = local.topic_id
  labels                     = var.labels
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration

  expiration_policy {
    ttl = "" # never expires
  }

  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = var.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = local.dead_letter_topic_id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    push_endpoint = "${var.endpoint_url}/projects/${var.project_id}/topics/${var.topic_name}"

    oidc_token {
      service_account_email = var.push_service_account_email
      # Cloud Run checks the token's audience against the service URL (not the path).
      audience = var.endpoint_url
    }
  }
}

# Dead-lettering: the Pub/Sub service agent acknowledges the message here after forwarding it to the
# dead-letter topic (it also needs publisher there, granted by pubsub_topic_with_dlq).
resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.this.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent_email}"
}
