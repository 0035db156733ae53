# Every topic of shared/topics.py with its dead-letter topic. The consumers' triggers (functions.tf)
# get a retry policy and a dead-letter policy pointing at these dead-letter topics.

module "topic" {
  source   = "./modules/pubsub_topic_with_dlq"
  for_each = toset(local.topics)

  project_id                 = var.project_id
  name                       = each.value
  pubsub_service_agent_email = google_project_service_identity.pubsub.email
  labels                     = var.labels

  depends_on = [google_project_service.enabled]
}
