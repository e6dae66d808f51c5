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

  # Clients must present the AUTH string (kept in Secret Manager, below) over
  # TLS: the server presents a certificate signed by this instance's own CAs
  # (server_ca_certs, handed to the API below), so a client that checks it talks
  # to this instance and nothing else. Port 6378 with TLS. Changing the mode
  # replaces the instance.
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  # Deliberately off: the instance holds a cache only (everything in it is
  # recomputed from BigQuery, and the API degrades to the warehouse while it is
  # away), and settings that force a new instance (TLS mode, tier, network) must
  # be applicable. Provider 7.x treats an unset value as true.
  deletion_protection = false

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
  secret_data = "rediss://:${google_redis_instance.cache.auth_string}@${google_redis_instance.cache.host}:${google_redis_instance.cache.port}/0"
}

resource "google_secret_manager_secret_iam_member" "api_cache_url" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.cache_url.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${var.api_service_account_email}"
}

# The instance's server CAs (PEM, all of them: Memorystore adds a new CA five
# years into the ten-year life of the current one, and clients must trust both
# during the overlap). Not a secret, but Secret Manager is what Cloud Run can
# mount as a file: the API container reads it at CACHE_REDIS_CA_FILE. A new CA
# reaches the file at the next terraform apply (the volume reads version latest).
resource "google_secret_manager_secret" "cache_ca" {
  project   = var.project_id
  secret_id = "latam-cache-server-ca"
  labels    = var.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "cache_ca" {
  secret      = google_secret_manager_secret.cache_ca.id
  secret_data = join("", [for ca in google_redis_instance.cache.server_ca_certs : "${trimspace(ca.cert)}\n"])
}

resource "google_secret_manager_secret_iam_member" "api_cache_ca" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.cache_ca.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${var.api_service_account_email}"
}
