variable "project_id" {
  type        = string
  description = "Project that owns the topics."
}

variable "name" {
  type        = string
  description = "Topic name (one of shared/contract/topics.py). The dead-letter topic is named \"<name>-dead-letter\"."
}

variable "pubsub_service_agent_email" {
  type        = string
  description = "Email of the project's Pub/Sub service agent (service-<number>@gcp-sa-pubsub.iam.gserviceaccount.com); it forwards undeliverable messages, so it must be able to publish to the dead-letter topic."
}

variable "message_retention_duration" {
  type        = string
  description = "How long the topic keeps messages so subscriptions can seek back, e.g. \"86400s\"."
  default     = "86400s"
}

variable "dead_letter_retention_duration" {
  type        = string
  description = "How long the subscription on the dead-letter topic keeps unacknowledged poison messages (max 7 days)."
  default     = "604800s"
}

variable "labels" {
  type        = map(string)
  description = "Labels applied to both topics and the dead-letter subscription."
  default     = {}
}
