"""The local stack: the official Pub/Sub emulator, bqemulator, and the app processes.

Used by `make run` (python -m scripts.devstack run) and by the test session, which starts
the same emulators on free ports. Every process is started in its own process group and
stopped explicitly; a missing emulator or Java fails with a message saying how to get it.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
EMULATOR_HELP = (
    "The Pub/Sub emulator needs Java 17+ and the Google Cloud CLI component "
    "'pubsub-emulator': `gcloud components install pubsub-emulator beta` or "
    "`apt-get install google-cloud-cli-pubsub-emulator`; or set PUBSUB_EMULATOR_BIN to the "
    "path of cloud-pubsub-emulator."
)
SDK_ROOTS = [Path("/usr/lib/google-cloud-sdk"), Path("/usr/share/google-cloud-sdk")]


class StackError(RuntimeError):
    """The local stack cannot start; the message says why and what to do."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


def metric_total(metrics_url: str, name: str, **labels: str) -> float:
    """The sum of a sample's values (those with these labels) on a /metrics endpoint (the
    API's or the subscriber's metrics port, never the API's own port)."""
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def metric_totals(metrics_url: str, *names: str) -> dict[str, float]:
    """Several samples' sums (all labels) from one scrape: a benchmark that polls should
    scrape once per poll, since each scrape costs the measured process CPU."""
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    totals = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


