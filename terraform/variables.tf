variable "project_id" {
  type        = string
  description = "Google Cloud project that hosts Trainyard."
}

variable "region" {
  type        = string
  description = "Region of the functions, Cloud Run services, Artifact Registry, buckets, the Dataflow network and Vertex AI pipelines."
  default     = "europe-west4"
}

variable "firestore_location" {
  type        = string
  description = "Location of the Firestore database (a region such as europe-west4 or a multi-region such as eur3). Immutable once created."
  default     = "europe-west4"
}

variable "org_domain" {
  type        = string
  description = "The organisation's e-mail domain (e.g. example.com): signed-in users with a verified address in it may read runs, schedules and the catalog (Firestore rules) and the API checks it too (with the hd claim of Google tokens). Required: empty would admit any Google account."

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$", var.org_domain))
    error_message = "org_domain must be a lower-case domain such as example.com (not empty, no @, no scheme): an empty domain would admit any Google account."
  }
}

variable "api_user_audiences" {
  type        = list(string)
  description = "Audiences besides the API's own URLs that the API accepts in a caller's ID token. The default is the Google Cloud CLI's OAuth client id, the audience of a user's `gcloud auth print-identity-token`; set [] to admit only tokens minted for the API's URL (service accounts)."
  default     = ["32555940559.apps.googleusercontent.com"]
}

variable "domain_restricted_sharing" {
  type        = bool
  description = "The organisation enforces domain-restricted sharing (constraints/iam.allowedPolicyMemberDomains), which refuses the allUsers grant that makes the dashboard's entrance (trainyard-web) public. true: no allUsers grant; Cloud Run's invoker IAM check is disabled on trainyard-web instead, by gcloud during apply (the applying account needs run.services.update and run.services.setIamPolicy, e.g. roles/run.admin). See docs/deploy.md."
  default     = false
}

variable "api_invoker_members" {
  type        = list(string)
  description = "IAM members allowed to call the API function (roles/run.invoker), e.g. [\"domain:example.com\"] or [\"group:ml-team@example.com\"]. Never allUsers."
  default     = []
}

variable "admin_emails" {
  type        = list(string)
  description = "E-mail addresses of the operators the API's admin routes admit (dead-letter list and replay: `trainyard admin dead-letters`); everyone else gets 403. Each also needs run.invoker on the API (api_invoker_members). Empty: nobody."
  default     = []

  validation {
    condition     = alltrue([for email in var.admin_emails : can(regex("^[^@,\\s]+@[^@,\\s]+$", email))])
    error_message = "admin_emails must be plain e-mail addresses (no commas, no spaces, no group: or user: prefix)."
  }
}

variable "import_mlflow_hosts" {
  type        = list(string)
  description = "MLflow tracking servers (host, or host:port) the API may read for the page's Import experiments (POST /api/experiments:import-from): it fetches the URL its caller gives, so only these (docs/security.md, \"Imports read only listed sources\"). Empty: none (the CLI still imports from a person's machine)."
  default     = []

  validation {
    condition     = alltrue([for host in var.import_mlflow_hosts : can(regex("^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$", host))])
    error_message = "import_mlflow_hosts must be lower-case host names or host:port (no scheme, no path)."
  }
}

variable "import_vertex_projects" {
  type        = list(string)
  description = "Projects beyond this one whose Vertex AI Experiments the API may import (it reads them as its own service account, which then needs roles/aiplatform.viewer there)."
  default     = []
}

