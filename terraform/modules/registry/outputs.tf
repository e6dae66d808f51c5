output "repository_id" {
  description = "Repository id."
  value       = google_artifact_registry_repository.docker.repository_id
}

output "repository_name" {
  description = "Repository resource name."
  value       = google_artifact_registry_repository.docker.name
}

output "docker_url" {
  description = "Image prefix to push to: <region>-docker.pkg.dev/<project>/<repository>."
  value       = "${var.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.docker.repository_id}"
}
