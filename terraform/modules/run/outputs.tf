output "api_service_name" {
  description = "API Cloud Run service name."
  value       = google_cloud_run_v2_service.api.name
}

output "api_uri" {
  description = "API base URL (https://…run.app)."
  value       = google_cloud_run_v2_service.api.uri
}

output "api_concurrency" {
  description = "Requests per API instance (gunicorn workers x threads)."
  value       = local.api_concurrency
}

output "subscriber_name" {
  description = "Subscriber worker pool name."
  value       = google_cloud_run_v2_worker_pool.subscriber.name
}
