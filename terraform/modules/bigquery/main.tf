resource "google_bigquery_dataset" "main" {
  project                    = var.project_id
  dataset_id                 = var.dataset_id
  location                   = var.location
  description                = "latam records warehouse (written by run_subscriber, read by the API)."
  max_time_travel_hours      = var.max_time_travel_hours
  delete_contents_on_destroy = false
  labels                     = var.labels
  #checkov:skip=CKV_GCP_81:Google-managed encryption at rest is the accepted baseline; CMEK would add a KMS key and service-agent grants, and would be required on the replica too.
}

resource "google_bigquery_table" "records" {
  project             = var.project_id
  dataset_id          = google_bigquery_dataset.main.dataset_id
  table_id            = var.table_id
  description         = "One row per published Record version; readers keep the latest published_at per id."
  deletion_protection = true
  # Reads are point lookups and ordered scans by id.
  clustering = ["id"]
  # Exactly the columns the subscriber writes (records repository).
  schema = file("${path.module}/schemas/records.json")
  labels = var.labels
  #checkov:skip=CKV_GCP_80:Google-managed encryption at rest is the accepted baseline (see the dataset).
}

# ---------------------------------------------------------------------------
# Disaster recovery: a replica dataset in another location, refreshed by a
# scheduled cross-region dataset copy (BigQuery Data Transfer Service,
# data_source_id "cross_region_copy"). RPO = the copy schedule (default 12 h)
# plus the copy's run time; RTO = the time to point the workloads at the
# replica (terraform apply with bigquery_dataset_id = <dataset>_dr), about
# 30 minutes. Failover steps: docs/runbooks/bigquery-dr.md.
# ---------------------------------------------------------------------------

resource "google_bigquery_dataset" "replica" {
  count = var.dr_enabled ? 1 : 0

  project                    = var.project_id
  dataset_id                 = "${var.dataset_id}_dr"
  location                   = var.dr_location
  description                = "Cross-region copy of ${var.dataset_id} for disaster recovery. Do not write here."
  delete_contents_on_destroy = false
  labels                     = merge(var.labels, { role = "dr-replica" })
  #checkov:skip=CKV_GCP_81:Same encryption posture as the primary dataset.

  lifecycle {
    precondition {
      condition     = lower(var.dr_location) != lower(var.location)
      error_message = "The DR replica must live in another location than the primary dataset."
    }
  }
}

resource "google_service_account" "dr_copy" {
  count = var.dr_enabled ? 1 : 0

  project      = var.project_id
  account_id   = "latam-bq-dr-copy"
  display_name = "latam BigQuery cross-region copy"
  description  = "Runs the scheduled copy of ${var.dataset_id} into its DR replica."
}

resource "google_bigquery_dataset_iam_member" "dr_copy_source_viewer" {
  count = var.dr_enabled ? 1 : 0

  project    = var.project_id
  dataset_id = google_bigquery_dataset.main.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = "serviceAccount:${google_service_account.dr_copy[0].email}"
}

resource "google_bigquery_dataset_iam_member" "dr_copy_replica_editor" {
  count = var.dr_enabled ? 1 : 0

  project    = var.project_id
  dataset_id = google_bigquery_dataset.replica[0].dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.dr_copy[0].email}"
}

# The copy runs BigQuery copy jobs in this project.
resource "google_project_iam_member" "dr_copy_job_user" {
  count = var.dr_enabled ? 1 : 0

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.dr_copy[0].email}"
}

# The Data Transfer service agent mints tokens for the copy's service account.
resource "google_service_account_iam_member" "dr_copy_token_creator" {
  count = var.dr_enabled ? 1 : 0

  service_account_id = google_service_account.dr_copy[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${var.project_number}@gcp-sa-bigquerydatatransfer.iam.gserviceaccount.com"
}

resource "google_bigquery_data_transfer_config" "dr_copy" {
  count = var.dr_enabled ? 1 : 0

  project                = var.project_id
  display_name           = "${var.dataset_id} cross-region DR copy"
  location               = var.dr_location
  data_source_id         = "cross_region_copy"
  schedule               = var.dr_copy_schedule
  destination_dataset_id = google_bigquery_dataset.replica[0].dataset_id
  service_account_name   = google_service_account.dr_copy[0].email

  params = {
    source_project_id           = var.project_id
    source_dataset_id           = google_bigquery_dataset.main.dataset_id
    overwrite_destination_table = "true"
  }

  email_preferences {
    enable_failure_email = true
  }

  depends_on = [
    google_bigquery_dataset_iam_member.dr_copy_source_viewer,
    google_bigquery_dataset_iam_member.dr_copy_replica_editor,
    google_project_iam_member.dr_copy_job_user,
    google_service_account_iam_member.dr_copy_token_creator,
  ]
}
