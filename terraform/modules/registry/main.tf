resource "google_artifact_registry_repository" "docker" {
  project       = var.project_id
  location      = var.location
  repository_id = var.repository_id
  description   = "latam container images (deployed to Cloud Run by digest)."
  format        = "DOCKER"
  labels        = var.labels

  docker_config {
    # A tag, once pushed, always names the same digest.
    immutable_tags = true
  }

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = var.untagged_retention
    }
  }

  # KEEP wins over DELETE: the newest versions stay available for rollback.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_recent_versions
    }
  }
  #checkov:skip=CKV_GCP_84:Images hold no customer data; Google-managed encryption at rest is sufficient.
}
