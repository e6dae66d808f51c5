output "network_id" {
  description = "VPC network Cloud Run egresses into."
  value       = google_compute_network.main.id
}

output "subnetwork_id" {
  description = "Subnetwork Cloud Run takes egress addresses from."
  value       = google_compute_subnetwork.run_egress.id
}

output "cache_url_secret_id" {
  description = "Secret id holding CACHE_URL."
  value       = google_secret_manager_secret.cache_url.secret_id
}

output "cache_ca_secret_id" {
  description = "Secret id holding the instance's server CA certificates (PEM), mounted as CACHE_REDIS_CA_FILE."
  value       = google_secret_manager_secret.cache_ca.secret_id
}

output "host" {
  description = "Private address of the Redis instance."
  value       = google_redis_instance.cache.host
}

output "port" {
  description = "Port of the Redis instance."
  value       = google_redis_instance.cache.port
}
