# The Dataflow workers' network. Dataflow otherwise uses the `default` VPC, which many organisations
# remove (compute.skipDefaultNetworkCreation) or lock down (compute.vmExternalIpAccess). The workers
# get no public IP; Private Google Access on the subnetwork reaches GCS, BigQuery and Artifact
# Registry (the worker image). Give `dataflow_subnetwork` to use a network of your own instead.

locals {
  create_network = var.dataflow_subnetwork == null
  dataflow_subnetwork = (local.create_network
    ? "regions/${var.region}/subnetworks/${google_compute_subnetwork.dataflow[0].name}"
  : var.dataflow_subnetwork)
}

resource "google_compute_network" "dataflow" {
  count = local.create_network ? 1 : 0

  project                 = var.project_id
  name                    = "trainyard"
  description             = "Trainyard's Dataflow workers."
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.enabled]
}

resource "google_compute_subnetwork" "dataflow" {
  count = local.create_network ? 1 : 0

  project                  = var.project_id
  name                     = "trainyard-dataflow"
  region                   = var.region
  network                  = google_compute_network.dataflow[0].id
  ip_cidr_range            = var.dataflow_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.1
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Workers of one job shuffle data between each other on TCP 12345 (batch) and 12346 (streaming);
# Dataflow tags its worker VMs "dataflow" (https://cloud.google.com/dataflow/docs/guides/routes-firewall).
resource "google_compute_firewall" "dataflow_workers" {
  count = local.create_network ? 1 : 0

  project     = var.project_id
  name        = "trainyard-dataflow-workers"
  description = "Dataflow workers talk to each other (shuffle, 12345-12346); nothing else comes in."
  network     = google_compute_network.dataflow[0].id
  direction   = "INGRESS"
  priority    = 1000
  source_tags = ["dataflow"]
  target_tags = ["dataflow"]

  allow {
    protocol = "tcp"
    ports    = ["12345-12346"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
