variable "project_id" {
  type        = string
  description = "Project of the topic and the subscription."
}

variable "name" {
  type        = string
  description = "Subscription name: <topic>-<consumer>, as the local stack names its emulator subscriptions."
}

variable "topic_name" {
  type        = string
  description = "Short name of the topic consumed (module.topic[...].topic_name, so the topic is created first)."
}

variable "dead_letter_topic_name" {
  type        = string
  description = "Short name of the topic's dead-letter topic (module.topic[...].dead_letter_topic_name)."
}

variable "endpoint_url" {
  type        = string
  description = "HTTPS URL of the consumer (its Cloud Run service URL); also the OIDC token's audience."
}

variable "push_service_account_email" {
  type        = string
  description = "Identity whose OIDC token authenticates each push; it holds roles/run.invoker on the consumer only."
}

variable "ack_deadline_seconds" {
  type        = number
  description = "Seconds the consumer has to answer a push before Pub/Sub redelivers it (10-600). Must cover the consumer's longest handling (cold start included)."
  default     = 600

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries before a message is dead-lettered (Pub/Sub allows 5-100)."
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "minimum_backoff" {
  type        = string
  description = "Retry policy: minimum delay before a redelivery, e.g. \"10s\"."
  default     = "10s"
}

variable "maximum_backoff" {
  type        = string
  description = "Retry policy: maximum delay before a redelivery, e.g. \"600s\"."
  default     = "600s"
}

variable "message_retention_duration" {
  type        = string
  description = "How long an unacknowledged message is kept (the consumer can be down this long without losing it)."
  default     = "604800s"
}

variable "pubsub_service_agent_email" {
  type        = string
  description = "E-mail of the project's Pub/Sub service agent (it forwards undeliverable messages to the dead-letter topic)."
}

variable "labels" {
  type        = map(string)
  description = "Labels of the subscription."
  default     = {}
}
