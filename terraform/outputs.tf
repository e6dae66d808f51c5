output "api_url" {
  description = "Base URL of the API (deterministic run.app URL, the host in DJANGO_ALLOWED_HOSTS)."
  value       = "https://${local.api_host}"
}

output "api_service_uri" {
  description = "URI Cloud Run reports for the service (may be the legacy *.a.run.app form, which DJANGO_ALLOWED_HOSTS does not list)."
  value       = module.run.api_uri
}

output "api_concurrency" {
  description = "max_instance_request_concurrency of the API (GUNICORN_WORKERS x GUNICORN_THREADS)."
  value       = module.run.api_concurrency
}

output "subscriber_worker_pool" {
  description = "Name of the subscriber worker pool."
  value       = module.run.subscriber_name
}

output "docker_repository_url" {
  description = "Prefix to push images to: <region>-docker.pkg.dev/<project>/<repository>."
  value       = module.registry.docker_url
}

output "bigquery_table" {
  description = "Fully qualified records table."
  value       = "${var.project_id}.${module.bigquery.dataset_id}.${module.bigquery.table_id}"
}

output "bigquery_dr_replica_dataset" {
  description = "DR replica dataset (null when bigquery_dr_enabled = false)."
  value       = module.bigquery.replica_dataset_id
}

output "pubsub_topic" {
  description = "Ingest topic producers publish to."
  value       = module.pubsub.topic_id
}

output "pubsub_dead_letter_subscription" {
  description = "Dead-letter subscription to inspect and replay."
  value       = module.pubsub.dead_letter_subscription_name
}

output "django_secret_key_secret" {
  description = "Secret Manager secret that must receive the DJANGO_SECRET_KEY value out of band."
  value       = google_secret_manager_secret.django_secret_key.secret_id
}

output "service_accounts" {
  description = "Workload identities."
  value = {
    api        = module.iam.api_service_account_email
    subscriber = module.iam.subscriber_service_account_email
    operator   = module.iam.operator_service_account_email
    deployer   = module.ci.deployer_service_account_email
    pusher     = module.ci.pusher_service_account_email
  }
}

output "github_workload_identity_provider" {
  description = "Repository variable GCP_WORKLOAD_IDENTITY_PROVIDER (google-github-actions/auth workload_identity_provider)."
  value       = module.ci.workload_identity_provider
}

output "github_deployer_service_account" {
  description = "Repository variable GCP_DEPLOYER_SA: the account the deploy job (environment production) impersonates."
  value       = module.ci.deployer_service_account_email
}

output "github_pusher_service_account" {
  description = "Repository variable GCP_PUSHER_SA: the push-only account the build job (main branch) impersonates."
  value       = module.ci.pusher_service_account_email
}

output "redis_host" {
  description = "Private address of the Memorystore instance (null when enable_redis = false)."
  value       = one(module.redis[*].host)
}

output "availability_slo" {
  description = "Full resource name of the API availability SLO."
  value       = module.monitoring.slo_name
}
