locals {
  # One request per gunicorn thread: Cloud Run never queues more requests on an
  # instance than gunicorn can serve at once.
  api_concurrency = var.gunicorn_workers * var.gunicorn_threads

  api_env = merge(var.app_env, {
    DJANGO_DEBUG     = "false"
    GUNICORN_WORKERS = tostring(var.gunicorn_workers)
    GUNICORN_THREADS = tostring(var.gunicorn_threads)
    # Cloud Run's front end is the one proxy whose X-Forwarded-For is trusted.
    API_NUM_PROXIES   = "1"
    API_THROTTLE_RATE = var.api_throttle_rate
  })

  subscriber_env = merge(var.app_env, {
    DJANGO_DEBUG = "false"
    METRICS_PORT = tostring(var.metrics_port)
    # Streaming pulls per instance; they share the instance's flow control.
    INGEST_STREAMS = tostring(var.subscriber_streams)
  })

  # Where the API container finds the Memorystore server CAs (enable_redis).
  redis_ca_dir  = "/etc/latam/redis-ca"
  redis_ca_file = "server-ca.pem"

  # Identity Cloud Monitoring uses for authenticated uptime checks.
  monitoring_service_agent = "serviceAccount:service-${var.project_number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
}

# ---------------------------------------------------------------------------
# API: Cloud Run service
# ---------------------------------------------------------------------------

resource "google_cloud_run_v2_service" "api" {
  project             = var.project_id
  name                = var.api_service_name
  location            = var.region
  description         = "latam records API (DRF, read-only)."
  ingress             = var.api_ingress
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account                  = var.api_service_account_email
    max_instance_request_concurrency = local.api_concurrency
    timeout                          = var.api_request_timeout
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    labels                           = var.labels

    scaling {
      min_instance_count = var.api_min_instances
      max_instance_count = var.api_max_instances
    }

    # Direct VPC egress to reach Memorystore; public Google APIs keep using the
    # default internet path.
    dynamic "vpc_access" {
      for_each = var.enable_redis ? [1] : []
      content {
        network_interfaces {
          network    = var.vpc_network
          subnetwork = var.vpc_subnetwork
        }
        egress = "PRIVATE_RANGES_ONLY"
      }
    }

    # The Memorystore server CAs, from Secret Manager, as a read-only file.
    dynamic "volumes" {
      for_each = var.enable_redis ? [var.cache_ca_secret_id] : []
      content {
        name = "redis-ca"
        secret {
          secret = volumes.value
          items {
            version = "latest"
            path    = local.redis_ca_file
          }
        }
      }
    }

    containers {
      name  = "api"
      image = var.image

      # Cloud Run sets $PORT to this value; gunicorn binds $PORT.
      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.api_cpu
          memory = var.api_memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.api_env
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name = "DJANGO_SECRET_KEY"
        value_source {
          secret_key_ref {
            secret  = var.secret_key_secret_id
            version = "latest"
          }
        }
      }

      dynamic "env" {
        for_each = var.enable_redis ? [var.cache_url_secret_id] : []
        content {
          name = "CACHE_URL"
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      # rediss:// in CACHE_URL is verified against this file (latam/settings.py).
      dynamic "env" {
        for_each = var.enable_redis ? ["${local.redis_ca_dir}/${local.redis_ca_file}"] : []
        content {
          name  = "CACHE_REDIS_CA_FILE"
          value = env.value
        }
      }

      dynamic "volume_mounts" {
        for_each = var.enable_redis ? [local.redis_ca_dir] : []
        content {
          name       = "redis-ca"
          mount_path = volume_mounts.value
        }
      }

      # An instance receives traffic only once the warehouse is reachable.
      startup_probe {
        http_get {
          path = "/readyz"
          port = 8080
        }
        initial_delay_seconds = 0
        period_seconds        = 5
        timeout_seconds       = 3
        failure_threshold     = 12
      }

      # Restart a wedged process; /healthz does not touch the warehouse, so a
      # BigQuery outage does not cause restart loops (the API answers 503).
      liveness_probe {
        http_get {
          path = "/healthz"
          port = 8080
        }
        period_seconds    = 15
        timeout_seconds   = 3
        failure_threshold = 3
      }
    }
  }

  traffic {
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }

  # The deploy workflow owns which image runs and which revision serves:
  # `gcloud run deploy --image` (+ update-traffic --to-latest) on each release,
  # `update-traffic --to-revisions=<previous>=100` on a rollback. Terraform
  # ignores both, so an apply after a rollback neither brings the image back
  # nor sends traffic back to the latest (rolled-back) revision; the traffic
  # block above only applies when the service is created. Everything else
  # (env, scaling, probes, volumes) is Terraform's.
  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      traffic,
      client,
      client_version,
    ]
  }
}

