# Private network path for the API cache: Cloud Run Direct VPC egress into this
# subnet, Memorystore peered with the same VPC (DIRECT_PEERING). Nothing here
# has a public address.

resource "google_compute_network" "main" {
  project                 = var.project_id
  name                    = "latam-vpc"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

# Nothing in this VPC accepts inbound connections: Cloud Run only egresses
# through it and Memorystore lives in Google's peered network. Deny (and log)
# any ingress explicitly instead of relying on the implied rule.
resource "google_compute_firewall" "deny_all_ingress" {
  project     = var.project_id
  name        = "latam-deny-all-ingress"
  network     = google_compute_network.main.id
  description = "Default-deny for inbound traffic into latam-vpc."
  direction   = "INGRESS"
  priority    = 65534

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_subnetwork" "run_egress" {
  project                  = var.project_id
  name                     = "latam-run-egress"
  region                   = var.region
  network                  = google_compute_network.main.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_redis_instance" "cache" {
  project            = var.project_id
  name               = "latam-cache"
  display_name       = "latam API cache"
  region             = var.region
  tier               = var.tier
  memory_size_gb     = var.memory_size_gb
  redis_version      = var.redis_version
  authorized_network = google_compute_network.main.id
  connect_mode       = "DIRECT_PEERING"
  labels             = var.labels

  # Clients must present the AUTH string (kept in Secret Manager, below).
  auth_enabled = true
  #checkov:skip=CKV_GCP_97:In-transit TLS needs the instance CA bundle in the app's cache client (rediss:// + ssl_ca_certs), which the app does not ship yet; traffic stays on the private VPC peering and AUTH is enforced. Switch to SERVER_AUTHENTICATION once the client supports it.
  transit_encryption_mode = "DISABLED"

  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"
      start_time {
        hours   = 6
        minutes = 0
        seconds = 0
        nanos   = 0
      }
    }
  }
}

# CACHE_URL carries the AUTH string, so it lives in Secret Manager rather than
# in the Cloud Run configuration. The value is derived from the instance, so
# Terraform writes it (it is in the state anyway: keep the state bucket private).
resource "google_secret_manager_secret" "cache_url" {
  project   = var.project_id
  secret_id = "latam-cache-url"
  labels    = var.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "cache_url" {
  secret      = google_secret_manager_secret.cache_url.id
  secret_data = "redis://:${google_redis_instance.cache.auth_string}@${google_redis_instance.cache.host}:${google_redis_instance.cache.port}/0"
}

resource "google_secret_manager_secret_iam_member" "api_cache_url" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.cache_url.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${var.api_service_account_email}"
}
