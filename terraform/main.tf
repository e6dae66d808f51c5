data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number = data.google_project.this.number

  # Cloud Run v2 URLs are deterministic: https://<service>-<project number>.<region>.run.app
  # Clients, the uptime check and DJANGO_ALLOWED_HOSTS all use this host.
  api_host = "${var.api_service_name}-${local.project_number}.${var.region}.run.app"
  # localhost/127.0.0.1: Cloud Run's HTTP probes are sent from inside the instance;
  # Google's front end never routes those Host values to the service from outside.
  allowed_hosts = concat([local.api_host, "localhost", "127.0.0.1"], var.api_extra_allowed_hosts)

  runbook_base_url = var.runbook_base_url != "" ? var.runbook_base_url : "https://github.com/${var.github_repository}/blob/main/docs/runbooks"

  # Environment both workloads share (names and meaning: DESIGN.md, .env.example).
  app_env = {
    GCP_PROJECT                     = var.project_id
    BIGQUERY_DATASET                = module.bigquery.dataset_id
    BIGQUERY_TABLE                  = module.bigquery.table_id
    BIGQUERY_LOCATION               = var.bigquery_location
    PUBSUB_MAX_DELIVERY_ATTEMPTS    = tostring(var.pubsub_max_delivery_attempts)
    LOG_LEVEL                       = "INFO"
    PUBSUB_TOPIC                    = module.pubsub.topic_name
    PUBSUB_SUBSCRIPTION             = module.pubsub.subscription_name
    PUBSUB_DEAD_LETTER_TOPIC        = module.pubsub.dead_letter_topic_name
    PUBSUB_DEAD_LETTER_SUBSCRIPTION = module.pubsub.dead_letter_subscription_name
    DJANGO_ALLOWED_HOSTS            = join(",", local.allowed_hosts)
  }

  services = toset(concat(
    [
      "artifactregistry.googleapis.com",
      "bigquery.googleapis.com",
      "cloudquotas.googleapis.com",
      "cloudresourcemanager.googleapis.com",
      "iam.googleapis.com",
      "iamcredentials.googleapis.com",
      "logging.googleapis.com",
      "monitoring.googleapis.com",
      "pubsub.googleapis.com",
      "run.googleapis.com",
      "secretmanager.googleapis.com",
      "sts.googleapis.com",
    ],
    var.bigquery_dr_enabled ? ["bigquerydatatransfer.googleapis.com"] : [],
    var.enable_redis ? ["compute.googleapis.com", "redis.googleapis.com"] : [],
  ))
}

resource "google_project_service" "enabled" {
  for_each = local.services

  project = var.project_id
  service = each.value
  # Never switch an API off on destroy: other workloads in the project may use it.
  disable_on_destroy         = false
  disable_dependent_services = false
}

module "pubsub" {
  source = "./modules/pubsub"

  project_id                     = var.project_id
  project_number                 = local.project_number
  topic_name                     = var.pubsub_topic
  subscription_name              = var.pubsub_subscription
  dead_letter_topic_name         = var.pubsub_dead_letter_topic
  dead_letter_subscription_name  = var.pubsub_dead_letter_subscription
  max_delivery_attempts          = var.pubsub_max_delivery_attempts
  ack_deadline_seconds           = var.pubsub_ack_deadline_seconds
  retry_minimum_backoff          = var.pubsub_retry_minimum_backoff
  retry_maximum_backoff          = var.pubsub_retry_maximum_backoff
  topic_message_retention        = var.pubsub_topic_message_retention
  subscription_message_retention = var.pubsub_subscription_message_retention
  dead_letter_retention          = var.pubsub_dead_letter_retention
  labels                         = var.labels

  depends_on = [google_project_service.enabled]
}

module "bigquery" {
  source = "./modules/bigquery"

  project_id            = var.project_id
  project_number        = local.project_number
  dataset_id            = var.bigquery_dataset
  table_id              = var.bigquery_table
  location              = var.bigquery_location
  max_time_travel_hours = var.bigquery_max_time_travel_hours
  dr_enabled            = var.bigquery_dr_enabled
  dr_location           = var.bigquery_dr_location
  dr_copy_schedule      = var.bigquery_dr_copy_schedule
  labels                = var.labels

  query_usage_per_user_per_day_tib = var.bigquery_query_usage_per_user_per_day_tib

  depends_on = [google_project_service.enabled]
}

module "registry" {
  source = "./modules/registry"

  project_id           = var.project_id
  location             = var.region
  repository_id        = var.artifact_registry_repository
  keep_recent_versions = var.artifact_registry_keep_recent
  untagged_retention   = "1209600s"
  labels               = var.labels

  depends_on = [google_project_service.enabled]
}

module "iam" {
  source = "./modules/iam"

  project_id                    = var.project_id
  dataset_id                    = module.bigquery.dataset_id
  table_id                      = module.bigquery.table_id
  topic_name                    = module.pubsub.topic_name
  subscription_name             = module.pubsub.subscription_name
  dead_letter_topic_name        = module.pubsub.dead_letter_topic_name
  dead_letter_subscription_name = module.pubsub.dead_letter_subscription_name
  operator_members              = var.operator_members
}

# DJANGO_SECRET_KEY: Terraform declares the secret and who may read it, never
# its value (add it out of band, see README: gcloud secrets versions add).
resource "google_secret_manager_secret" "django_secret_key" {
  project   = var.project_id
  secret_id = "latam-django-secret-key"

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "django_secret_key_accessors" {
  for_each = {
    api        = module.iam.api_service_account_email
    subscriber = module.iam.subscriber_service_account_email
  }

  project   = var.project_id
  secret_id = google_secret_manager_secret.django_secret_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value}"
}

