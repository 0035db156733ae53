variable "project_id" {
  type        = string
  description = "Google Cloud project that hosts Trainyard."
}

variable "region" {
  type        = string
  description = "Region of the functions, Cloud Run services, Eventarc triggers, Artifact Registry, buckets and Vertex AI pipelines."
  default     = "europe-west4"
}

variable "firestore_location" {
  type        = string
  description = "Location of the Firestore database (a region such as europe-west4 or a multi-region such as eur3). Immutable once created."
  default     = "europe-west4"
}

variable "org_domain" {
  type        = string
  description = "The organisation's e-mail domain (e.g. example.com): signed-in users with a verified address in it may read runs, schedules and the catalog (Firestore rules) and the API checks it too."
}

variable "api_invoker_members" {
  type        = list(string)
  description = "IAM members allowed to call the API function (roles/run.invoker), e.g. [\"domain:example.com\"] or [\"group:ml-team@example.com\"]. Never allUsers."
  default     = []
}

variable "artifact_registry_repository" {
  type        = string
  description = "Artifact Registry docker repository holding the GPU image (the Cloud Build substitution _REPOSITORY)."
  default     = "trainyard"
}

variable "gpu_image_name" {
  type        = string
  description = "Image name inside the repository, as gpu_image/cloudbuild.yaml pushes it."
  default     = "tfx-trainer-gpu"
}

variable "gpu_image_tag" {
  type        = string
  description = "Tag of the GPU image that the submitter and run-commands services (and the pipeline components) run."
  default     = "latest"
}

variable "artifacts_bucket_name" {
  type        = string
  description = "Bucket for run artifacts (module + config snapshots, models, metrics). Defaults to <project>-trainyard-artifacts."
  default     = null
}

variable "pipeline_root_bucket_name" {
  type        = string
  description = "Bucket used as the Vertex AI pipeline root. Defaults to <project>-trainyard-pipeline-root."
  default     = null
}

variable "function_source_bucket_name" {
  type        = string
  description = "Bucket holding the zipped function sources. Defaults to <project>-trainyard-function-source."
  default     = null
}

variable "pipeline_root_retention_days" {
  type        = number
  description = "Age in days after which intermediate pipeline-root objects are deleted."
  default     = 90
}

variable "noncurrent_version_retention_days" {
  type        = number
  description = "Days a replaced or deleted object version is kept (both buckets are versioned)."
  default     = 30
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries of a Pub/Sub message before it goes to the topic's dead-letter topic (5-100)."
  default     = 5
}

variable "retry_minimum_backoff" {
  type        = string
  description = "Retry policy of every trigger's subscription: minimum redelivery delay."
  default     = "10s"
}

variable "retry_maximum_backoff" {
  type        = string
  description = "Retry policy of every trigger's subscription: maximum redelivery delay."
  default     = "600s"
}

variable "repo_root" {
  type        = string
  description = "Path of the Trainyard checkout (holding functions/ and shared/). Defaults to the parent of this module."
  default     = null
}

variable "consumer_commands" {
  type        = map(list(string))
  description = "Container command of each Cloud Run consumer (keys submitter, run_commands): the Functions Framework serving the consumer's handler from the GPU image."
  default = {
    submitter    = ["functions-framework", "--source=functions/submitter/main.py", "--target=on_run_submit", "--signature-type=cloudevent", "--port=8080"]
    run_commands = ["functions-framework", "--source=functions/run_commands/main.py", "--target=on_run_command", "--signature-type=cloudevent", "--port=8080"]
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the Firestore database and Cloud Run services from deletion."
  default     = true
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that supports them."
  default     = { app = "trainyard" }
}
