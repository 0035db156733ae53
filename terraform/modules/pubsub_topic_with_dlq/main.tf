# A topic, its dead-letter topic, and a pull subscription on the dead-letter topic so poison
# messages are kept (for inspection / replay) instead of being dropped. Consumers attach their own
# push subscription (modules/push_subscription) to `topic_name` with its dead-letter policy on
# `dead_letter_topic_name`.

resource "google_pubsub_topic" "this" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is sufficient for run ids and event envelopes (no customer data in messages); CMEK would add a KMS dependency for no gain.
  project                    = var.project_id
  name                       = var.name
  labels                     = var.labels
  message_retention_duration = var.message_retention_duration
}

resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is sufficient for run ids and event envelopes (no customer data in messages); CMEK would add a KMS dependency for no gain.
  project                    = var.project_id
  name                       = "${var.name}-dead-letter"
  labels                     = var.labels
  message_retention_duration = var.dead_letter_retention_duration
}

# Holds dead-lettered messages. It is the end of the line: nothing consumes it automatically, so it
# has a retry policy but no dead-letter policy of its own (a dead letter of a dead letter has
# nowhere useful to go).
resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name}-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter.id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention_duration
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expires
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
}

# Dead-lettering requires the Pub/Sub service agent to publish to the dead-letter topic.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.pubsub_service_agent_email}"
}
