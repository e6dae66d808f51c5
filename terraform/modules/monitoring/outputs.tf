output "slo_name" {
  description = "Full resource name of the availability SLO."
  value       = google_monitoring_slo.api_availability.name
}

output "uptime_check_id" {
  description = "Uptime check id."
  value       = google_monitoring_uptime_check_config.api_healthz.uptime_check_id
}

output "dashboard_id" {
  description = "Dashboard resource id."
  value       = google_monitoring_dashboard.latam.id
}
