# ---------------------------------------------------------------------------
# Project
# ---------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project id everything is created in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid project id: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of Cloud Run, Artifact Registry and Memorystore."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1."
  }
}

variable "labels" {
  description = "Labels applied to every resource that supports them (via the provider's default_labels)."
  type        = map(string)
  default = {
    app        = "latam"
    managed-by = "terraform"
  }

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values may contain only lowercase letters, digits, '_' and '-' (max 63)."
  }
}

variable "deletion_protection" {
  description = "Refuse to destroy the Cloud Run service and worker pool (the BigQuery table is always protected)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------
# Pub/Sub
# ---------------------------------------------------------------------------

variable "pubsub_topic" {
  description = "Ingest topic producers publish Records to (PUBSUB_TOPIC)."
  type        = string
  default     = "data-ingest-topic"
}

variable "pubsub_subscription" {
  description = "Subscription run_subscriber consumes (PUBSUB_SUBSCRIPTION)."
  type        = string
  default     = "data-ingest-sub"
}

variable "pubsub_dead_letter_topic" {
  description = "Dead-letter topic (PUBSUB_DEAD_LETTER_TOPIC)."
  type        = string
  default     = "data-ingest-dead-letter"
}

variable "pubsub_dead_letter_subscription" {
  description = "Dead-letter subscription used to inspect and replay (PUBSUB_DEAD_LETTER_SUBSCRIPTION)."
  type        = string
  default     = "data-ingest-dead-letter-sub"
}

variable "pubsub_max_delivery_attempts" {
  description = "Delivery attempts before Pub/Sub moves a message to the dead-letter topic."
  type        = number
  default     = 5

  validation {
    condition     = var.pubsub_max_delivery_attempts >= 5 && var.pubsub_max_delivery_attempts <= 100 && floor(var.pubsub_max_delivery_attempts) == var.pubsub_max_delivery_attempts
    error_message = "Pub/Sub accepts an integer between 5 and 100 for max_delivery_attempts."
  }
}

variable "pubsub_ack_deadline_seconds" {
  description = "Ack deadline of the ingest subscription; the client library extends it while a batch is being written."
  type        = number
  default     = 60

  validation {
    condition     = var.pubsub_ack_deadline_seconds >= 10 && var.pubsub_ack_deadline_seconds <= 600
    error_message = "The ack deadline must be between 10 and 600 seconds."
  }
}

variable "pubsub_retry_minimum_backoff" {
  description = "Minimum backoff before a nacked message is redelivered (duration in seconds, e.g. \"10s\")."
  type        = string
  default     = "10s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.pubsub_retry_minimum_backoff)) && tonumber(trimsuffix(var.pubsub_retry_minimum_backoff, "s")) <= 600
    error_message = "Use a duration like \"10s\" between 0s and 600s."
  }
}

variable "pubsub_retry_maximum_backoff" {
  description = "Maximum backoff before a nacked message is redelivered (duration in seconds, e.g. \"600s\")."
  type        = string
  default     = "600s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.pubsub_retry_maximum_backoff)) && tonumber(trimsuffix(var.pubsub_retry_maximum_backoff, "s")) <= 600
    error_message = "Use a duration like \"600s\" between 0s and 600s."
  }
}

variable "pubsub_topic_message_retention" {
  description = "How long the ingest topic keeps published messages, so a subscription can seek back and re-ingest (10m-31d)."
  type        = string
  default     = "86400s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.pubsub_topic_message_retention)) && tonumber(trimsuffix(var.pubsub_topic_message_retention, "s")) >= 600 && tonumber(trimsuffix(var.pubsub_topic_message_retention, "s")) <= 2678400
    error_message = "Topic retention must be a duration in seconds between 600s and 2678400s (31 days)."
  }
}

variable "pubsub_subscription_message_retention" {
  description = "How long unacked messages stay in the ingest subscription (10m-7d): the time available to repair a broken subscriber."
  type        = string
  default     = "604800s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.pubsub_subscription_message_retention)) && tonumber(trimsuffix(var.pubsub_subscription_message_retention, "s")) >= 600 && tonumber(trimsuffix(var.pubsub_subscription_message_retention, "s")) <= 604800
    error_message = "Subscription retention must be between 600s and 604800s (7 days)."
  }
}

