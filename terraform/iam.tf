# Identities and grants. One service account per function/service, one for the Vertex pipeline
# jobs and one for the builds (functions and images); no primitive roles; iam.serviceAccountUser only on the pipeline account, only for the
# services that submit or act on pipeline jobs. tests/unit/test_terraform.py holds the same table
# and fails when a grant goes missing or a new one appears.

locals {
  service_accounts = {
    api             = { account_id = "trainyard-api", display_name = "Trainyard API function" }
    submitter       = { account_id = "trainyard-submitter", display_name = "Trainyard submitter (Cloud Run)" }
    pipeline_events = { account_id = "trainyard-pipeline-events", display_name = "Trainyard pipeline_events functions" }
    scheduler       = { account_id = "trainyard-scheduler", display_name = "Trainyard scheduler function" }
    run_commands    = { account_id = "trainyard-run-commands", display_name = "Trainyard run-commands (Cloud Run)" }
    pipeline        = { account_id = "trainyard-pipeline", display_name = "Trainyard Vertex AI pipeline jobs" }
    # Cloud Build runs as this, for the functions and for the images (docs/deploy.md): projects created
    # since mid-2024 give the default build account too little (https://cloud.google.com/functions/docs/securing/build-custom-sa).
    build = { account_id = "trainyard-build", display_name = "Trainyard builds (functions, images)" }
  }

  # Identities of the push subscriptions (pubsub.tf): each may invoke exactly one consumer (consumers.json).
  push_accounts = { for name, c in local.consumers : name => c.push_account }

  # Project-level roles (Firestore, Vertex AI, Cloud Scheduler, quotas, BigQuery and Dataflow have
  # no narrower resource to grant on for what the code does).
  project_roles = {
    api = [
      "roles/datastore.user",     # Firestore read/write
      "custom:schedule_manager",  # create/update/pause/resume/delete the schedules' jobs
      "roles/cloudquotas.viewer", # GPU quota for /api/gpu-availability
      "roles/aiplatform.viewer",  # read pipeline jobs for run details, endpoints for /api/endpoints
      "roles/logging.viewer",     # a run's per-stage logs (GET .../logs)
      "roles/monitoring.viewer",  # current GPU quota usage for /api/gpu-availability
    ]
    submitter       = ["roles/datastore.user", "roles/aiplatform.user"]
    pipeline_events = ["roles/datastore.user", "roles/aiplatform.viewer", "custom:schedule_pauser"]
    scheduler       = ["roles/datastore.user", "custom:schedule_deleter"]
    run_commands = [
      "roles/datastore.user",
      "roles/aiplatform.user",
      "roles/monitoring.viewer", # a canary's watch: the deployed model's serving metrics
    ]
    pipeline = [
      "roles/aiplatform.user",
      # Beam's ReadFromBigQuery(query=...) runs the query into a temporary dataset it creates and
      # deletes (apache_beam/io/gcp/bigquery.py _setup_temporary_dataset, bigquery_tools.py
      # create_temporary_dataset): bigquery.datasets.create and jobs.create. BigQuery makes the
      # creator OWNER of the new dataset (docs: bigquery/docs/access-control-basic-roles). Reading
      # the users' tables is granted per dataset (data_bigquery_datasets), not project-wide.
      "roles/bigquery.user",
      "roles/dataflow.worker",
      "roles/dataflow.developer",
    ]
    # Gen2 function builds as a custom account need logWriter, artifactregistry.writer and
    # storage.objectAdmin, the latter project-wide: the build reads the source Cloud Functions copies
    # into its own gcf-v2-sources-<number>-<region> bucket, and writes the gcf-artifacts repository,
    # both created by the platform, not Terraform
    # (https://cloud.google.com/run/docs/configuring/services/build-service-account). It also covers
    # the image builds' staging bucket (docs/deploy.md step 2).
    build = ["roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectAdmin"]
  }

  scheduler_job_roles = {
    schedule_manager = {
      role_id     = "trainyardScheduleManager"
      title       = "Trainyard schedule jobs: manage"
      permissions = ["cloudscheduler.jobs.create", "cloudscheduler.jobs.update", "cloudscheduler.jobs.get", "cloudscheduler.jobs.pause", "cloudscheduler.jobs.enable", "cloudscheduler.jobs.delete"]
    }
    schedule_pauser = {
      role_id     = "trainyardSchedulePauser"
      title       = "Trainyard schedule jobs: pause"
      permissions = ["cloudscheduler.jobs.get", "cloudscheduler.jobs.pause"]
    }
    schedule_deleter = {
      role_id     = "trainyardScheduleDeleter"
      title       = "Trainyard schedule jobs: delete"
      permissions = ["cloudscheduler.jobs.get", "cloudscheduler.jobs.delete"]
    }
  }

  # Topic-level publishers (topic name => who may publish).
  topic_publishers = {
    # The API publishes run-submit and run-commands, and its Cloud Scheduler jobs target schedule-trigger
    # (shared/contract/topics.py API_PUBLISHES); an admin's dead-letter replay through the API republishes onto
    # those only (security review LOW: it could publish to every topic). The other topics' holds are replayed
    # with an operator's own credentials (`trainyard admin dead-letters replay TOPIC --direct`). Its pull from
    # each <topic>-dead-letter-hold (listing) is granted in dead_letters.tf.
    api       = ["run-submit", "run-commands", "schedule-trigger"]
    scheduler = ["run-submit"]
    # Wherever a run moves (shared/services/lifecycle.py) what follows may publish: a schedule's queued run
    # released (run-submit), a deploy after training and the run's notifications (run-commands). The
    # reconciler (pipeline_events' account) also re-queues a stale submit and sends a lost command again.
    pipeline_events = ["run-submit", "run-commands"]
    submitter       = ["run-submit", "run-commands"]
    run_commands    = ["run-submit", "run-commands"]
    pipeline        = ["training-progress"]
  }

  # Bucket-level roles. "artifacts_read_delete" is the custom role below.
  bucket_roles = {
    api             = { artifacts = ["artifacts_read_delete"] }
    submitter       = { artifacts = ["roles/storage.objectUser"], pipeline_root = ["roles/storage.objectUser"] }
    pipeline_events = { artifacts = ["roles/storage.objectViewer"] }
    run_commands    = { artifacts = ["roles/storage.objectUser"] }
    pipeline        = { artifacts = ["roles/storage.objectUser"], pipeline_root = ["roles/storage.objectUser"] }
  }

  # Artifact Registry repository readers.
  repository_readers = ["submitter", "pipeline"]

  # iam.serviceAccountUser: who may act as which account. Submitting/cancelling/deploying pipeline
  # jobs runs them as the pipeline account; the pipeline account launches Dataflow workers as itself.
  act_as = {
    submitter    = ["pipeline"]
    run_commands = ["pipeline"]
    pipeline     = ["pipeline"]
  }

  project_role_bindings = {
    for b in flatten([for sa, roles in local.project_roles : [for role in roles : { sa = sa, role = role }]]) :
    "${b.sa}/${b.role}" => b
  }
  topic_publisher_bindings = {
    for b in flatten([for sa, topics in local.topic_publishers : [for topic in topics : { sa = sa, topic = topic }]]) :
    "${b.sa}/${b.topic}" => b
  }
  bucket_role_bindings = {
    for b in flatten([
      for sa, buckets in local.bucket_roles : [
        for bucket, roles in buckets : [for role in roles : { sa = sa, bucket = bucket, role = role }]
      ]
    ]) : "${b.sa}/${b.bucket}/${b.role}" => b
  }
  act_as_bindings = {
    for b in flatten([for sa, targets in local.act_as : [for target in targets : { sa = sa, target = target }]]) :
    "${b.sa}/${b.target}" => b
  }

  bucket_names = { for key, bucket in google_storage_bucket.bucket : key => bucket.name }
}

