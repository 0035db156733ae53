variable "project_id" {
  type        = string
  description = "Project to deploy the service into."
}

variable "region" {
  type        = string
  description = "Region of the Cloud Run service."
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

variable "invokers" {
  type        = map(string)
  description = "IAM members allowed to invoke the service (roles/run.invoker), by a static name: its push subscription's identity."
  default     = {}
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
