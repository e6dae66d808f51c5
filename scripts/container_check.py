"""`make test-container`: build docker/Dockerfile for real and run it as Cloud Run would.

Offline, as root, with podman (Debian's; `.ci/run` installs it):

1. makes a Debian bookworm base with CPython 3.11 by debootstrap (once; kept in the
   check's podman storage) and builds the image on it with `--build-arg PYTHON_IMAGE`,
   pip behind the host's TLS proxy through a build secret (never in a layer: checked);
2. starts bqemulator and the Pub/Sub emulator on free loopback ports (scripts/devstack),
   bootstraps them with the image itself, and runs the API from the image as Cloud Run
   would: $PORT set, read-only root filesystem (a tmpfs on /tmp only), no capabilities,
   DJANGO_SECRET_KEY given at run time; every process must run as UID 10001, never 0;
3. runs the deploy's smoke test (.github/scripts/smoke.sh) against it;
4. runs the subscriber from the same image, publishes a record to the emulator topic and
   reads it back through the API;
5. stops both with SIGTERM: each must exit 0 within Cloud Run's 10 s.

It prints the image size, the build times, the time from `podman run` to a 200 on
/readyz and the SIGTERM exit times, and fails loudly with the containers' logs.
`--dockerfile` checks another Dockerfile (a deliberately broken copy, to see it fail).
"""

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scripts.devstack import REPO, Stack, StackError, free_port, metric_total, port_open

PACKAGES = "podman runc debootstrap uidmap fuse-overlayfs slirp4netns"
BASE_IMAGE = "localhost/latam-check-base:bookworm-python3.11"
IMAGE = "localhost/latam:container-check"
APP_UID = "10001"
STOP_TIMEOUT = 10  # Cloud Run's SIGTERM grace period (seconds)
PROJECT = "latam-container-check"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEBIAN_CA_DIR = Path("/usr/share/ca-certificates")
# Lines that must never appear in the containers' logs.
FORBIDDEN_LOG = re.compile(
    r"Read-only file system|Permission denied|Failed to start control socket|"
    r'"severity": "(ERROR|CRITICAL)"'
)


class CheckFailed(RuntimeError):
    """One of the check's assertions failed; the message says which and why."""


