"""Settings come from the environment and fail loudly where a secret is required."""

import json
import os
import re
import subprocess
import sys

from scripts.devstack import REPO


def django_run(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run `code` after django.setup() in a fresh interpreter with `env` on top of ours."""
    return subprocess.run(
        [sys.executable, "-c", f"import json, django; django.setup(); {code}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "latam.settings", **env},
    )


def settings_check(**env: str) -> subprocess.CompletedProcess:
    """Settings loading outside the test environment: no emulator, no secret, no .env."""
    clean = {"BIGQUERY_EMULATOR_HOST": "", "DJANGO_SECRET_KEY": "", "DJANGO_ENV_FILE": os.devnull}
    return django_run("print('configured')", **{**clean, **env})


def test_secret_key_is_required_outside_local_development():
    result = settings_check()

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_settings_load_in_the_cloud_with_a_secret_and_locally_without_one():
    assert settings_check(DJANGO_SECRET_KEY="from-secret-manager").stdout.strip() == "configured"
    assert settings_check(BIGQUERY_EMULATOR_HOST="127.0.0.1:9050").stdout.strip() == "configured"


def test_debug_is_off_by_default():
    from django.conf import settings

    assert settings.DEBUG is False


def settings_value(expression: str, **env: str) -> object:
    result = django_run(f"from django.conf import settings; print(json.dumps({expression}))", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_throttling_is_off_unless_a_rate_is_configured():
    off = settings_value("settings.REST_FRAMEWORK['DEFAULT_THROTTLE_CLASSES']")
    on = settings_value(
        "[settings.REST_FRAMEWORK['DEFAULT_THROTTLE_CLASSES'], "
        "settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']]",
        API_THROTTLE_RATE="50/second",
    )

    assert off == []
    assert on == [["rest_framework.throttling.AnonRateThrottle"], {"anon": "50/second"}]


def test_redis_cache_url_gets_timeouts_and_degrades_gracefully():
    caches = settings_value(
        "[settings.CACHES['default'], settings.DJANGO_REDIS_IGNORE_EXCEPTIONS]",
        CACHE_URL="redis://10.1.2.3:6379/0",
    )

    assert caches[0]["BACKEND"] == "django_redis.cache.RedisCache"
    assert caches[0]["OPTIONS"]["SOCKET_TIMEOUT"] <= 1
    assert caches[1] is True


def test_env_example_lists_every_variable_the_settings_read():
    settings_source = (REPO / "latam/settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]*)"', settings_source))
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), re.M))

    assert len(read) > 20  # the pattern still finds what settings.py reads
    assert read - listed - {"DJANGO_ENV_FILE"} == set()


def test_redis_cache_values_are_json_never_pickles():
    options = settings_value(
        "settings.CACHES['default']['OPTIONS']", CACHE_URL="redis://10.1.2.3:6379/0"
    )

    assert options["SERIALIZER"] == "django_redis.serializers.json.JSONSerializer"


def test_hsts_is_on_for_a_year_in_the_cloud_and_off_locally():
    hsts = "[settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS]"
    cloud = {"BIGQUERY_EMULATOR_HOST": "", "DJANGO_SECRET_KEY": "from-secret-manager"}

    assert settings_value(hsts, **cloud) == [365 * 24 * 3600, False]
    assert settings_value(hsts, **cloud, DJANGO_SECURE_HSTS_SECONDS="600") == [600, False]
    assert settings_value(hsts, BIGQUERY_EMULATOR_HOST="127.0.0.1:9050") == [0, False]


def test_redis_tls_verifies_the_server_against_the_configured_ca_file(tmp_path):
    ca_file = tmp_path / "server-ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    tls = {"CACHE_URL": "rediss://:auth-string@10.1.2.3:6378/0"}

    options = settings_value(
        "settings.CACHES['default']['OPTIONS']", **tls, CACHE_REDIS_CA_FILE=str(ca_file)
    )
    without_ca_file = settings_value("settings.CACHES['default']['OPTIONS']", **tls)
    # What django-redis builds from them (no connection is opened): redis-py's TLS
    # connection class, with the CA file as its trust store.
    pool = settings_value(
        "(lambda pool: [pool.connection_class.__name__, pool.connection_kwargs['ssl_ca_certs'],"
        " pool.connection_kwargs['ssl_cert_reqs']])("
        "__import__('django.core.cache', fromlist=['caches']).caches['default']"
        ".client.get_client().connection_pool)",
        **tls,
        CACHE_REDIS_CA_FILE=str(ca_file),
    )

    assert options["CONNECTION_POOL_KWARGS"] == {
        "ssl_ca_certs": str(ca_file),
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": False,
    }
    assert "CONNECTION_POOL_KWARGS" not in without_ca_file
    assert pool == ["SSLConnection", str(ca_file), "required"]


def test_redis_ca_file_without_tls_is_refused():
    result = django_run(
        "print('configured')",
        CACHE_URL="redis://10.1.2.3:6379/0",
        CACHE_REDIS_CA_FILE="/etc/latam/redis-ca/server-ca.pem",
    )

    assert result.returncode != 0
    assert "CACHE_REDIS_CA_FILE needs a rediss://" in result.stderr


def test_readme_configuration_table_names_the_read_path_bounds():
    readme = (REPO / "README.md").read_text()
    configuration = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    bounds = [
        "BIGQUERY_MAX_BYTES_BILLED",
        "BIGQUERY_SHORT_QUERY_MODE",
        "API_MAX_OFFSET",
        "RECORDS_COUNT_CACHE_TTL",
    ]

    assert [name for name in bounds if f"`{name}`" not in configuration] == []


def test_read_queries_are_bounded_and_the_count_cached_longer_by_default():
    values = settings_value(
        "[settings.BIGQUERY_MAX_BYTES_BILLED, settings.API_MAX_OFFSET,"
        " settings.RECORDS_COUNT_CACHE_TTL, settings.RECORDS_LIST_CACHE_TTL]",
        DJANGO_ENV_FILE=os.devnull,
    )

    assert values == [10 * 1024**3, 10_000, 300, 10]


def test_short_query_mode_is_on_in_the_cloud_and_off_on_the_emulator():
    mode = "settings.BIGQUERY_SHORT_QUERY_MODE"
    cloud = {"BIGQUERY_EMULATOR_HOST": "", "DJANGO_SECRET_KEY": "from-secret-manager"}
    emulator = {"BIGQUERY_EMULATOR_HOST": "127.0.0.1:9050"}

    assert settings_value(mode, **cloud) is True
    assert settings_value(mode, **cloud, BIGQUERY_SHORT_QUERY_MODE="false") is False
    assert settings_value(mode, **emulator) is False
    assert settings_value(mode, **emulator, BIGQUERY_SHORT_QUERY_MODE="true") is True
