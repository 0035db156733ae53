variable "project_id" {
  type        = string
  description = "Project to deploy the service into."
}

variable "region" {
  type        = string
  description = "Region of the Cloud Run service and its Eventarc trigger."
}

variable "name" {
  type        = string
  description = "Cloud Run service name."
}

variable "image" {
  type        = string
  description = "Container image (the GPU image in Artifact Registry, pinned by tag or digest)."
}

variable "command" {
  type        = list(string)
  description = "Container entrypoint override (e.g. functions-framework with the consumer's target); empty keeps the image's."
  default     = []
}

variable "args" {
  type        = list(string)
  description = "Container arguments."
  default     = []
}

variable "service_account_email" {
  type        = string
  description = "Runtime identity of the service."
}

variable "environment_variables" {
  type        = map(string)
  description = "Environment of the container (read by shared/settings.py)."
  default     = {}
}

variable "cpu" {
  type        = string
  description = "CPU limit of one instance."
  default     = "2"
}

variable "memory" {
  type        = string
  description = "Memory limit of one instance (compiling a TFX pipeline imports TensorFlow)."
  default     = "4Gi"
}

variable "timeout" {
  type        = string
  description = "Request timeout; a message must be handled within it."
  default     = "600s"
}

variable "max_instance_count" {
  type        = number
  description = "Upper bound on instances."
  default     = 5
}

variable "concurrency" {
  type        = number
  description = "Requests one instance handles at once (the heavy consumers do one at a time)."
  default     = 1
}

variable "trigger_topic_id" {
  type        = string
  description = "Full id of the Pub/Sub topic whose messages the Eventarc trigger delivers to the service."
}

variable "trigger_service_account_email" {
  type        = string
  description = "Identity of the Eventarc trigger; gets roles/run.invoker on this service only."
}

variable "dead_letter_topic_id" {
  type        = string
  description = "Dead-letter topic for the trigger's subscription."
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries before a message is dead-lettered."
  default     = 5
}

variable "minimum_backoff" {
  type        = string
  description = "Retry policy minimum backoff of the trigger's subscription."
  default     = "10s"
}

variable "maximum_backoff" {
  type        = string
  description = "Retry policy maximum backoff of the trigger's subscription."
  default     = "600s"
}

variable "pubsub_service_agent_email" {
  type        = string
  description = "Email of the Pub/Sub service agent (dead-lettering needs it as subscriber on the trigger's subscription)."
}

variable "deletion_protection" {
  type        = bool
  description = "Whether Terraform refuses to destroy the service."
  default     = false
}

variable "labels" {
  type        = map(string)
  description = "Labels of the service and trigger."
  default     = {}
}