def say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Podman:
    """podman with the check's own configuration and storage (never the machine's)."""

    state: Path
    env: dict[str, str] = field(default_factory=dict)

    def configure(self) -> None:
        templates = REPO / "docker" / "podman"
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        # Per state directory, short (see tmp_dir in containers.conf.in), volatile.
        volatile = Path("/run") / f"latam-check-{hashlib.sha256(bytes(self.state)).hexdigest()[:8]}"
        values = {
            "state": str(self.state),
            "volatile": str(volatile),
            "nofile": str(nofile if nofile != resource.RLIM_INFINITY else 1048576),
            "nproc": str(32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)),
        }
        config = self.state / "config"
        config.mkdir(parents=True, exist_ok=True)
        for name in ("containers.conf", "storage.conf"):
            text = (templates / f"{name}.in").read_text()
            (config / name).write_text(string.Template(text).substitute(values))
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(config / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(config / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(templates / "registries.conf"),
        }

    def run(
        self, *args: str, timeout: float = 120, check: bool = True, env: dict | None = None, **kw
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["podman", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kw,
        )
        if check and result.returncode != 0:
            raise CheckFailed(
                f"podman {' '.join(args[:3])}… exited {result.returncode}:\n"
                f"{result.stderr.strip()[-3000:]}"
            )
        return result

    def out(self, *args: str, **kw) -> str:
        return self.run(*args, **kw).stdout.strip()

    def image_exists(self, name: str) -> bool:
        return self.run("image", "exists", name, check=False).returncode == 0

    def logs(self, container: str) -> str:
        result = self.run("logs", container, check=False)
        return result.stdout + result.stderr


# ---------------------------------------------------------------------------------------
# Preconditions, state, the base image
# ---------------------------------------------------------------------------------------


def preflight() -> None:
    missing = [tool for tool in ("podman", "runc", "debootstrap") if not shutil.which(tool)]
    if missing:
        raise CheckFailed(
            f"{', '.join(missing)} not installed: `apt-get install --no-install-recommends "
            f"{PACKAGES}` (.ci/run does it)"
        )


@contextlib.contextmanager
def locked(state: Path) -> Iterator[None]:
    """One check at a time per state directory (they share storage and image names)."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another container check using {state}…")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 .sources or .list), for debootstrap."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    sources = Path("/etc/apt")
    for path in [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for block in re.split(r"\n\s*\n", text):
                fields = dict(
                    re.findall(r"^([A-Za-z-]+):\s*(.+)$", block, flags=re.MULTILINE),
                )
                if (
                    "deb" in fields.get("Types", "").split()
                    and "bookworm" in fields.get("Suites", "").split()
                ):
                    return fields["URIs"].split()[0]
        elif path.suffix == ".list":
            for line in text.splitlines():
                match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", line)
                if match:
                    return match.group(1)
    return "http://deb.debian.org/debian"


def build_base(podman: Podman, logs: Path) -> None:
    """A Debian bookworm base with CPython 3.11 (Debian's python3.11, venv-capable), made
    offline: debootstrap from the Debian mirror, then `podman import`."""
    rootfs = podman.state / "base-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    mirror = debian_mirror()
    log = logs / "base.log"
    say(f"    debootstrap --variant=minbase bookworm from {mirror} (log: {log})")
    with open(log, "w") as out:
        steps = [
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
            [
                "chroot",
                str(rootfs),
                "/usr/bin/env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "DEBIAN_FRONTEND=noninteractive",
                "sh",
                "-c",
                "apt-get update -q && apt-get install -y -q --no-install-recommends "
                "python3.11-venv ca-certificates && apt-get clean "
                "&& rm -rf /var/lib/apt/lists/*",
            ],
        ]
        for step in steps:
            result = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=600)
            if result.returncode != 0:
                tail = log.read_text(errors="replace")[-3000:]
                raise CheckFailed(f"{step[0]} failed ({result.returncode}):\n{tail}")
    # The host's resolver and name are podman's to provide; docs and logs are not needed.
    for junk in ("etc/resolv.conf", "etc/hostname", "var/log", "var/cache/apt"):
        path = rootfs / junk
        if path.is_dir():
            for child in path.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        elif path.exists():
            path.unlink()
    for docs in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"):
        shutil.rmtree(rootfs / docs, ignore_errors=True)
        (rootfs / docs).mkdir()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    podman.run(
        "import",
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        "ENV LANG=C.UTF-8",
        "--change",
        'CMD ["python3.11"]',
        "-",
        BASE_IMAGE,
        stdin=tar.stdout,
        timeout=300,
    )
    tar.stdout.close()
    if tar.wait() != 0:
        raise CheckFailed("tar of the base root filesystem failed")
    shutil.rmtree(rootfs)


# ---------------------------------------------------------------------------------------
# The image
# ---------------------------------------------------------------------------------------


def host_ca_bundle() -> Path | None:
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None


def host_pip_index() -> str | None:
    """The index this machine's pip uses, when it is not PyPI's default (an http(s) URL:
    a file:// index is not visible inside the build)."""
    index = os.environ.get("PIP_INDEX_URL")
    if not index:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        index = result.stdout.strip() if result.returncode == 0 else ""
    return index if index.startswith(("http://", "https://")) else None


def build_image(podman: Podman, dockerfile: Path, logs: Path) -> float:
    args = [
        "build",
        "--format=docker",  # keeps HEALTHCHECK, as Docker/BuildKit does
        "--pull=never",
        "--network=host",
        "--file",
        str(dockerfile),
        "--tag",
        IMAGE,
        "--build-arg",
        f"PYTHON_IMAGE={BASE_IMAGE}",
    ]
    bundle = host_ca_bundle()
    if bundle:
        args += ["--secret", f"id=build_ca,src={bundle}"]
    index = host_pip_index()
    if index:
        args += ["--build-arg", f"BUILD_PIP_INDEX_URL={index}"]
    log = logs / "build.log"
    shown = dockerfile.relative_to(REPO) if dockerfile.is_relative_to(REPO) else dockerfile
    say(
        f"    podman build -f {shown} (CA bundle as build secret: {bundle or 'none'}; "
        f"index: {index or 'PyPI'}; log: {log})"
    )
    started = time.monotonic()
    result = podman.run(*args, str(REPO), check=False, timeout=900)
    elapsed = time.monotonic() - started
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise CheckFailed(f"the image did not build ({result.returncode}):\n{output[-4000:]}")
    return elapsed


def host_only_certificates() -> list[bytes]:
    """A line of each certificate in the host's CA bundle that Debian does not ship (the
    TLS proxy's CA, for one): what must never end up in the image."""
    if not HOST_CA_BUNDLE.is_file():
        return []
    pem = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)-----END CERTIFICATE-----", re.S)

    def bodies(data: bytes) -> set[bytes]:
        return {b"".join(match.group(1).split()) for match in pem.finditer(data)}

    shipped: set[bytes] = set()
    for crt in DEBIAN_CA_DIR.rglob("*.crt"):
        shipped |= bodies(crt.read_bytes())
    extra = bodies(HOST_CA_BUNDLE.read_bytes()) - shipped
    # The first 64 base64 characters: one whole PEM line, whatever the wrapping after it.
    return sorted(body[:64] for body in extra)


def image_healthcheck(info: dict) -> list[str]:
    """The HEALTHCHECK command of an image (`podman image inspect`), as an argv."""
    test = (info.get("Healthcheck") or info.get("Config", {}).get("Healthcheck") or {}).get(
        "Test"
    ) or []
    return test[1:] if test[:1] in (["CMD"], ["CMD-SHELL"]) else test


def check_image(podman: Podman) -> int:
    """Image config and layers: non-root user, no secret, no build CA. Returns its size."""
    info = json.loads(podman.out("image", "inspect", IMAGE))[0]
    config = info.get("Config", {})
    user = config.get("User", "")
    if user.split(":")[0] in ("", "0", "root"):
        raise CheckFailed(f"the image's USER is {user!r}: it must not run as root")
    env_names = {item.split("=", 1)[0] for item in config.get("Env", [])}
    if "DJANGO_SECRET_KEY" in env_names:
        raise CheckFailed("the image sets DJANGO_SECRET_KEY: secrets are given at run time")
    if not image_healthcheck(info):
        raise CheckFailed("the image has no HEALTHCHECK (built without --format docker?)")
    # Every layer's own files (a file deleted by a later layer still counts).
    data = info.get("GraphDriver", {}).get("Data", {})
    layers = [d for d in data.get("LowerDir", "").split(":") if d]
    layers += [data["UpperDir"]] if data.get("UpperDir") else []
    if not layers:
        raise CheckFailed(f"cannot find the image's layers: {data}")
    needles = host_only_certificates()
    found = []
    for layer in layers:
        for directory, _, files in os.walk(layer):
            for name in files:
                path = Path(directory, name)
                if "build_ca" in name or "host-ca" in name:
                    found.append(str(path))
                    continue
                if not needles or path.is_symlink() or not path.is_file():
                    continue
                with contextlib.suppress(OSError):
                    content = path.read_bytes()
                    if any(needle in content for needle in needles):
                        found.append(str(path))
    if found:
        raise CheckFailed(f"the build's CA bundle is in the image's layers: {found[:5]}")
    say(
        f"    image config ok (USER {user}, no DJANGO_SECRET_KEY, HEALTHCHECK set); "
        f"{len(layers)} layers hold no host CA ({len(needles)} host-only certificate(s) "
        "looked for) nor build secret"
    )
    return int(info.get("Size", 0))


# ---------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------


@dataclass
class Run:
    podman: Podman
    logs: Path
    bigquery: str
    pubsub: str
    bigquery_grpc: str = "127.0.0.1:9"  # bqemulator's Storage Write API (row writes)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    containers: list[str] = field(default_factory=list)

    def cloud_run_args(self, name: str, **env: str) -> list[str]:
        """`podman run` options: Cloud Run's contract, stricter (read-only root)."""
        args = [
            "--name",
            name,
            "--read-only",
            "--tmpfs",
            "/tmp:rw,nosuid,nodev,size=64m,mode=1777",  # noqa: S108 - the container's /tmp
            "--network=host",  # the emulators listen on the host's 127.0.0.1
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--no-healthcheck",  # no systemd timers here; the check runs it itself
            "--pull=never",
            # No value: podman takes it from its own environment, never from the command line.
            "--env=DJANGO_SECRET_KEY",
        ]
        base = {
            "GCP_PROJECT": PROJECT,
            "BIGQUERY_EMULATOR_HOST": self.bigquery,
            "BIGQUERY_EMULATOR_GRPC_HOST": self.bigquery_grpc,
            "PUBSUB_EMULATOR_HOST": self.pubsub,
        }
        for key, value in {**base, **env}.items():
            args += ["--env", f"{key}={value}"]
        return args

    def podman_env(self) -> dict[str, str]:
        return {"DJANGO_SECRET_KEY": self.secret_key}

    def one_off(self, name: str, *command: str, timeout: float = 120) -> None:
        self.containers.append(name)
        result = self.podman.run(
            "run",
            *self.cloud_run_args(name),
            IMAGE,
            *command,
            env=self.podman_env(),
            check=False,
            timeout=timeout,
        )
        (self.logs / f"{name}.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise CheckFailed(
                f"`{' '.join(command)}` in the image exited {result.returncode}:\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )

    def start(self, name: str, *command: str, **env: str) -> float:
        """Starts a detached container; returns the monotonic time just before `podman run`."""
        self.containers.append(name)
        started = time.monotonic()
        self.podman.run(
            "run", "--detach", *self.cloud_run_args(name, **env), IMAGE, *command,
            env=self.podman_env(),
        )  # fmt: skip
        return started

    def running(self, name: str) -> bool:
        state = self.podman.out("inspect", name, "--format", "{{.State.Running}}", check=False)
        return state == "true"

    def assert_non_root(self, name: str) -> None:
        """Every process of the container runs as the image's user, never root."""
        exec_uid = self.podman.out("exec", name, "id", "-u")
        if exec_uid == "0":
            raise CheckFailed(f"{name} runs as root (id -u = 0)")
        top = self.podman.out("top", name, "huser", "user", "args").splitlines()[1:]
        host_uids = {line.split()[0] for line in top if line.strip()}
        if exec_uid != APP_UID or host_uids != {APP_UID}:
            raise CheckFailed(
                f"{name}: processes must run as UID {APP_UID}; id -u = {exec_uid}, "
                f"podman top:\n" + "\n".join(top)
            )
        say(f"    {name}: {len(top)} process(es), all UID {APP_UID} (id -u = {exec_uid})")

    def stop(self, name: str) -> float:
        """SIGTERM (podman stop sends the image's StopSignal), SIGKILL after 10 s."""
        stop_signal = self.podman.out("inspect", name, "--format", "{{.Config.StopSignal}}")
        with contextlib.suppress(ValueError):
            stop_signal = signal.Signals(int(stop_signal)).name
        started = time.monotonic()
        self.podman.run("stop", "--time", str(STOP_TIMEOUT), name, timeout=STOP_TIMEOUT + 30)
        elapsed = time.monotonic() - started
        code = self.podman.out("inspect", name, "--format", "{{.State.ExitCode}}")
        if code != "0" or elapsed >= STOP_TIMEOUT:
            raise CheckFailed(
                f"{name}: on {stop_signal} it ended in {elapsed:.1f} s with exit "
                f"code {code}; Cloud Run wants exit 0 within {STOP_TIMEOUT} s (137 = killed)"
            )
        say(f"    {name}: podman stop ({stop_signal}) -> exit 0 in {elapsed:.2f} s")
        return elapsed

    def scan_logs(self, name: str) -> None:
        """Cloud Logging gets JSON lines only, and none says a write or a start failed."""
        text = self.podman.logs(name)
        (self.logs / f"{name}.log").write_text(text)
        bad = [line for line in text.splitlines() if FORBIDDEN_LOG.search(line)]
        if bad:
            raise CheckFailed(f"{name} logged what it must not:\n" + "\n".join(bad[:10])[-3000:])
        for line in filter(str.strip, text.splitlines()):
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict) or "severity" not in entry:
                raise CheckFailed(f"{name} logged a line that is not a JSON entry: {line[:300]}")

    def dump_logs(self) -> None:
        for name in self.containers:
            text = self.podman.logs(name)
            if text.strip():
                (self.logs / f"{name}.log").write_text(text)
                say(f"---- last lines of {name}'s log ----")
                say("\n".join(text.splitlines()[-40:]))

    def remove_all(self) -> None:
        for name in self.containers:
            self.podman.run("rm", "--force", "--time", "0", name, check=False, timeout=60)


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    # Only http://127.0.0.1 URLs built by this script.
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def wait_ready(run: Run, name: str, url: str, started: float, timeout: float = 60) -> float:
    """Seconds from `podman run` to the first 200 on url."""
    deadline = started + timeout
    last_state_check = 0.0
    while time.monotonic() < deadline:
        if http_get(url, timeout=2)[0] == 200:
            return time.monotonic() - started
        if time.monotonic() - last_state_check > 1:
            last_state_check = time.monotonic()
            if not run.running(name):
                raise CheckFailed(f"{name} exited before {url} answered 200")
        time.sleep(0.05)
    raise CheckFailed(f"{name}: {url} not 200 within {timeout:.0f} s of podman run")


def wait_for(what: str, predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if predicate():
                return
        time.sleep(0.2)
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def check_running(run: Run, figures: dict) -> None:
    tag = os.getpid()
    api, subscriber = f"latam-check-api-{tag}", f"latam-check-subscriber-{tag}"

    say("==> python manage.py bootstrap, from the image (read-only, non-root), on the emulators")
    run.one_off(f"latam-check-bootstrap-{tag}", "python", "manage.py", "bootstrap")

    say("==> the API as Cloud Run runs it: $PORT, read-only root, non-root, SIGTERM")
    port, metrics_port = free_port(), free_port()
    started = run.start(
        api,
        PORT=str(port),
        API_METRICS_PORT=str(metrics_port),
        GUNICORN_WORKERS="2",  # Terraform's: 2 workers x 4 threads per instance
        GUNICORN_THREADS="4",
    )
    base_url = f"http://127.0.0.1:{port}"
    figures["ready"] = wait_ready(run, api, f"{base_url}/readyz", started)
    say(f"    start (podman run) -> /readyz 200: {figures['ready']:.2f} s")
    run.assert_non_root(api)
    command = image_healthcheck(json.loads(run.podman.out("image", "inspect", IMAGE))[0])
    if run.podman.run("exec", api, *command, check=False).returncode != 0:
        raise CheckFailed(f"the image's HEALTHCHECK ({' '.join(command)}) failed")
    say(f"    HEALTHCHECK ({' '.join(command)}) -> 0")

    say("==> .github/scripts/smoke.sh (the deploy's smoke test)")
    smoke = subprocess.run(
        ["bash", str(REPO / ".github/scripts/smoke.sh")],
        env={
            **os.environ,
            "SMOKE_BASE_URL": base_url,
            "SMOKE_ATTEMPTS": "3",
            "SMOKE_RETRY_DELAY_SECONDS": "1",
            "SMOKE_MAX_TIME_SECONDS": "10",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    say("    " + smoke.stdout.strip().replace("\n", "\n    "))
    if smoke.returncode != 0:
        raise CheckFailed(f"smoke.sh failed ({smoke.returncode}): {smoke.stderr.strip()}")

    say("==> the subscriber (python manage.py run_subscriber) from the same image")
    sub_metrics = free_port()
    run.start(subscriber, "python", "manage.py", "run_subscriber", METRICS_PORT=str(sub_metrics))
    wait_for(f"{subscriber}'s metrics port", lambda: port_open(sub_metrics))
    run.assert_non_root(subscriber)
    record = {
        "id": f"container-check-{secrets.token_hex(6)}",
        "nombre": "Juana",
        "apellido": "Pérez",
        "pais": "Chile",
    }
    publish = subprocess.run(
        [sys.executable, "manage.py", "publish", "--data", json.dumps(record)],
        cwd=REPO,
        env={
            **os.environ,
            "DJANGO_ENV_FILE": os.devnull,
            "GCP_PROJECT": PROJECT,
            "PUBSUB_EMULATOR_HOST": run.pubsub,
            "BIGQUERY_EMULATOR_HOST": run.bigquery,
            "BIGQUERY_EMULATOR_GRPC_HOST": run.bigquery_grpc,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if publish.returncode != 0:
        raise CheckFailed(f"manage.py publish failed: {publish.stdout}{publish.stderr}")
    sub_url = f"http://127.0.0.1:{sub_metrics}"
    wait_for(
        "the subscriber to store the published record",
        lambda: metric_total(sub_url, "latam_ingest_messages_stored_total") >= 1,
    )
    status, body = http_get(f"{base_url}/records/{record['id']}")
    if status != 200 or json.loads(body) != record:
        raise CheckFailed(f"GET /records/<id> after ingestion: {status} {body[:300]!r}")
    say("    published 1 record -> stored by the subscriber -> GET /records/<id> 200, same record")

    say("==> SIGTERM")
    figures["stop_subscriber"] = run.stop(subscriber)
    figures["stop_api"] = run.stop(api)
    for name in (api, subscriber):
        run.scan_logs(name)
    say("    logs: no write refused, no permission error, no ERROR line")


def check_refuses_without_secret(run: Run) -> None:
    """Cheap negative: outside emulator mode, without DJANGO_SECRET_KEY, the API must not
    start (so no key hides in the image)."""
    name = f"latam-check-nosecret-{os.getpid()}"
    run.containers.append(name)
    result = run.podman.run(
        "run",
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/tmp",  # noqa: S108 - the container's /tmp
        "--network=none",
        "--no-healthcheck",
        "--pull=never",
        "--env=GUNICORN_WORKERS=1",
        "--env=API_METRICS_PORT=0",
        IMAGE,
        check=False,
        timeout=60,
    )
    output = result.stdout + result.stderr
    if result.returncode == 0 or "DJANGO_SECRET_KEY is required" not in output:
        raise CheckFailed(
            "without DJANGO_SECRET_KEY (and no emulator) the API must refuse to start; it "
            f"exited {result.returncode}:\n{output[-2000:]}"
        )
    say(f"    refused: exit {result.returncode}, 'DJANGO_SECRET_KEY is required' in its log")


def check(dockerfile: Path, state: Path, rebuild_base: bool) -> dict[str, float]:
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    figures: dict[str, float] = {}
    podman = Podman(state)
    podman.configure()
    # Whatever an interrupted run left behind.
    podman.run("rm", "--all", "--force", "--time", "0", check=False, timeout=120)

    say(f"==> base image {BASE_IMAGE}")
    if rebuild_base or not podman.image_exists(BASE_IMAGE):
        started = time.monotonic()
        build_base(podman, logs)
        figures["base"] = time.monotonic() - started
        say(f"    made in {figures['base']:.1f} s")
    else:
        say("    reused (--rebuild-base, or `make clean`, makes it again)")

    say(f"==> image {IMAGE}")
    figures["build"] = build_image(podman, dockerfile, logs)
    say(f"    built in {figures['build']:.1f} s")
    figures["size"] = check_image(podman)
    say(f"    size: {figures['size'] / 1e6:.0f} MB")

    stack = Stack(log_dir=logs / "emulators")
    run = Run(podman, logs, bigquery="127.0.0.1:9", pubsub="127.0.0.1:9")
    try:
        say("==> no DJANGO_SECRET_KEY, no emulator: the API must refuse to start")
        check_refuses_without_secret(run)
        say("==> emulators (bqemulator, Pub/Sub emulator) on free loopback ports")
        bq_port, bq_grpc_port, ps_port = free_port(), free_port(), free_port()
        stack.start_bigquery_emulator(
            project=PROJECT, rest_port=bq_port, grpc_port=bq_grpc_port, data_dir=None
        )
        stack.start_pubsub_emulator(port=ps_port)
        run.bigquery, run.pubsub = f"127.0.0.1:{bq_port}", f"127.0.0.1:{ps_port}"
        run.bigquery_grpc = f"127.0.0.1:{bq_grpc_port}"
        check_running(run, figures)
    except BaseException:
        run.dump_logs()
        raise
    finally:
        run.remove_all()
        stack.stop_all()
    # Dangling images older than a week: replaced builds, and cache layers no build used
    # lately (the builder stage's layers are dangling too: pruning them all would make
    # every build download the requirements again).
    podman.run("image", "prune", "--force", "--filter=until=168h", check=False, timeout=120)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dockerfile", type=Path, default=REPO / "docker" / "Dockerfile")
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(os.environ.get("CONTAINER_CHECK_STATE", REPO / ".stack" / "container")),
        help="podman storage, configuration and logs, kept between runs "
        "(default: .stack/container, or $CONTAINER_CHECK_STATE)",
    )
    parser.add_argument("--rebuild-base", action="store_true", help="debootstrap the base again")
    args = parser.parse_args()
    if os.geteuid() != 0:
        # Like terraform/check.sh without terraform: loud, not failed. CI runs as root.
        say(
            "==> container check: SKIPPED (needs root: debootstrap, and podman with the "
            "check's storage; CI runs it as root)"
        )
        return 0
    # `make` or CI stopping us: run the cleanups (containers, emulators) on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    try:
        preflight()
        state = args.state.resolve()
        with locked(state):
            figures = check(args.dockerfile.resolve(), state, args.rebuild_base)
    except (CheckFailed, StackError, subprocess.TimeoutExpired) as error:
        say(f"\nCONTAINER CHECK FAILED: {error}")
        return 1
    summary = [
        f"image {figures['size'] / 1e6:.0f} MB",
        *([f"base made in {figures['base']:.0f} s"] if "base" in figures else []),
        f"build {figures['build']:.0f} s",
        f"podman run -> /readyz 200 in {figures['ready']:.2f} s",
        f"SIGTERM -> exit 0 in {figures['stop_api']:.2f} s (API), "
        f"{figures['stop_subscriber']:.2f} s (subscriber)",
        f"total {time.monotonic() - started:.0f} s",
    ]
    say("\ncontainer check passed: " + "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
