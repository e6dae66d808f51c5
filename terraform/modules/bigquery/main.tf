resource "google_bigquery_dataset" "main" {
  project                    = var.project_id
  dataset_id                 = var.dataset_id
  location                   = var.location
  description                = "latam records warehouse (written by run_subscriber, read by the API)."
  max_time_travel_hours      = var.max_time_travel_hours
  delete_contents_on_destroy = false
  labels                     = var.labels
  #checkov:skip=CKV_GCP_81:Google-managed encryption at rest is the accepted baseline; CMEK would add a KMS key and service-agent grants, and would be required on the replica too.

  # The dataset's ACL, declared whole (authoritative): BigQuery's default ACL
  # gives projectReaders READER and projectWriters WRITER, i.e. every project
  # Viewer could read the records (personal data). Here only project Owners own
  # the dataset, and the DR copy account (when DR is on) may read it. The API
  # and the subscriber are granted on the records table (table IAM, a separate
  # policy that this ACL does not touch), so they see nothing else.
  # google_bigquery_dataset_iam_* and google_bigquery_dataset_access must not be
  # used on this dataset: they would fight this list.
  access {
    role          = "OWNER"
    special_group = "projectOwners"
  }

  dynamic "access" {
    for_each = google_service_account.dr_copy
    content {
      role          = "READER"
      user_by_email = access.value.email
    }
  }
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

  # The same personal data as the primary: the same closed ACL, plus the copy
  # account that writes it (WRITER = roles/bigquery.dataEditor on the dataset).
  access {
    role          = "OWNER"
    special_group = "projectOwners"
  }

  access {
    role          = "WRITER"
    user_by_email = google_service_account.dr_copy[0].email
  }

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

  # Its READER/WRITER access lives in the datasets' ACLs, which exist before it.
  depends_on = [
    google_project_iam_member.dr_copy_job_user,
    google_service_account_iam_member.dr_copy_token_creator,
  ]
}

# ---------------------------------------------------------------------------
# Cost guard: BigQuery's custom quota "Query usage per day per user"
# (QueryUsagePerUserPerDay; in Service Usage terms metric
# bigquery.googleapis.com/quota/query/usage, limit /d/project/user). It caps the
# bytes every principal of the project may have on-demand queries scan per day,
# each separately: BigQuery cannot set it for one account only, so the API's
# service account gets it, and so does everyone else (humans in the console
# too). Over it, queries fail with quotaExceeded (the API answers 503) until
# midnight Pacific time.
#
# Declared through the Cloud Quotas API (google_cloud_quotas_quota_preference):
# google_service_usage_consumer_quota_override exists only in the google-beta
# provider. The quota counts MiB (Google's own examples set 262144 for
# 0.25 TiB): verify with `gcloud alpha services quota list
# --service=bigquery.googleapis.com --consumer=projects/<project>` after apply.
# ---------------------------------------------------------------------------

resource "google_cloud_quotas_quota_preference" "query_usage_per_user_per_day" {
  parent        = "projects/${var.project_id}"
  service       = "bigquery.googleapis.com"
  quota_id      = "QueryUsagePerUserPerDay"
  justification = "Cost guard: caps what any one principal (the latam API's service account included) can have BigQuery scan per day."
  # Going from the default (unlimited) to a cap is a decrease of more than 10 %,
  # which the API otherwise refuses.
  ignore_safety_checks = "QUOTA_DECREASE_PERCENTAGE_TOO_HIGH"

  quota_config {
    preferred_value = tostring(floor(var.query_usage_per_user_per_day_tib * 1024 * 1024))
  }
}
