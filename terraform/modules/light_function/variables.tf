variable "project_id" {
  type        = string
  description = "Project to deploy the function into."
}

variable "region" {
  type        = string
  description = "Region of the function."
}

variable "name" {
  type        = string
  description = "Function name (also the name of its Cloud Run service)."
}

variable "description" {
  type        = string
  description = "Human-readable description of the function."
  default     = ""
}

variable "source_dir" {
  type        = string
  description = "The function's folder (functions/<name>/): main.py and requirements.txt land at the zip's root."
}

variable "shared_dir" {
  type        = string
  description = "The repository's shared/ folder, packaged as the `shared` package next to main.py."
}

variable "include_pattern" {
  type        = string
  description = "fileset() pattern of the files packaged from source_dir and shared_dir (text files only; caches and binaries are left out)."
  default     = "**/*.{py,txt,json,yaml,yml,cfg,toml}"
}

variable "source_bucket" {
  type        = string
  description = "Bucket holding the zipped sources; the object name carries the zip's SHA-256 so a change of any file redeploys."
}

variable "entry_point" {
  type        = string
  description = "Python function called by the Functions Framework."
}

variable "runtime" {
  type        = string
  description = "Cloud Functions runtime."
  default     = "python311"
}

variable "service_account_email" {
  type        = string
  description = "Runtime identity of the function (one per function, least privilege)."
}

variable "environment_variables" {
  type        = map(string)
  description = "Environment of the function (read by shared/settings.py)."
  default     = {}
}

variable "secret_env" {
  type        = map(string)
  description = "Environment variables read from Secret Manager, name => secret id in this project (its latest version); the function's identity must be able to read each."
  default     = {}

  validation {
    condition = alltrue([for name, secret in var.secret_env :
    can(regex("^[A-Z][A-Z0-9_]*$", name)) && can(regex("^[A-Za-z0-9_-]{1,255}$", secret))])
    error_message = "A name is an upper-case environment variable name; a secret id is 1-255 letters, digits, '_' or '-'."
  }
}

variable "available_memory" {
  type        = string
  description = "Memory of one instance, e.g. \"512Mi\"."
  default     = "512Mi"
}

variable "timeout_seconds" {
  type        = number
  description = "Request timeout (an event function's push subscription waits at most its ack deadline)."
  default     = 120
}

variable "max_instance_count" {
  type        = number
  description = "Upper bound on instances (caps cost and Firestore contention); null keeps the default."
  default     = 10
  nullable    = false # a caller's null means the default (consumers.json rows that do not set it)
}

variable "ingress_settings" {
  type        = string
  description = "ALLOW_ALL for the HTTP API (authentication is still required), ALLOW_INTERNAL_ONLY for event consumers."
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "ingress_settings must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "invokers" {
  type        = map(string)
  description = "IAM members allowed to invoke the function (roles/run.invoker on its service), by a name of the caller's choosing (the map keys must be known at plan). Never allUsers: the function requires authentication."
  default     = {}

  validation {
    condition     = !contains(values(var.invokers), "allUsers") && !contains(values(var.invokers), "allAuthenticatedUsers")
    error_message = "The function requires authentication: allUsers/allAuthenticatedUsers are not allowed."
  }
}

variable "build_service_account_id" {
  type        = string
  description = "Service account the function is built as (projects/<project>/serviceAccounts/<email>)."
}

variable "labels" {
  type        = map(string)
  description = "Labels of the function."
  default     = {}
}

variable "extra_files" {
  type        = map(string)
  description = "More files for the zip, zip path => file on disk (text files: the built dashboard as dashboard_dist/)."
  default     = {}
}

variable "public" {
  type        = bool
  description = "Let anyone reach the function (see public_by). Only for an entrance whose code verifies every caller itself: its environment must set TRAINYARD_AUTH=firebase."
  default     = false
}

variable "public_by" {
  type        = string
  description = "How a public function admits everyone: \"allUsers\" (roles/run.invoker for allUsers) or \"invoker_iam_check_disabled\" (Cloud Run's invoker IAM check disabled on the function's service, for organisations whose domain-restricted sharing refuses allUsers; runs gcloud during apply)."
  default     = "allUsers"

  validation {
    condition     = contains(["allUsers", "invoker_iam_check_disabled"], var.public_by)
    error_message = "public_by is \"allUsers\" or \"invoker_iam_check_disabled\"."
  }
}
