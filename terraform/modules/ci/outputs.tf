output "deployer_service_account_email" {
  description = "Service account the deploy job (environment production) impersonates: repository variable GCP_DEPLOYER_SA."
  value       = google_service_account.deployer.email
}

output "pusher_service_account_email" {
  description = "Service account the build job (main branch) impersonates to push images: repository variable GCP_PUSHER_SA."
  value       = google_service_account.pusher.email
}

output "workload_identity_provider" {
  description = "Full provider name for google-github-actions/auth workload_identity_provider."
  value       = google_iam_workload_identity_pool_provider.github.name
}