variable "pubsub_dead_letter_retention" {
  description = "How long dead letters stay available for inspection and replay (10m-7d)."
  type        = string
  default     = "604800s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.pubsub_dead_letter_retention)) && tonumber(trimsuffix(var.pubsub_dead_letter_retention, "s")) >= 600 && tonumber(trimsuffix(var.pubsub_dead_letter_retention, "s")) <= 604800
    error_message = "Dead-letter retention must be between 600s and 604800s (7 days)."
  }
}

# ---------------------------------------------------------------------------
# BigQuery
# ---------------------------------------------------------------------------

variable "bigquery_dataset" {
  description = "Dataset id (BIGQUERY_DATASET)."
  type        = string
  default     = "latam"

  validation {
    # RE2 refuses repeat counts above 1000 ({1,1024} would fail for every value,
    # can() hiding the error), so the length is checked apart.
    condition     = length(var.bigquery_dataset) <= 1024 && can(regex("^[A-Za-z0-9_]+$", var.bigquery_dataset))
    error_message = "Dataset ids are 1 to 1024 letters, digits and underscores."
  }
}

variable "bigquery_table" {
  description = "Records table id (BIGQUERY_TABLE)."
  type        = string
  default     = "records"

  validation {
    # RE2 refuses repeat counts above 1000 ({1,1024} would fail for every value,
    # can() hiding the error), so the length is checked apart.
    condition     = length(var.bigquery_table) <= 1024 && can(regex("^[A-Za-z0-9_]+$", var.bigquery_table))
    error_message = "Table ids are 1 to 1024 letters, digits and underscores."
  }
}

variable "bigquery_location" {
  description = "Location of the primary dataset: a multi-region (US, EU) or a region."
  type        = string
  default     = "US"
}

variable "bigquery_max_time_travel_hours" {
  description = "Time-travel window of the dataset in hours: how far back a bad write can be undone with FOR SYSTEM_TIME AS OF."
  type        = number
  default     = 168

  validation {
    condition     = var.bigquery_max_time_travel_hours >= 48 && var.bigquery_max_time_travel_hours <= 168 && var.bigquery_max_time_travel_hours % 24 == 0
    error_message = "Time travel must be a multiple of 24 between 48 and 168 hours."
  }
}

variable "bigquery_query_usage_per_user_per_day_tib" {
  description = "Cost guard: BigQuery custom quota \"Query usage per day per user\" (QueryUsagePerUserPerDay), in TiB that each principal of the project (the API's service account, and everyone else, separately) may have on-demand queries scan per day; over it queries fail until midnight Pacific time. Size it from the table: a point read scans little (clustered on id), a list page or count scans the id-latest view of the whole table, and BigQuery bills at least 10 MB per table per query."
  type        = number
  default     = 1

  validation {
    condition     = var.bigquery_query_usage_per_user_per_day_tib > 0 && var.bigquery_query_usage_per_user_per_day_tib <= 1024
    error_message = "bigquery_query_usage_per_user_per_day_tib must be more than 0 and at most 1024 (TiB)."
  }
}

variable "bigquery_dr_enabled" {
  description = "Create a replica dataset in bigquery_dr_location refreshed by a scheduled cross-region copy (see docs/runbooks/bigquery-dr.md)."
  type        = bool
  default     = false
}

variable "bigquery_dr_location" {
  description = "Location of the DR replica; must differ from bigquery_location."
  type        = string
  default     = "us-east4"
}

variable "bigquery_dr_copy_schedule" {
  description = "How often the replica is refreshed (Data Transfer schedule; cross-region copies run at most every 12 hours). This is the RPO."
  type        = string
  default     = "every 12 hours"
}

# ---------------------------------------------------------------------------
# Container image and Artifact Registry
# ---------------------------------------------------------------------------

variable "artifact_registry_repository" {
  description = "Docker repository id in Artifact Registry."
  type        = string
  default     = "latam"
}

