variable "project_id" {
  type        = string
  description = "Google Cloud project that hosts Trainyard."
}

variable "region" {
  type        = string
  description = "Region of the functions, services, buckets and pipelines."
  default     = "europe-west4"
}

variable "firestore_location" {
  type        = string
  description = "Location of the Firestore database."
  default     = "europe-west4"
}

variable "org_domain" {
  type        = string
  description = "The organisation's e-mail domain (dashboard readers, API callers)."
}

variable "api_invoker_members" {
  type        = list(string)
  description = "IAM members allowed to call the API, e.g. [\"domain:example.com\"]."
  default     = []
}

variable "image_tag" {
  type        = string
  description = "Tag of the images pushed by Cloud Build (the commit; never latest). Null only for the first, targeted apply."
  default     = null
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the Firestore database and Cloud Run services from deletion."
  default     = true
}

variable "google_oauth_client_id" {
  type        = string
  description = "OAuth web client id of the dashboard's Google sign-in (console: APIs & Services → Credentials; redirect URI https://<project>.firebaseapp.com/__/auth/handler)."
}

variable "google_oauth_client_secret" {
  type        = string
  description = "Its secret: pass it as TF_VAR_google_oauth_client_secret rather than in a file."
  sensitive   = true
}

variable "admin_emails" {
  type        = list(string)
  description = "Operators who may list and replay dead letters through the API (plain e-mail addresses); empty: nobody."
  default     = []
}

variable "build_region" {
  type        = string
  description = "Region of the image builds (a Cloud Build region every project may use, or global)."
  default     = "europe-west1"
}

variable "data_buckets" {
  type        = list(string)
  description = "Buckets of your training data (names, no gs://): the pipeline and the submitter may read them."
  default     = []
}

variable "data_bigquery_datasets" {
  type        = list(string)
  description = "BigQuery datasets of your training data (\"project.dataset\" or a dataset of project_id): the pipeline and the submitter may read them."
  default     = []
}

variable "teams" {
  # Passed through as it is: the module's own `teams` variable is its one typed and validated
  # declaration (terraform/variables.tf); a copy of its type here would drift from it.
  type        = any
  description = "The teams sharing the deployment: members with a role each (viewer, trainer, deployer, admin), the model names and endpoints each owns, the data it may read, its budget and schedule limits (docs/security.md, \"Teams and roles\"). Empty: only admin_emails may act."
  default     = {}
}
