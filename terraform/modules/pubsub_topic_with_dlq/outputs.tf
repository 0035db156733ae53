# Ids are built from configured arguments (project, name), not read from the resources' computed `id`:
# they are known while planning a fresh project, so callers may use them in count/for_each and
# conditions. The references to the resources keep the dependency on them.
output "topic_id" {
  description = "Full id of the topic (projects/<project>/topics/<name>)."
  value       = "projects/${google_pubsub_topic.this.project}/topics/${google_pubsub_topic.this.name}"
}

output "topic_name" {
  description = "Short name of the topic."
  value       = google_pubsub_topic.this.name
}

output "dead_letter_topic_id" {
  description = "Full id of the dead-letter topic."
  value       = "projects/${google_pubsub_topic.dead_letter.project}/topics/${google_pubsub_topic.dead_letter.name}"
}

output "dead_letter_topic_name" {
  description = "Short name of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription_name" {
  description = "Subscription that keeps dead-lettered messages."
  value       = google_pubsub_subscription.dead_letter.name
}