variable "artifact_registry_keep_recent" {
  description = "Newest image versions the cleanup policy always keeps (rollback targets)."
  type        = number
  default     = 20
}

variable "image" {
  description = "Image for the first deployment, by digest: <region>-docker.pkg.dev/<project>/<repo>/<name>@sha256:<64 hex>. Later rollouts are done by CI."
  type        = string

  validation {
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.image))
    error_message = "image must be pinned by digest (…@sha256:<64 hex digits>), never by a mutable tag."
  }
}

# ---------------------------------------------------------------------------
# Cloud Run: API service
# ---------------------------------------------------------------------------

variable "api_service_name" {
  description = "Cloud Run service name of the API."
  type        = string
  default     = "latam-api"
}

variable "api_min_instances" {
  description = "Minimum API instances kept warm (0 allows scale to zero, at the cost of cold starts)."
  type        = number
  default     = 1

  validation {
    condition     = var.api_min_instances >= 0
    error_message = "api_min_instances cannot be negative."
  }
}

variable "api_max_instances" {
  description = "Maximum API instances (caps cost and the load put on BigQuery)."
  type        = number
  default     = 10

  validation {
    condition     = var.api_max_instances >= 1 && var.api_max_instances <= 1000
    error_message = "api_max_instances must be between 1 and 1000."
  }
}

variable "gunicorn_workers" {
  description = "gunicorn worker processes per API instance (GUNICORN_WORKERS)."
  type        = number
  default     = 2

  validation {
    condition     = var.gunicorn_workers >= 1 && var.gunicorn_workers <= 16
    error_message = "gunicorn_workers must be between 1 and 16."
  }
}

variable "gunicorn_threads" {
  description = "Threads per gunicorn worker (GUNICORN_THREADS). Request concurrency per instance = workers x threads."
  type        = number
  default     = 4

  validation {
    condition     = var.gunicorn_threads >= 1 && var.gunicorn_threads <= 64
    error_message = "gunicorn_threads must be between 1 and 64."
  }
}

variable "api_cpu" {
  description = "vCPUs per API instance."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.api_cpu)
    error_message = "api_cpu must be one of 1, 2, 4, 6, 8."
  }
}

variable "api_memory" {
  description = "Memory per API instance (e.g. 512Mi, 1Gi)."
  type        = string
  default     = "1Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.api_memory))
    error_message = "api_memory must look like 512Mi or 1Gi."
  }
}

variable "api_request_timeout" {
  description = "Cloud Run request timeout of the API; the app bounds warehouse calls well below it."
  type        = string
  default     = "30s"
}

variable "api_throttle_rate" {
  description = "Per-client request rate the API allows (API_THROTTLE_RATE, DRF syntax such as 100/second); empty disables throttling."
  type        = string
  default     = "100/second"

  validation {
    condition     = var.api_throttle_rate == "" || can(regex("^[0-9]+/(second|minute|hour|day)$", var.api_throttle_rate))
    error_message = "api_throttle_rate must be empty or <number>/<second|minute|hour|day>."
  }
}

variable "api_ingress" {
  description = "Who can reach the API's URL at the network level (IAM still applies)."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.api_ingress)
    error_message = "api_ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "api_extra_allowed_hosts" {
  description = "Host names (custom domains) accepted besides the service's run.app host (DJANGO_ALLOWED_HOSTS)."
  type        = list(string)
  default     = []
}

variable "api_invokers" {
  description = "Principals allowed to call the API (roles/run.invoker), e.g. serviceAccount:partner@… or group:…. Use allow_public_access for allUsers."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.api_invokers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "Public principals are not accepted here: set allow_public_access = true to open the API on purpose."
  }

  validation {
    condition     = alltrue([for m in var.api_invokers : can(regex("^(user|serviceAccount|group|domain|principal|principalSet):", m))])
    error_message = "Each invoker must be an IAM member such as serviceAccount:x@p.iam.gserviceaccount.com or group:team@example.com."
  }
}

