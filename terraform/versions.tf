terraform {
  # 1.6+: test framework, stable import blocks, and optional object attributes.
  required_version = ">= 1.6"

  required_providers {
    # 7.x: google_cloud_run_v2_worker_pool (with manual scaling), Cloud Run v2
    # startup_cpu_boost / Direct VPC egress, uptime-check service-agent OIDC
    # authentication. Pinned to a minor line; bump deliberately and review the
    # plan (.terraform.lock.hcl records the exact build).
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
