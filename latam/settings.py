"""Settings for the latam project: every value comes from the environment (one `env`).

Local development is the default: the emulator endpoints are set and nothing needs a
secret. Against real Google Cloud (no BIGQUERY_EMULATOR_HOST) the secret key is required.
"""

import warnings
from typing import Any
from urllib.parse import urlsplit

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from latam.environment import BASE_DIR, env_load

env = env_load()
# django-environ is untyped: each setting read from `env` declares its type, which is what
# the type checker (django-stubs) knows of `settings.NAME` everywhere else.

# --- Google Cloud ---------------------------------------------------------------------
GCP_PROJECT: str = env.str("GCP_PROJECT", default="latam-local")
BIGQUERY_DATASET: str = env.str("BIGQUERY_DATASET", default="latam")
BIGQUERY_TABLE: str = env.str("BIGQUERY_TABLE", default="records")
BIGQUERY_EMULATOR_HOST: str = env.str("BIGQUERY_EMULATOR_HOST", default="")
# bqemulator's gRPC endpoint (host:port), where its Storage Write API takes the rows.
# Unset: the REST endpoint's host on bqemulator's default gRPC port, 9060.
BIGQUERY_EMULATOR_GRPC_HOST: str = env.str("BIGQUERY_EMULATOR_GRPC_HOST", default="")
if BIGQUERY_EMULATOR_HOST and not BIGQUERY_EMULATOR_GRPC_HOST:
    _netloc = urlsplit(
        BIGQUERY_EMULATOR_HOST if "://" in BIGQUERY_EMULATOR_HOST else f"//{BIGQUERY_EMULATOR_HOST}"
    ).netloc
    _host = _netloc.rsplit(":", 1)[0] if ":" in _netloc.rsplit("]", 1)[-1] else _netloc
    BIGQUERY_EMULATOR_GRPC_HOST = f"{_host}:9060"
BIGQUERY_LOCATION: str = env.str("BIGQUERY_LOCATION", default="US")
# Upper bound, in seconds, of one warehouse call including its retries.
BIGQUERY_TIMEOUT_SECONDS: float = env.float("BIGQUERY_TIMEOUT_SECONDS", default=5.0)
# Bytes one read query may bill: BigQuery refuses a query whose estimate is larger, without
# charge (the API answers 503 and logs it for an alert). 10 GiB ≈ $0.06 on demand; the
# read columns of 100 M records are ~7.8 GiB (README, "Caching and staleness bounds").
BIGQUERY_MAX_BYTES_BILLED: int = env.int("BIGQUERY_MAX_BYTES_BILLED", default=10 * 1024**3)
# Let BigQuery answer short read queries without creating a job (JOB_CREATION_OPTIONAL).
# Off by default on the emulator, which ignores it and always creates a job.
BIGQUERY_SHORT_QUERY_MODE: bool = env.bool(
    "BIGQUERY_SHORT_QUERY_MODE", default=not BIGQUERY_EMULATOR_HOST
)
PUBSUB_EMULATOR_HOST: str = env.str("PUBSUB_EMULATOR_HOST", default="")
PUBSUB_TOPIC: str = env.str("PUBSUB_TOPIC", default="data-ingest-topic")
PUBSUB_SUBSCRIPTION: str = env.str("PUBSUB_SUBSCRIPTION", default="data-ingest-sub")
PUBSUB_DEAD_LETTER_TOPIC: str = env.str(
    "PUBSUB_DEAD_LETTER_TOPIC", default="data-ingest-dead-letter"
)
PUBSUB_DEAD_LETTER_SUBSCRIPTION: str = env.str(
    "PUBSUB_DEAD_LETTER_SUBSCRIPTION", default="data-ingest-dead-letter-sub"
)
PUBSUB_MAX_DELIVERY_ATTEMPTS: int = env.int("PUBSUB_MAX_DELIVERY_ATTEMPTS", default=5)

