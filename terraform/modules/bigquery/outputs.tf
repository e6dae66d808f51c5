output "dataset_id" {
  description = "Primary dataset id."
  value       = google_bigquery_dataset.main.dataset_id
}

output "table_id" {
  description = "Records table id."
  value       = google_bigquery_table.records.table_id
}

output "replica_dataset_id" {
  description = "DR replica dataset id (null when DR is disabled)."
  value       = one(google_bigquery_dataset.replica[*].dataset_id)
}
