terraform {
  # 1.6+: test framework, stable import blocks, and optional object attributes.
  required_version = ">= 1.6"

  required_providers {
    # 7.x because the code is written and validated (terraform/validate/,
    # schema of 7.46.1) against 7.x semantics, not for the worker pool, startup
    # CPU boost, Direct VPC egress or uptime-check OIDC, which all predate 7.0.
    # What 7.x changes here: google_redis_instance.deletion_protection counts as
    # true when unset (set explicitly in modules/redis), google_project_service's
    # disable_on_destroy defaults to false (set explicitly anyway), and
    # google_cloud_run_v2_worker_pool no longer has containers.depends_on.
    # Nothing is known to need 7.10 exactly: it is the line this was first
    # planned with. Bump deliberately and review the plan (.terraform.lock.hcl
    # records the exact build).
    google = {
      source  = "hashicorp/google"
      version = "~> 7.10"
    }
  }

  # Partial configuration: the state bucket is passed at init time so the same
  # code serves several projects/environments:
  #   terraform init -backend-config="bucket=<state-bucket>"
  backend "gcs" {
    prefix = "latam/state"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = var.labels
}