# --- Ingestion (manage.py run_subscriber) ---------------------------------------------
# A batch is written when it holds INGEST_BATCH_SIZE rows or its oldest row is this old.
INGEST_BATCH_SIZE: int = env.int("INGEST_BATCH_SIZE", default=500)
INGEST_BATCH_MAX_SECONDS: float = env.float("INGEST_BATCH_MAX_SECONDS", default=1.0)
# ...or this many bytes: BigQuery refuses a request over 10 MB.
INGEST_BATCH_MAX_BYTES: int = env.int("INGEST_BATCH_MAX_BYTES", default=5 * 1024 * 1024)
# Flow control: messages and bytes held at once, whatever the backlog.
INGEST_MAX_OUTSTANDING_MESSAGES: int = env.int("INGEST_MAX_OUTSTANDING_MESSAGES", default=2000)
INGEST_MAX_OUTSTANDING_BYTES: int = env.int(
    "INGEST_MAX_OUTSTANDING_BYTES", default=20 * 1024 * 1024
)
# Streaming pulls one process opens on the subscription (1–16), each with a writer
# thread; the flow control above is the process's, split between them. One emulator
# stream serves ~2,000 msg/s; streams add up.
INGEST_STREAMS: int = env.int("INGEST_STREAMS", default=1)
# Each lease extension asks for at most this long: a crashed subscriber's messages are
# redelivered within it (the client's default lets leases grow to 600 s).
INGEST_LEASE_SECONDS: int = env.int("INGEST_LEASE_SECONDS", default=10)
# Backoff between retries of a write while the warehouse fails (exponential, jittered,
# capped). Messages are held meanwhile, however long: none is nacked for it.
INGEST_RETRY_MAX_SECONDS: float = env.float("INGEST_RETRY_MAX_SECONDS", default=30.0)
# SIGTERM: stop pulling, flush, ack, exit within this (Cloud Run gives 10 s).
INGEST_SHUTDOWN_SECONDS: float = env.float("INGEST_SHUTDOWN_SECONDS", default=8.0)
# The subscriber's Prometheus endpoint (0 turns it off) and the address it binds.
METRICS_PORT: int = env.int("METRICS_PORT", default=9100)
METRICS_ADDRESS: str = env.str("METRICS_ADDRESS", default="127.0.0.1")

LOCAL_DEVELOPMENT = bool(BIGQUERY_EMULATOR_HOST)

# --- Django ---------------------------------------------------------------------------
DEBUG: bool = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY: str = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not LOCAL_DEVELOPMENT:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required outside local development "
            "(BIGQUERY_EMULATOR_HOST is not set, so this is not a local run)."
        )
    SECRET_KEY = "local-development-only-not-a-secret"  # noqa: S105  # pragma: allowlist secret
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.staticfiles",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "records",
    "ingestion",
]

MIDDLEWARE = [
    "latam.observability.RequestObservabilityMiddleware",
    # Outside everything that answers (probes, static files, errors, views): every answer
    # gets the security headers, and every refusal a JSON body.
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "records.errors.JsonErrorMiddleware",
    "records.health.ProbeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "latam.urls"
WSGI_APPLICATION = "latam.wsgi.application"
# The records API has no trailing-slash redirects: both forms are routed directly.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# No relational database: records live in BigQuery behind a repository.
DATABASES: dict[str, dict[str, Any]] = {}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve app static files straight from the finders when collectstatic has not run
# (local runs); the image runs collectstatic at build time.
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at")

# Browser security headers, on every answer (see MIDDLEWARE).
SECURE_CONTENT_TYPE_NOSNIFF = True
# Cloud Run's front end terminates TLS and says so; clients cannot reach the app around it.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS, sent on HTTPS answers only: a year in the cloud, off for local plain-HTTP runs.
SECURE_HSTS_SECONDS: int = env.int(
    "DJANGO_SECURE_HSTS_SECONDS", default=0 if LOCAL_DEVELOPMENT else 365 * 24 * 3600
)
# Off by default: the header would bind every subdomain of whatever name the service is
# mapped to, which this service does not own (*.run.app is HSTS-preloaded by Google).
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool(
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False
)
# URLs carry record ids (personal data): never hand them to another site.
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# django-csp. Strict enough for the only HTML served, the browsable API and Swagger UI
# with their local assets: no inline script, nothing from another origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        # Local stylesheets, and the one inline <style> of drf-spectacular's Swagger UI page
        # by its hash (records/tests/unit/test_security_headers.py checks it still matches).
        "style-src": [SELF, "'sha256-MMpT0iDxyjALd9PdfepImGX3DBfJPXZ4IlDWdPAgtn0='"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
    }
}

