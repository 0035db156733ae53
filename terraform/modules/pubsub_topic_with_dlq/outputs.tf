output "topic_id" {
  description = "Full id of the topic (projects/<project>/topics/<name>)."
  value       = google_pubsub_topic.this.id
}

output "topic_name" {
  description = "Short name of the topic."
  value       = google_pubsub_topic.this.name
}

output "dead_letter_topic_id" {
  description = "Full id of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_topic_name" {
  description = "Short name of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription_name" {
  description = "Subscription that keeps dead-lettered messages."
  value       = google_pubsub_subscription.dead_letter.name
}