# ---------------------------------------------------------------------------
# Subscriber: Cloud Run worker pool (no HTTP ingress, always-on CPU, a fixed
# number of instances that share the subscription's streaming pull load, each
# with subscriber_streams streaming pulls).
# ---------------------------------------------------------------------------

resource "google_cloud_run_v2_worker_pool" "subscriber" {
  project             = var.project_id
  name                = var.subscriber_name
  location            = var.region
  description         = "latam Pub/Sub -> BigQuery subscriber (manage.py run_subscriber)."
  deletion_protection = var.deletion_protection
  labels              = var.labels
  # Worker pools were a preview product; BETA is accepted either way and the
  # API reports GA back once only GA features are used (hence ignore_changes).
  launch_stage = "BETA"

  # Manual scaling (the default mode): exactly this many instances, always on.
  scaling {
    manual_instance_count = var.subscriber_instance_count
  }

  template {
    service_account = var.subscriber_service_account_email
    labels          = var.labels

    containers {
      name    = "subscriber"
      image   = var.image
      command = ["python"]
      args    = ["manage.py", "run_subscriber"]

      resources {
        limits = {
          cpu    = var.subscriber_cpu
          memory = var.subscriber_memory
        }
      }

      dynamic "env" {
        for_each = local.subscriber_env
        content {
          name  = env.key
          value = env.value
        }
      }

      # Django settings refuse to load without it, also for management commands.
      env {
        name = "DJANGO_SECRET_KEY"
        value_source {
          secret_key_ref {
            secret  = var.secret_key_secret_id
            version = "latest"
          }
        }
      }
    }

    # Managed Service for Prometheus' collector: scrapes the subscriber's METRICS_PORT
    # on the instance's loopback (the containers share it) as its RunMonitoring
    # document says, and writes prometheus.googleapis.com/<name>/<kind> series on the
    # prometheus_target resource (namespace = this worker pool): the freshness SLO's
    # histogram among them. It starts once the subscriber has.
    containers {
      name       = "metrics-collector"
      image      = var.metrics_collector_image
      depends_on = ["subscriber"]

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
      }

      volume_mounts {
        name       = "metrics-collector-config"
        mount_path = "/etc/rungmp"
      }
    }

    # The sidecar reads only /etc/rungmp/config.yaml. The version is pinned, not
    # "latest": a new configuration makes a new revision, which mounts it.
    volumes {
      name = "metrics-collector-config"
      secret {
        secret = var.metrics_collector_config_secret_id
        items {
          version = var.metrics_collector_config_version
          path    = "config.yaml"
        }
      }
    }
  }

  # As for the API: the workflow deploys (and on failure redeploys the previous)
  # image and owns the instance split; Terraform keeps out of both.
  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      instance_splits,
      client,
      client_version,
      launch_stage,
    ]
  }
}

# ---------------------------------------------------------------------------
# Who may call the API. Private by default: invokers are listed explicitly;
# allUsers only when allow_public_access is set on purpose.
# ---------------------------------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = toset(var.invokers)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.api.name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_v2_service_iam_member" "public" {
  count = var.allow_public_access ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.api.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The uptime check authenticates with an OIDC token of the Monitoring service
# agent when the service is private.
resource "google_cloud_run_v2_service_iam_member" "uptime_check" {
  count = var.allow_public_access ? 0 : 1

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.api.name
  role     = "roles/run.invoker"
  member   = local.monitoring_service_agent
}
