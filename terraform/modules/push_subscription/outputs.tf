output "name" {
  description = "Subscription name."
  value       = google_pubsub_subscription.this.name
}

output "push_endpoint" {
  description = "Where each message is pushed."
  value       = google_pubsub_subscription.this.push_config[0].push_endpoint
}
