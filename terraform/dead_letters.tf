# Dead-letter replay through the API (shared/http/admin_routes.py, admins only: var.admin_emails): the API's
# account pulls, hands back and acknowledges what each topic's `<topic>-dead-letter-hold` keeps, and
# republishes it onto the topic (roles/pubsub.publisher only on the topics it publishes to itself: iam.tf
# local.topic_publishers; the others are replayed with an operator's own credentials, --direct).
# roles/pubsub.subscriber on the hold subscription alone, not on the project: the API consumes nothing else.
resource "google_pubsub_subscription_iam_member" "dead_letter_readers" {
  for_each = toset(local.topics)

  project      = var.project_id
  subscription = module.topic[each.value].dead_letter_subscription_name
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.sa["api"].member
}