variable "teams" {
  type = map(object({
    members     = map(string)
    model_names = optional(list(string), [])
    endpoints   = optional(list(string), [])
    datasets    = optional(list(string), [])
    buckets     = optional(list(string), [])
    budget = optional(object({
      gpu_hours_per_month = optional(number)
      usd_per_month       = optional(number)
      max_gpus_per_run    = optional(number)
      max_usd_per_run     = optional(number)
    }), {})
    schedules = optional(object({
      min_interval_minutes = optional(number, 60)
      max_active           = optional(number, 10)
    }), {})
  }))
  description = "The teams sharing this deployment (docs/security.md, \"Teams and roles\"): per team, its members (user:, group: or serviceAccount: principals) with a role each (viewer, trainer, deployer, admin), the registry model names and endpoints it owns, the BigQuery datasets (project.dataset) and gs:// buckets it may read, its monthly budget and per-run caps, and its schedule limits. Handed to the services as TRAINYARD_TEAMS. Empty: only admin_emails may act."
  default     = {}

  validation {
    condition     = alltrue([for name, team in var.teams : can(regex("^[a-z][a-z0-9-]{0,29}$", name))])
    error_message = "Team names are 1-30 lower-case letters, digits or '-', starting with a letter."
  }
  validation {
    condition = alltrue(flatten([for team in var.teams : [for member, role in team.members :
    contains(["viewer", "trainer", "deployer", "admin"], role) && can(regex("^((user|group|serviceAccount):)?[^@:\\s]+@[^@:\\s]+\\.[^@:\\s]+$", member))]]))
    error_message = "Each member is user:EMAIL, group:EMAIL or serviceAccount:EMAIL with a role of viewer, trainer, deployer or admin."
  }
  # Each dataset and bucket becomes an IAM grant to the pipeline (iam.tf): exact names only, no patterns.
  validation {
    condition = alltrue(flatten([for team in var.teams : [for d in team.datasets :
    can(regex("^(([a-z0-9-]+\\.)*[a-z0-9-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]\\.[A-Za-z0-9_]+$", d))]]))
    error_message = "A team's datasets are exact \"project.dataset\" names (the project may be domain-scoped, \"example.com:project.dataset\"); no '*': each one is granted to the pipeline."
  }
  validation {
    condition = alltrue(flatten([for team in var.teams : [for b in team.buckets :
    can(regex("^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/([A-Za-z0-9._=-]+/)*$", b)) && !can(regex("(^|/)\\.\\.?/", trimprefix(b, "gs://")))]]))
    error_message = "A team's buckets are gs://bucket/ or gs://bucket/prefix/ (ending in '/', no '*', no '..'): each bucket is granted to the pipeline, and the API keeps the team's files under the prefix."
  }
}

variable "artifact_registry_repository" {
  type        = string
  description = "Artifact Registry docker repository holding the images (the Cloud Build substitution _REPOSITORY)."
  default     = "trainyard"
}

variable "gpu_image_name" {
  type        = string
  description = "Name of the GPU image inside the repository (cloudbuild.yaml's _GPU_IMAGE): pipeline tasks, the Trainer, the submitter and run-commands run it."
  default     = "tfx-trainer-gpu"
}

variable "dataflow_image_name" {
  type        = string
  description = "Name of the Dataflow worker image inside the repository (cloudbuild.yaml's _DATAFLOW_IMAGE)."
  default     = "trainyard-dataflow"
}

variable "serving_image_name" {
  type        = string
  description = "Name of the serving image inside the repository (cloudbuild.yaml's _SERVING_IMAGE): the prediction container (serving_image/) registered with every model in the Vertex Model Registry."
  default     = "trainyard-serving"
}