variable "allow_public_access" {
  description = "Explicit opt-in: grant roles/run.invoker to allUsers so anyone can call the API without a Google identity."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------
# Cloud Run: subscriber worker pool
# ---------------------------------------------------------------------------

variable "subscriber_name" {
  description = "Cloud Run worker pool name of the subscriber."
  type        = string
  default     = "latam-subscriber"
}

variable "subscriber_instance_count" {
  description = "Always-on subscriber instances; they share the subscription (streaming pull load-balances between them)."
  type        = number
  default     = 1

  validation {
    condition     = var.subscriber_instance_count >= 1 && var.subscriber_instance_count <= 100
    error_message = "subscriber_instance_count must be between 1 and 100."
  }
}

variable "subscriber_streams" {
  description = "Streaming pulls each subscriber instance opens on the subscription (INGEST_STREAMS), each with a writer thread; the instance's flow control is split between them. Throughput grows with streams until the instance's CPU is spent, then with subscriber_instance_count (docs/runbooks/ingest-backlog.md)."
  type        = number
  default     = 1

  validation {
    condition     = var.subscriber_streams >= 1 && var.subscriber_streams <= 16 && floor(var.subscriber_streams) == var.subscriber_streams
    error_message = "subscriber_streams must be a whole number from 1 to 16 (what run_subscriber accepts)."
  }
}

variable "subscriber_cpu" {
  description = "vCPUs per subscriber instance."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.subscriber_cpu)
    error_message = "subscriber_cpu must be one of 1, 2, 4, 6, 8."
  }
}

variable "subscriber_memory" {
  description = "Memory per subscriber instance (e.g. 512Mi, 1Gi)."
  type        = string
  default     = "1Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.subscriber_memory))
    error_message = "subscriber_memory must look like 512Mi or 1Gi."
  }
}

variable "subscriber_metrics_port" {
  description = "Port of the subscriber's Prometheus endpoint (METRICS_PORT)."
  type        = number
  default     = 9100

  validation {
    condition     = var.subscriber_metrics_port > 1024 && var.subscriber_metrics_port < 65536 && var.subscriber_metrics_port != 8080
    error_message = "subscriber_metrics_port must be an unprivileged port other than 8080."
  }
}

# ---------------------------------------------------------------------------
# Memorystore (optional API cache)
# ---------------------------------------------------------------------------

variable "subscriber_metrics_collector_image" {
  description = "Sidecar that sends the subscriber's Prometheus metrics to Cloud Monitoring (Managed Service for Prometheus' collector for Cloud Run; the freshness SLO reads them). A pinned tag or digest."
  type        = string
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0"

  validation {
    condition     = can(regex("(:[0-9]+\\.[0-9]+\\.[0-9]+|@sha256:[0-9a-f]{64})$", var.subscriber_metrics_collector_image))
    error_message = "subscriber_metrics_collector_image must be pinned: a version tag (x.y.z) or a digest, never latest."
  }
}

variable "enable_redis" {
  description = "Create a Memorystore Redis instance (TLS), a VPC path to it, and set CACHE_URL and CACHE_REDIS_CA_FILE on the API. Off, each gunicorn worker caches in its own memory: throttling (API_THROTTLE_RATE) and query coalescing then count per process, not per service."
  type        = bool
  default     = true
}

variable "redis_tier" {
  description = "Memorystore tier: BASIC (single node) or STANDARD_HA (replicated, automatic failover)."
  type        = string
  default     = "STANDARD_HA"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_size_gb" {
  description = "Memorystore capacity in GiB."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_memory_size_gb >= 1 && var.redis_memory_size_gb <= 300
    error_message = "redis_memory_size_gb must be between 1 and 300."
  }
}

variable "redis_version" {
  description = "Memorystore Redis version."
  type        = string
  default     = "REDIS_7_2"
}

variable "vpc_subnet_cidr" {
  description = "CIDR of the subnet used by Cloud Run Direct VPC egress (only with enable_redis; /26 or larger)."
  type        = string
  default     = "10.8.0.0/24"

  validation {
    condition     = can(cidrhost(var.vpc_subnet_cidr, 0)) && tonumber(split("/", var.vpc_subnet_cidr)[1]) <= 26
    error_message = "vpc_subnet_cidr must be a valid CIDR of size /26 or larger."
  }
}