# What the subscriber's metrics collector sidecar scrapes (a RunMonitoring document, read
# from /etc/rungmp/config.yaml): METRICS_PORT on the instance's loopback, every 30 s.
# Nothing secret in it; Secret Manager is how Cloud Run mounts a file.
resource "google_secret_manager_secret" "subscriber_metrics_config" {
  project   = var.project_id
  secret_id = "latam-subscriber-metrics-config"

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "subscriber_metrics_config" {
  secret = google_secret_manager_secret.subscriber_metrics_config.id
  secret_data = yamlencode({
    apiVersion = "monitoring.googleapis.com/v1beta"
    kind       = "RunMonitoring"
    metadata   = { name = var.subscriber_name }
    spec = {
      endpoints = [{ port = var.subscriber_metrics_port, path = "/metrics", interval = "30s" }]
    }
  })
}

resource "google_secret_manager_secret_iam_member" "subscriber_metrics_config_accessor" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.subscriber_metrics_config.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${module.iam.subscriber_service_account_email}"
}

module "redis" {
  source = "./modules/redis"
  count  = var.enable_redis ? 1 : 0

  project_id                = var.project_id
  region                    = var.region
  subnet_cidr               = var.vpc_subnet_cidr
  tier                      = var.redis_tier
  memory_size_gb            = var.redis_memory_size_gb
  redis_version             = var.redis_version
  api_service_account_email = module.iam.api_service_account_email
  labels                    = var.labels

  depends_on = [google_project_service.enabled]
}

module "run" {
  source = "./modules/run"

  project_id                         = var.project_id
  project_number                     = local.project_number
  region                             = var.region
  image                              = var.image
  api_service_name                   = var.api_service_name
  subscriber_name                    = var.subscriber_name
  api_service_account_email          = module.iam.api_service_account_email
  subscriber_service_account_email   = module.iam.subscriber_service_account_email
  api_min_instances                  = var.api_min_instances
  api_max_instances                  = var.api_max_instances
  gunicorn_workers                   = var.gunicorn_workers
  gunicorn_threads                   = var.gunicorn_threads
  api_cpu                            = var.api_cpu
  api_memory                         = var.api_memory
  api_request_timeout                = var.api_request_timeout
  api_throttle_rate                  = var.api_throttle_rate
  api_ingress                        = var.api_ingress
  subscriber_instance_count          = var.subscriber_instance_count
  subscriber_streams                 = var.subscriber_streams
  subscriber_cpu                     = var.subscriber_cpu
  subscriber_memory                  = var.subscriber_memory
  metrics_port                       = var.subscriber_metrics_port
  metrics_collector_image            = var.subscriber_metrics_collector_image
  metrics_collector_config_secret_id = google_secret_manager_secret.subscriber_metrics_config.secret_id
  metrics_collector_config_version   = google_secret_manager_secret_version.subscriber_metrics_config.version
  app_env                            = local.app_env
  secret_key_secret_id               = google_secret_manager_secret.django_secret_key.secret_id
  invokers                           = var.api_invokers
  allow_public_access                = var.allow_public_access
  enable_redis                       = var.enable_redis
  vpc_network                        = one(module.redis[*].network_id)
  vpc_subnetwork                     = one(module.redis[*].subnetwork_id)
  cache_url_secret_id                = one(module.redis[*].cache_url_secret_id)
  cache_ca_secret_id                 = one(module.redis[*].cache_ca_secret_id)
  deletion_protection                = var.deletion_protection
  labels                             = var.labels

  # Revisions only become ready once their identities can read their secrets
  # and the dataset/subscription grants exist.
  depends_on = [
    google_secret_manager_secret_iam_member.django_secret_key_accessors,
    google_secret_manager_secret_iam_member.subscriber_metrics_config_accessor,
    module.iam,
    module.redis,
  ]
}

module "ci" {
  source = "./modules/ci"

  project_id           = var.project_id
  region               = var.region
  github_repository    = var.github_repository
  github_repository_id = var.github_repository_id
  pool_id              = var.workload_identity_pool_id
  repository_id        = module.registry.repository_id
  api_service_name     = module.run.api_service_name
  subscriber_name      = module.run.subscriber_name
  ingest_topic_name    = module.pubsub.topic_name
  runtime_service_account_names = {
    api        = module.iam.api_service_account_name
    subscriber = module.iam.subscriber_service_account_name
  }

  depends_on = [google_project_service.enabled]
}

module "monitoring" {
  source = "./modules/monitoring"

  project_id                       = var.project_id
  api_service_name                 = module.run.api_service_name
  api_host                         = local.api_host
  allow_public_access              = var.allow_public_access
  subscriber_name                  = module.run.subscriber_name
  subscription_name                = module.pubsub.subscription_name
  dead_letter_topic_name           = module.pubsub.dead_letter_topic_name
  dead_letter_subscription_name    = module.pubsub.dead_letter_subscription_name
  alert_email                      = var.alert_email
  runbook_base_url                 = local.runbook_base_url
  slo_goal                         = var.slo_availability_goal
  freshness_goal                   = var.slo_freshness_goal
  freshness_seconds                = var.slo_freshness_seconds
  error_ratio_threshold            = var.alert_error_ratio_threshold
  latency_p95_threshold_ms         = var.alert_latency_p95_ms
  oldest_unacked_threshold_seconds = var.alert_oldest_unacked_seconds
  backlog_threshold                = var.alert_backlog_messages

  depends_on = [google_project_service.enabled]
}
