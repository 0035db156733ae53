variable "project_id" {
  type        = string
  description = "Project of the Eventarc trigger and its subscription."
}

variable "region" {
  type        = string
  description = "Location of the Eventarc trigger."
}

variable "trigger_name" {
  type        = string
  description = "Eventarc trigger, short name or full resource name (projects/p/locations/l/triggers/t). For a Cloud Functions gen2 function this is event_trigger[0].trigger."
}

variable "dead_letter_topic_id" {
  type        = string
  description = "Full id of the dead-letter topic (projects/p/topics/t) that receives messages after max_delivery_attempts."
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
  description = "Retry policy: minimum delay between redeliveries, e.g. \"10s\"."
  default     = "10s"
}

variable "maximum_backoff" {
  type        = string
  description = "Retry policy: maximum delay between redeliveries, e.g. \"600s\"."
  default     = "600s"
}

variable "pubsub_service_agent_email" {
  type        = string
  description = "Email of the Pub/Sub service agent; it needs subscriber on the source subscription to forward messages to the dead-letter topic."
}