variable "image_tag" {
  type        = string
  description = "Tag of the images, as cloudbuild.yaml pushes them (_TAG: the commit, docs/deploy.md step 7). Null (the default) is enough for the first, targeted apply that makes the repository and the build account; the full apply refuses to run without it. `latest` is refused: it is mutable (any later push changes what the services and every registered model run) and does not redeploy."
  default     = null

  validation {
    # Docker's tag grammar (https://docs.docker.com/reference/cli/docker/image/tag/): up to 128 of [A-Za-z0-9_.-], not starting with . or -.
    condition     = var.image_tag == null || (can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest")
    error_message = "image_tag must be the tag `gcloud builds submit` pushed (e.g. the short commit), not latest: a mutable tag lets any later push change what runs."
  }
}

variable "serving_image" {
  type        = string
  description = "Override of the prediction container registered with every model (a full image reference). Null: the serving image cloudbuild.yaml pushes (serving_image_name, image_tag). It must load ScaNN's TF ops: Vertex's prebuilt TensorFlow images cannot serve the exported index."
  default     = null
}

variable "dataflow_subnetwork" {
  type        = string
  description = "An existing subnetwork for the Dataflow workers (regions/<region>/subnetworks/<name>, or a full URL for a Shared VPC; it needs Private Google Access and a rule letting workers reach each other on TCP 12345-12346). Null: Terraform creates the network `trainyard` for them."
  default     = null
}

variable "dataflow_subnet_cidr" {
  type        = string
  description = "IP range of the subnetwork Terraform creates for the Dataflow workers (when dataflow_subnetwork is null)."
  default     = "10.40.0.0/20"
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
  description = "Age in days after which intermediate pipeline-root objects (examples, statistics, transform graphs: what Vertex caching reuses) are deleted. The submitter gets the same number and submits a retry of a run older than this minus 8 days without caching (shared/domain/pipeline_cache.py), so no cache hit points at deleted objects."
  default     = 90

  validation {
    # Below the cache margin every retry runs uncached; that is allowed, but a whole number of days is required.
    condition     = var.pipeline_root_retention_days >= 1 && floor(var.pipeline_root_retention_days) == var.pipeline_root_retention_days
    error_message = "pipeline_root_retention_days must be a whole number of days, at least 1."
  }
}

variable "audit_retention_days" {
  type        = number
  description = "Days an audit record (every state-changing API request: who, which role, what, when, the result; GET /api/admin/audit) is kept before Firestore's TTL policy deletes it (firestore.tf). The API sets each record's expire_at from it (TRAINYARD_AUDIT_RETENTION_DAYS)."
  default     = 400

  validation {
    condition     = var.audit_retention_days >= 1 && floor(var.audit_retention_days) == var.audit_retention_days
    error_message = "audit_retention_days must be a whole number of days, at least 1."
  }
}

variable "noncurrent_version_retention_days" {
  type        = number
  description = "Days a replaced or deleted object version is kept (both buckets are versioned)."
  default     = 30
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries of a Pub/Sub message before it goes to the topic's dead-letter topic (5-100), for every consumer but the submitter, whose retry window must outlast its claim lease (pubsub.tf local.retry)."
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "retry_minimum_backoff" {
  type        = string
  description = "Retry policy of every consumer's subscription: minimum redelivery delay."
  default     = "10s"
}

variable "retry_maximum_backoff" {
  type        = string
  description = "Retry policy of every consumer's subscription: maximum redelivery delay."
  default     = "600s"
}

variable "reconcile_schedule" {
  type        = string
  description = "Cron schedule (UTC) of the reconcile job: how often runs whose events stopped are re-read (reconciler.tf)."
  default     = "*/5 * * * *"
}

variable "repo_root" {
  type        = string
  description = "Path of the Trainyard checkout (holding functions/ and shared/). Defaults to the parent of this module."
  default     = null
}

variable "consumer_commands" {
  type        = map(list(string))
  description = "Container command of a Cloud Run consumer (keys submitter, run_commands), replacing the one its consumers.json row gives: the Functions Framework serving the consumer's handler from the GPU image (it listens on Cloud Run's $PORT)."
  default     = {}
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

variable "notification_secrets" {
  type        = map(list(string))
  description = "The webhook signing secrets notifications may use (Secret Manager secret ids), each bound to the webhook URL prefixes it may sign for: { \"team-ml-hook\" = [\"https://hooks.slack.com/services/T0123/\"] }. A run naming a secret for a URL outside its prefixes is refused (docs/security.md, Notifications). Each is created empty and readable by the run-commands consumer; add its value with gcloud secrets versions add."
  default     = {}

  validation {
    condition     = alltrue([for name, prefixes in var.notification_secrets : can(regex("^[A-Za-z0-9_-]{1,255}$", name))])
    error_message = "A secret name is 1-255 letters, digits, '_' or '-'."
  }
  validation {
    # The prefix ends its host with "/": https://hooks.example.com would also admit https://hooks.example.com.evil.io.
    condition = alltrue([for name, prefixes in var.notification_secrets : length(prefixes) > 0 && alltrue([
      for prefix in prefixes : can(regex("^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[^[:space:]]*$", prefix))
    ])])
    error_message = "Each secret needs at least one URL prefix, each https://host/ or longer (the host ends with '/')."
  }
}

variable "google_oauth_client_id" {
  type        = string
  description = "OAuth 2.0 web client id of the dashboard's Google sign-in (create it in the console: APIs & Services → Credentials, redirect URI https://<project>.firebaseapp.com/__/auth/handler; no API creates one)."
}

variable "google_oauth_client_secret" {
  type        = string
  description = "Secret of google_oauth_client_id (kept in Terraform state: protect the state bucket)."
  sensitive   = true
}

variable "dashboard_authorized_domains" {
  type        = list(string)
  description = "Hosts besides the web entrance's own URLs and <project>.firebaseapp.com / .web.app to which Google sign-in may return (a custom domain; \"localhost\" for `vite dev`)."
  default     = []
}

variable "model_name" {
  type        = string
  description = "The recommender this deployment trains, named in the Training page's header (\"Model: …\"); empty: the project id."
  default     = ""
}

variable "data_buckets" {
  type        = list(string)
  description = "Buckets (names, without gs://) the pipeline and the submitter may read beyond the teams' own buckets (var.teams): they get roles/storage.objectViewer on each. No team may use one unless its `buckets` list it (the API's rule), so these serve a platform admin's free SQL and deploys from before teams. Empty: only Trainyard's own buckets and the teams' buckets are readable."
  default     = []

  validation {
    condition     = alltrue([for b in var.data_buckets : can(regex("^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", b))])
    error_message = "data_buckets: bucket names only (3-222 lowercase letters, digits, '.', '_', '-'; no gs:// prefix, no path)."
  }
}

variable "data_bigquery_datasets" {
  type        = list(string)
  description = "BigQuery datasets, as \"project.dataset\" (the project may be domain-scoped, \"example.com:project.dataset\") or a bare dataset id of project_id, that the pipeline and the submitter may read beyond the teams' own datasets (var.teams): they get roles/bigquery.dataViewer on each. No team may train on one unless its `datasets` list it (the API's rule), so these serve a platform admin's free SQL and deploys from before teams. Empty: only the teams' datasets are readable."
  default     = []

  validation {
    condition     = alltrue([for d in var.data_bigquery_datasets : can(regex("^((([a-z0-9-]+\\.)*[a-z0-9-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]\\.)?[A-Za-z0-9_]+$", d))])
    error_message = "data_bigquery_datasets: each entry is \"project.dataset\" or a dataset id (letters, digits, underscores)."
  }
}

variable "build_region" {
  type        = string
  description = "Region `gcloud builds submit` runs the image builds in (the images are still pushed to the repository in region). Cloud Build limits some new projects to a few regions (https://cloud.google.com/build/docs/locations, \"Restricted regions for some projects\"); only those, or global, are accepted."
  default     = "europe-west1"

  validation {
    condition     = contains(["global", "us-central1", "us-west2", "europe-west1", "asia-east1", "australia-southeast1", "southamerica-east1"], var.build_region)
    error_message = "build_region must be global or one of the regions every project may build in: us-central1, us-west2, europe-west1, asia-east1, australia-southeast1, southamerica-east1."
  }
}

variable "billing_account" {
  type        = string
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX) of the project: set it to create a monthly Cloud Billing budget on this project with alerts (budget.tf). The applying account needs billing.budgets.create on it (e.g. roles/billing.costsManager). Null: no budget."
  default     = null

  validation {
    condition     = var.billing_account == null || can(regex("^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$", var.billing_account))
    error_message = "billing_account must be a billing account id such as 012345-6789AB-CDEF01 (no billingAccounts/ prefix)."
  }
}

variable "monthly_budget" {
  type        = number
  description = "The project's monthly budget, in whole units of the billing account's currency (e.g. 5000); required with billing_account. Alerts fire at budget_thresholds of it and when the month's forecast reaches it."
  default     = null

  validation {
    condition     = var.monthly_budget == null || (try(var.monthly_budget >= 1, false) && try(floor(var.monthly_budget) == var.monthly_budget, false))
    error_message = "monthly_budget must be a whole amount, at least 1."
  }
}

variable "budget_thresholds" {
  type        = list(number)
  description = "Fractions of monthly_budget at which the budget alerts (actual spend), e.g. [0.5, 0.9, 1.0]."
  default     = [0.5, 0.9, 1.0]

  validation {
    condition     = length(var.budget_thresholds) >= 1 && alltrue([for t in var.budget_thresholds : t > 0 && t <= 10])
    error_message = "budget_thresholds: at least one fraction, each above 0 and at most 10 (1.0 is the whole budget)."
  }
}

variable "budget_alert_emails" {
  type        = list(string)
  description = "E-mail addresses told when a budget threshold is crossed (Cloud Monitoring e-mail channels; Cloud Billing allows at most 5), besides the billing account's administrators and users."
  default     = []

  validation {
    condition     = length(var.budget_alert_emails) <= 5 && alltrue([for email in var.budget_alert_emails : can(regex("^[^@,\\s]+@[^@,\\s]+$", email))])
    error_message = "budget_alert_emails: at most 5 plain e-mail addresses."
  }
}