resource "google_service_account" "sa" {
  for_each = local.service_accounts

  project      = var.project_id
  account_id   = each.value.account_id
  display_name = each.value.display_name

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "push" {
  for_each = local.push_accounts

  project      = var.project_id
  account_id   = each.value.account_id
  display_name = each.value.display_name

  depends_on = [google_project_service.enabled]
}

resource "google_project_iam_member" "sa_roles" {
  for_each = local.project_role_bindings

  project = var.project_id
  role    = startswith(each.value.role, "custom:") ? google_project_iam_custom_role.scheduler_jobs[trimprefix(each.value.role, "custom:")].name : each.value.role
  member  = google_service_account.sa[each.value.sa].member
}

# Cloud Scheduler jobs have no IAM of their own: narrow project roles instead of cloudscheduler.admin.
# The API manages the schedules' jobs; pipeline_events pauses an auto-paused schedule's job so it stops
# firing; the scheduler deletes a one-time schedule's job once it fired (Cloud Scheduler has no one-shot
# jobs). `get` lets a pause or resume of a job already in that state count as done.
resource "google_project_iam_custom_role" "scheduler_jobs" {
  for_each = local.scheduler_job_roles

  project     = var.project_id
  role_id     = each.value.role_id
  title       = each.value.title
  description = "Cloud Scheduler jobs: ${join(", ", each.value.permissions)}."
  permissions = each.value.permissions
}

resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = local.topic_publisher_bindings

  project = var.project_id
  topic   = module.topic[each.value.topic].topic_name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.sa[each.value.sa].member
}