def pubsub_emulator_binary() -> Path:
    """Where the official emulator is: PUBSUB_EMULATOR_BIN, gcloud's SDK root, or usual roots."""
    if not shutil.which("java"):
        raise StackError(f"Java is not installed. {EMULATOR_HELP}")
    candidates = []
    if os.environ.get("PUBSUB_EMULATOR_BIN"):
        candidates.append(Path(os.environ["PUBSUB_EMULATOR_BIN"]))
    roots = []
    if shutil.which("gcloud"):
        result = subprocess.run(
            ["gcloud", "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            roots.append(Path(result.stdout.strip()))
    roots += [*SDK_ROOTS, Path.home() / "google-cloud-sdk"]
    candidates += [root / "platform/pubsub-emulator/bin/cloud-pubsub-emulator" for root in roots]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise StackError(f"The Pub/Sub emulator was not found. {EMULATOR_HELP}")


def duckdb_spatial_install() -> None:
    """bqemulator runs `INSTALL spatial` at start, which would download: install it from
    the pinned duckdb-extension-spatial package instead (idempotent)."""
    import duckdb
    import duckdb_extension_spatial

    package = Path(duckdb_extension_spatial.__file__).parent
    extension = next(package.glob("extensions/*/spatial.duckdb_extension"), None)
    if extension is None:
        raise StackError("duckdb-extension-spatial has no extension file; reinstall requirements")
    duckdb.connect().install_extension(str(extension))


@dataclass
class Stack:
    """Processes started by this stack, stopped together (SIGTERM, then SIGKILL)."""

    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, command: list[str], env: dict | None = None) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def wait_for_port(self, name: str, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open(port):
                return
            if self.processes[name].poll() is not None:
                break
            time.sleep(0.1)
        tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
        raise StackError(f"{name} did not listen on 127.0.0.1:{port}. Last log lines:\n{tail}")

    def stop(self, name: str, timeout: float = 10) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        # The emulator's launcher script forks Java: signal the whole process group.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)

    def start_pubsub_emulator(self, *, port: int) -> None:
        binary = pubsub_emulator_binary()
        self.start("pubsub-emulator", [str(binary), "--host=127.0.0.1", f"--port={port}"])
        self.wait_for_port("pubsub-emulator", port)

    def start_bigquery_emulator(
        self, *, project: str, rest_port: int, grpc_port: int, data_dir: Path | None
    ) -> None:
        duckdb_spatial_install()
        storage = ["--persistent", "--data-dir", str(data_dir)] if data_dir else ["--ephemeral"]
        if data_dir:
            data_dir.mkdir(parents=True, exist_ok=True)
        self.start(
            "bqemulator",
            [
                # bqemulator itself, its Storage Write API made safe beside its REST API
                # (scripts/bqemulator_serial.py).
                sys.executable,
                "-m",
                "scripts.bqemulator_serial",
                "start",
                "--project",
                project,
                "--rest-port",
                str(rest_port),
                "--grpc-port",
                str(grpc_port),
                "--log-level",
                "warning",
                *storage,
            ],
        )
        self.wait_for_port("bqemulator", rest_port)
        self.wait_for_port("bqemulator", grpc_port)  # the Storage Write API (row writes)


def run(args: argparse.Namespace) -> int:
    """`make run`: emulators, bootstrap, API and subscriber, until stopped."""
    state = REPO / ".stack"
    stack = Stack(log_dir=state / "logs")
    env = {
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085",
        "BIGQUERY_EMULATOR_HOST": "127.0.0.1:9050",
        "BIGQUERY_EMULATOR_GRPC_HOST": "127.0.0.1:9060",
    }
    os.environ.update({key: os.environ.get(key, value) for key, value in env.items()})
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        ports = (
            (8085, "Pub/Sub emulator"),
            (9050, "BigQuery emulator"),
            (9060, "BigQuery emulator (gRPC)"),
            (8000, "API"),
            (9101, "API metrics"),
            (9100, "subscriber metrics"),
        )
        for port, what in ports:
            if port_open(port):
                raise StackError(f"port {port} ({what}) is already in use: is a stack running?")
        stack.start_pubsub_emulator(port=8085)
        stack.start_bigquery_emulator(
            project=os.environ.get("GCP_PROJECT", "latam-local"),
            rest_port=9050,
            grpc_port=9060,
            data_dir=state / "bigquery",
        )
        python = sys.executable
        subprocess.run([python, "manage.py", "bootstrap"], cwd=REPO, check=True, timeout=120)
        stack.start(
            "api",
            [str(Path(python).parent / "gunicorn"), "latam.wsgi:application"],
            env={"API_METRICS_PORT": "9101"},
        )
        stack.wait_for_port("api", 8000)
        stack.wait_for_port("api", 9101)
        stack.start(
            "subscriber", [python, "manage.py", "run_subscriber"], env={"METRICS_PORT": "9100"}
        )
        stack.wait_for_port("subscriber", 9100)
        print(
            "\nlatam is running (Ctrl-C stops everything):\n"
            "  API            http://127.0.0.1:8000/records\n"
            "  API docs       http://127.0.0.1:8000/api/docs/\n"
            "  health         http://127.0.0.1:8000/healthz  http://127.0.0.1:8000/readyz\n"
            "  API metrics    http://127.0.0.1:9101/metrics\n"
            "  subscriber     metrics http://127.0.0.1:9100/metrics\n"
            "  Pub/Sub        127.0.0.1:8085 (emulator)\n"
            "  BigQuery       127.0.0.1:9050 (bqemulator REST), 127.0.0.1:9060 (its gRPC)\n"
            f"  logs           {stack.log_dir}/\n"
            "  publish        .venv/bin/python manage.py publish --fake 1000\n"
            "  dead letters   .venv/bin/python manage.py dead_letters\n",
            flush=True,
        )
        parent = os.getppid()
        # SIGTERM to `make` does not reach this process: stop when our parent is gone.
        while not stopping and os.getppid() == parent:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    raise StackError(f"{name} exited with {process.returncode}; see its log")
            time.sleep(0.5)
        return 0
    except (StackError, subprocess.CalledProcessError) as error:
        print(f"make run: {error}", file=sys.stderr)
        return 1
    finally:
        print("stopping the local stack…", flush=True)
        stack.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the whole local stack until Ctrl-C/SIGTERM")
    args = parser.parse_args()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
