"""Fixtures shared by every app's tests: caches, fakes, the emulators and a real gunicorn.

The emulators are the same processes `make run` starts (scripts/devstack.py), here on
free ports for the whole session; each integration test gets a table of its own.
"""

import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.cache import cache

from latam.clients import clients_reset
from records import wiring
from records.fakes import InMemoryRecordRepository
from scripts.devstack import Stack, free_port

# The emulators, started once per session: integration tests only.
EMULATOR_FIXTURES = frozenset(
    {"emulator_stack", "bigquery_emulator_ports", "bigquery_emulator", "pubsub_emulator"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under an `integration/` folder are marked `integration` (make test-unit
    leaves them out); a test under `unit/` that reaches an emulator is a mistake."""
    for item in items:
        folders = item.path.parent.parts
        if "integration" in folders:
            item.add_marker(pytest.mark.integration)
        elif "unit" in folders and EMULATOR_FIXTURES & set(item.fixturenames):
            raise pytest.UsageError(f"{item.nodeid} is a unit test that needs an emulator")


@pytest.fixture(autouse=True)
def _fresh_cache_and_clients() -> None:
    cache.clear()
    clients_reset()
    wiring.record_repository.cache_clear()


@pytest.fixture
def fake_repository(monkeypatch: pytest.MonkeyPatch) -> InMemoryRecordRepository:
    repository = InMemoryRecordRepository()
    monkeypatch.setattr(wiring, "record_repository", lambda: repository)
    return repository


@pytest.fixture(scope="session")
def emulator_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(log_dir=Path(tmp_path_factory.mktemp("emulator-logs")))
    yield stack
    stack.stop_all()


@pytest.fixture(scope="session")
def bigquery_emulator_ports(emulator_stack: Stack) -> tuple[int, int]:
    """The REST and gRPC ports of a bqemulator (in memory) started for this test session."""
    rest_port, grpc_port = free_port(), free_port()
    emulator_stack.start_bigquery_emulator(
        project="latam-test", rest_port=rest_port, grpc_port=grpc_port, data_dir=None
    )
    return rest_port, grpc_port


@pytest.fixture(scope="session")
def bigquery_emulator(bigquery_emulator_ports: tuple[int, int]) -> str:
    """host:port of the session's bqemulator (REST: tables, queries)."""
    return f"127.0.0.1:{bigquery_emulator_ports[0]}"


@pytest.fixture(scope="session")
def bigquery_emulator_grpc(bigquery_emulator_ports: tuple[int, int]) -> str:
    """host:port of the session's bqemulator gRPC API (Storage Write: row writes)."""
    return f"127.0.0.1:{bigquery_emulator_ports[1]}"


@pytest.fixture(scope="session")
def pubsub_emulator(emulator_stack: Stack) -> str:
    """host:port of the official Pub/Sub emulator started for this test session."""
    port = free_port()
    emulator_stack.start_pubsub_emulator(port=port)
    return f"127.0.0.1:{port}"


@pytest.fixture
def warehouse(settings, bigquery_emulator: str, bigquery_emulator_grpc: str):
    """The real BigQuery repository on the emulator, with an empty table of its own."""
    settings.BIGQUERY_EMULATOR_HOST = bigquery_emulator
    settings.BIGQUERY_EMULATOR_GRPC_HOST = bigquery_emulator_grpc
    settings.BIGQUERY_TABLE = f"records_{uuid.uuid4().hex[:12]}"
    clients_reset()
    wiring.record_repository.cache_clear()
    repository = wiring.record_repository()
    repository.table_ensure(location="US")
    yield repository
    # Its write streams: bqemulator serves only a few open AppendRows calls at once.
    repository.close()


@dataclass(frozen=True)
class Server:
    url: str
    metrics_url: str
    log: Path


@pytest.fixture
def gunicorn_server(
    emulator_stack, bigquery_emulator, bigquery_emulator_grpc, tmp_path
) -> Iterator[Callable[..., Server]]:
    """Starts gunicorn on the session's bqemulator, with `env` on top; stops it after."""
    port, metrics_port = free_port(), free_port()
    name = f"gunicorn-{port}"  # a log of its own

    def start(**env: str) -> Server:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        emulator_stack.start(
            name,
            [str(gunicorn), "latam.wsgi:application", "--bind", f"127.0.0.1:{port}"],
            env={
                "GUNICORN_WORKERS": "3",
                "GUNICORN_THREADS": "2",
                "BIGQUERY_EMULATOR_HOST": bigquery_emulator,
                "BIGQUERY_EMULATOR_GRPC_HOST": bigquery_emulator_grpc,
                "GCP_PROJECT": "latam-test",
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
                "API_METRICS_PORT": str(metrics_port),
                **env,
            },
        )
        emulator_stack.wait_for_port(name, port)
        emulator_stack.wait_for_port(name, metrics_port)
        return Server(
            url=f"http://127.0.0.1:{port}",
            metrics_url=f"http://127.0.0.1:{metrics_port}",
            log=emulator_stack.log_dir / f"{name}.log",
        )

    yield start
    emulator_stack.stop(name)