# Run deletion removes a run's artifacts: read, list and delete objects, but never create them.
resource "google_project_iam_custom_role" "artifacts_read_delete" {
  project     = var.project_id
  role_id     = "trainyardArtifactsReadDelete"
  title       = "Trainyard artifacts read/delete"
  description = "Read, list and delete objects (granted on the artifacts bucket only)."
  permissions = ["storage.objects.get", "storage.objects.list", "storage.objects.delete"]
}

resource "google_storage_bucket_iam_member" "sa_roles" {
  for_each = local.bucket_role_bindings

  bucket = local.bucket_names[each.value.bucket]
  role   = each.value.role == "artifacts_read_delete" ? google_project_iam_custom_role.artifacts_read_delete.name : each.value.role
  member = google_service_account.sa[each.value.sa].member
}

resource "google_artifact_registry_repository_iam_member" "readers" {
  for_each = toset(local.repository_readers)

  project    = var.project_id
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = google_service_account.sa[each.value].member
}

resource "google_service_account_iam_member" "act_as" {
  for_each = local.act_as_bindings

  service_account_id = google_service_account.sa[each.value.target].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.sa[each.value.sa].member
}

# Pub/Sub mints the OIDC token of a push as the subscription's push identity (projects created before
# April 2021 need this grant explicitly; it is harmless in newer ones).
resource "google_service_account_iam_member" "pubsub_token_creator" {
  for_each = local.push_accounts

  service_account_id = google_service_account.push[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${local.pubsub_agent_email}"

  depends_on = [google_project_service_identity.pubsub]
}

# Cloud Scheduler jobs publish as the Cloud Scheduler service agent: the schedules' jobs the api creates
# at run time (schedule-trigger) and the reconciler's clock (reconcile, reconciler.tf).
resource "google_pubsub_topic_iam_member" "scheduler_agent_publisher" {
  for_each = toset(["schedule-trigger", "reconcile"])

  project = var.project_id
  topic   = module.topic[each.key].topic_name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${local.scheduler_agent_email}"

  depends_on = [google_project_service_identity.cloudscheduler]
}

# The users' own data: the pipeline reads it in ExampleGen, and the submitter's size probe
# (pipeline_compiler/data_scale.py) lists the files and reads their sizes when it chooses DirectRunner or
# Dataflow. Read only, on exactly the declared buckets/datasets: every team's `datasets` and `buckets`
# (var.teams; the API confines each team to its own, docs/security.md "Data confined to each team") plus
# data_buckets / data_bigquery_datasets (kept from before teams: data no team names, which only a platform
# admin's free SQL reads). One pipeline account reads them all: IAM cannot tell team A's run from team B's.
locals {
  data_readers = ["pipeline", "submitter"]

  # A team's bucket is gs://bucket/ or gs://bucket/prefix/: IAM grants on the bucket (a prefix is the API's
  # rule, not IAM's).
  readable_buckets = distinct(concat(var.data_buckets, flatten([
    for team in values(var.teams) : [for uri in team.buckets : split("/", trimprefix(uri, "gs://"))[0]]
  ])))
  # data_bigquery_datasets keep their keys (an upgrading deploy's bindings stay put); a team's dataset
  # already granted there, bare or in full, is not granted twice (two resources for one binding would
  # remove it when either goes).
  data_datasets_in_full = [for d in var.data_bigquery_datasets : length(split(".", d)) > 1 ? d : "${var.project_id}.${d}"]
  readable_datasets = concat(var.data_bigquery_datasets, [
    for d in distinct(flatten([for team in values(var.teams) : team.datasets])) : d if !contains(local.data_datasets_in_full, d)
  ])

  data_bucket_bindings = {
    for b in setproduct(local.readable_buckets, local.data_readers) : "${b[0]}/${b[1]}" => { bucket = b[0], sa = b[1] }
  }
  # "project.dataset" (the project may be domain-scoped, "example.com:project") or a dataset of var.project_id.
  data_dataset_bindings = {
    for b in setproduct(local.readable_datasets, local.data_readers) : "${b[0]}/${b[1]}" => {
      project = length(split(".", b[0])) > 1 ? join(".", slice(split(".", b[0]), 0, length(split(".", b[0])) - 1)) : var.project_id
      dataset = reverse(split(".", b[0]))[0]
      sa      = b[1]
    }
  }
}

resource "google_storage_bucket_iam_member" "data_readers" {
  for_each = local.data_bucket_bindings

  bucket = each.value.bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.sa[each.value.sa].member
}

resource "google_bigquery_dataset_iam_member" "data_readers" {
  for_each = local.data_dataset_bindings

  project    = each.value.project
  dataset_id = each.value.dataset
  role       = "roles/bigquery.dataViewer"
  member     = google_service_account.sa[each.value.sa].member
}

# IAM grants take effect within about a minute, not at once: builds, pushes and services that first
# use a fresh grant wait for it: policy changes "typically propagate in 2 minutes, but could potentially
# take 7 minutes or longer" (https://cloud.google.com/iam/docs/access-change-propagation). A change of the
# grants replaces this, so a new grant is waited for too.
resource "time_sleep" "iam_propagation" {
  create_duration = "120s"

  triggers = {
    grants = sha1(jsonencode([
      keys(local.project_role_bindings), keys(local.bucket_role_bindings), keys(local.topic_publisher_bindings),
      keys(local.act_as_bindings), local.repository_readers, keys(local.data_bucket_bindings),
      keys(local.data_dataset_bindings),
    ]))
  }

  depends_on = [
    google_project_iam_member.sa_roles,
    google_storage_bucket_iam_member.sa_roles,
    google_pubsub_topic_iam_member.publishers,
    google_artifact_registry_repository_iam_member.readers,
    google_service_account_iam_member.act_as,
    google_storage_bucket_iam_member.data_readers,
    google_bigquery_dataset_iam_member.data_readers,
    # notifications.tf: the webhook URL secrets
    google_project_iam_member.webhook_secret_creator,
    google_project_iam_member.webhook_url_writer,
    google_project_iam_member.webhook_url_reader,
  ]
}