# ---------------------------------------------------------------------------
# Identity and CI
# ---------------------------------------------------------------------------

variable "github_repository" {
  description = "GitHub repository (owner/name) whose deploy workflow (.github/workflows/deploy.yml on main) may push images and deploy through Workload Identity Federation."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be \"owner/name\"."
  }

  # google.subject (the token's sub, e.g. repo:<owner>/<name>:environment:production)
  # is limited to 127 bytes by Workload Identity Federation.
  validation {
    condition     = length("repo:${var.github_repository}:environment:production") <= 127
    error_message = "github_repository is too long: repo:<owner>/<name>:environment:production must fit in 127 bytes (google.subject)."
  }
}

variable "github_repository_id" {
  description = "GitHub's numeric id of github_repository (gh api repos/<owner>/<name> --jq .id), pinned in the Workload Identity provider's condition: a deleted and re-created repository of the same name has another id."
  type        = string

  validation {
    condition     = can(regex("^[1-9][0-9]{0,19}$", var.github_repository_id))
    error_message = "github_repository_id must be GitHub's numeric repository id (digits only), e.g. \"123456789\"."
  }
}

variable "workload_identity_pool_id" {
  description = "Workload Identity pool id (pool ids stay reserved for 30 days after deletion; change it to recreate)."
  type        = string
  default     = "github-actions"
}

variable "operator_members" {
  description = "Principals allowed to impersonate the operator account that inspects and replays dead letters (e.g. group:oncall@example.com)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.operator_members : can(regex("^(user|group|serviceAccount):", m))])
    error_message = "operator_members must be user:, group: or serviceAccount: members."
  }
}

# ---------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------

variable "alert_email" {
  description = "E-mail address that receives alert notifications."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address."
  }
}

variable "runbook_base_url" {
  description = "URL prefix of docs/runbooks in the repository, linked from every alert. Empty: https://github.com/<github_repository>/blob/main/docs/runbooks."
  type        = string
  default     = ""
}

variable "slo_availability_goal" {
  description = "Availability SLO: fraction of API requests that must not be 5xx over 28 rolling days."
  type        = number
  default     = 0.999

  validation {
    condition     = var.slo_availability_goal > 0.9 && var.slo_availability_goal < 1
    error_message = "slo_availability_goal must be between 0.9 and 1 (exclusive)."
  }
}

variable "slo_freshness_goal" {
  description = "Freshness SLO: fraction of stored records that must be queryable within slo_freshness_seconds of their publish, over 28 rolling days."
  type        = number
  default     = 0.99

  validation {
    condition     = var.slo_freshness_goal > 0.9 && var.slo_freshness_goal < 1
    error_message = "slo_freshness_goal must be between 0.9 and 1 (exclusive)."
  }
}

variable "slo_freshness_seconds" {
  description = "Freshness objective (s): publish to queryable. A bucket bound of the subscriber's latam_ingest_publish_to_stored_seconds histogram, so the SLO's cut is exact."
  type        = number
  default     = 60

  validation {
    condition     = contains([1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600, 1800, 3600], var.slo_freshness_seconds)
    error_message = "slo_freshness_seconds must be a bucket bound of latam_ingest_publish_to_stored_seconds from 1 s: 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600, 1800 or 3600."
  }
}

variable "alert_error_ratio_threshold" {
  description = "5xx ratio (0-1) sustained for 5 minutes that alerts."
  type        = number
  default     = 0.02

  validation {
    condition     = var.alert_error_ratio_threshold > 0 && var.alert_error_ratio_threshold < 1
    error_message = "alert_error_ratio_threshold must be between 0 and 1."
  }
}

variable "alert_latency_p95_ms" {
  description = "p95 request latency (ms) sustained for 5 minutes that alerts."
  type        = number
  default     = 1000
}

variable "alert_oldest_unacked_seconds" {
  description = "Age (s) of the oldest unacked ingest message that alerts: the pipeline's freshness objective."
  type        = number
  default     = 600
}

variable "alert_backlog_messages" {
  description = "Undelivered ingest messages sustained for 10 minutes that alert."
  type        = number
  default     = 10000
}