# --- Cache ----------------------------------------------------------------------------
CACHES: dict[str, dict[str, Any]] = {
    "default": env.cache_url("CACHE_URL", default="locmemcache://latam")
}
# PEM file of the CAs that sign the Redis server's certificate, for a rediss:// CACHE_URL
# (in the cloud: the Memorystore instance's own server CAs, mounted from Secret Manager).
CACHE_REDIS_CA_FILE: str = env.str("CACHE_REDIS_CA_FILE", default="")
if CACHES["default"]["BACKEND"].startswith("django_redis"):
    # A cache outage degrades to the warehouse (logged), never to an error, and a slow
    # Redis costs at most these timeouts.
    # Values are JSON, never pickles: whoever can write to Redis cannot run code here.
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
        }
    )
    DJANGO_REDIS_IGNORE_EXCEPTIONS = True
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    if CACHE_REDIS_CA_FILE:
        if not str(CACHES["default"]["LOCATION"]).startswith("rediss://"):
            raise ImproperlyConfigured("CACHE_REDIS_CA_FILE needs a rediss:// (TLS) CACHE_URL")
        # redis-py's SSLConnection options (a rediss:// URL selects it): the chain must
        # verify against these CAs only. The host name is not checked (on by default since
        # redis-py 6): Memorystore's certificate names the instance by IP in its subject,
        # which Python does not match against an IP address, and its CAs are the
        # instance's own, so a verified chain already proves the server is that instance.
        CACHES["default"]["OPTIONS"]["CONNECTION_POOL_KWARGS"] = {
            "ssl_ca_certs": CACHE_REDIS_CA_FILE,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": False,
        }
# Staleness bounds of the records API, in seconds (see README, "Caching").
RECORDS_CACHE_TTL: int = env.int("RECORDS_CACHE_TTL", default=60)
RECORDS_MISS_CACHE_TTL: int = env.int("RECORDS_MISS_CACHE_TTL", default=10)
RECORDS_LIST_CACHE_TTL: int = env.int("RECORDS_LIST_CACHE_TTL", default=10)
# The total count (X-Total-Count) scans the id of every row: kept apart, longer.
RECORDS_COUNT_CACHE_TTL: int = env.int("RECORDS_COUNT_CACHE_TTL", default=300)
READYZ_CACHE_TTL: int = env.int("READYZ_CACHE_TTL", default=5)
# A warehouse failure is shared for this long: callers of the same key answer 503
# without a query of their own (0 = off).
RECORDS_FAILURE_CACHE_TTL: int = env.int("RECORDS_FAILURE_CACHE_TTL", default=2)

# --- API ------------------------------------------------------------------------------
API_THROTTLE_RATE: str = env.str("API_THROTTLE_RATE", default="")  # e.g. "50/second"; empty = off
# The deepest `offset` served: an offset page sorts every record before it. Deeper, a 400
# points to `cursor` (keyset pages, which BigQuery prunes to the blocks after it).
API_MAX_OFFSET: int = env.int("API_MAX_OFFSET", default=10_000)

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "records.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": (
        ["rest_framework.throttling.AnonRateThrottle"] if API_THROTTLE_RATE else []
    ),
    "DEFAULT_THROTTLE_RATES": {"anon": API_THROTTLE_RATE or None},
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0),
    "EXCEPTION_HANDLER": "records.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "latam records API",
    "DESCRIPTION": "Records ingested from Pub/Sub into BigQuery, served read-only.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging: JSON on stdout for Cloud Logging ----------------------------------------
LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "trace": {"()": "latam.observability.TraceFilter"},
        "throttle": {"()": "latam.jsonlog.Throttle", "seconds": 10},
    },
    "formatters": {"json": {"()": "latam.jsonlog.cloud_logging_formatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["trace"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Django logs the request path on 4xx/5xx, and paths carry record ids.
        "django.request": {"level": "CRITICAL", "propagate": True},
        # Its records carry the request (the path) at ERROR; records.errors logs each
        # refused request at WARNING instead, by the kind of fault only.
        "django.security": {"level": "CRITICAL", "propagate": True},
        "django.server": {"level": "CRITICAL", "propagate": True},
        # A Redis outage: each ignored cache call is an ERROR with its traceback; one
        # every 10 s is enough to see it (with how many were held back).
        "django_redis.cache": {"filters": ["throttle"], "propagate": True},
    },
}
