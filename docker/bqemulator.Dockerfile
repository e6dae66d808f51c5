# BigQuery emulator (bqemulator) for docker/compose.yaml. Build context: repo root.
# Versions match requirements-dev.txt. The DuckDB spatial extension comes from the
# duckdb-extension-spatial wheel and is installed at build time, so the emulator
# never downloads it at start. x86_64 only (the spatial wheel has no arm64 build):
# compose sets platform: linux/amd64.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HOME=/home/bqemu

RUN groupadd --system --gid 10002 bqemu \
    && useradd --system --uid 10002 --gid bqemu --create-home --home-dir /home/bqemu \
       --shell /usr/sbin/nologin bqemu \
    && install -d -o bqemu -g bqemu /data

RUN pip install \
        bqemulator==1.4.0 \
        duckdb==1.5.5 \
        duckdb-extension-spatial==1.5.5 \
        numpy==2.4.6

USER 10002:10002

# Install the bundled spatial extension into ~/.duckdb for the user that runs it.
RUN python -c "import pathlib, duckdb, duckdb_extension_spatial as s; \
ext = next(pathlib.Path(s.__file__).parent.glob('extensions/*/spatial.duckdb_extension')); \
duckdb.connect().install_extension(str(ext))"

VOLUME ["/data"]
EXPOSE 9050 9060

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9050/healthz', timeout=4)"]

ENTRYPOINT ["bqemulator", "start"]
CMD ["--project", "latam-local", \
     "--rest-host", "0.0.0.0", "--rest-port", "9050", \
     "--grpc-host", "0.0.0.0", "--grpc-port", "9060", \
     "--persistent", "--data-dir", "/data"]
