"""The release path: .github/workflows/deploy.yml against the trust rules of
terraform/modules/ci, and .github/scripts/smoke_pipeline.sh run against a fake gcloud and
a local HTTP server. Offline: no GitHub, no Google Cloud."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

from records.entities import record_from_mapping

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SMOKE_PIPELINE = REPO_ROOT / ".github" / "scripts" / "smoke_pipeline.sh"
CI_MODULE = REPO_ROOT / "terraform" / "modules" / "ci"


def workflow(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return workflow("deploy.yml")


@pytest.fixture(scope="module")
def ci_defaults() -> dict[str, str]:
    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    with (CI_MODULE / "variables.tf").open(encoding="utf-8") as handle:
        tree = hcl2.load(handle, serialization_options=options)
    return {
        name: body["default"]
        for block in tree["variable"]
        for name, body in block.items()
        if "default" in body
    }


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action)]


# --- deploy.yml -------------------------------------------------------------------------


def test_only_a_commit_that_passed_ci_and_security_in_the_same_run_is_built(deploy) -> None:
    jobs = deploy["jobs"]

    assert deploy["on"]["push"]["branches"] == ["main"]
    # Same run, same commit: a local reusable workflow is called at the caller's commit.
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["security"]["uses"] == "./.github/workflows/security.yml"
    assert set(jobs["build"]["needs"]) == {"ci", "security"}
    assert jobs["deploy"]["needs"] == "build"
    for called in ("ci.yml", "security.yml"):
        triggers = workflow(called)["on"]
        assert "workflow_call" in triggers, called
        assert "push" not in triggers, f"{called} runs on main inside deploy.yml, not twice"


@pytest.mark.parametrize("job", ["ci", "security"])
def test_called_workflows_get_the_permissions_their_jobs_ask_for(deploy, job: str) -> None:
    """A nested job asking for more than its caller job grants fails before it starts."""
    level = {"none": 0, "read": 1, "write": 2}
    granted = deploy["jobs"][job].get("permissions", {})
    called = workflow(deploy["jobs"][job]["uses"].removeprefix("./.github/workflows/"))
    asked: dict[str, str] = {}
    for scope in [called.get("permissions") or {}] + [
        j.get("permissions") or {} for j in called["jobs"].values()
    ]:
        for name, value in scope.items():
            if level[value] > level[asked.get(name, "none")]:
                asked[name] = value

    short = {n: v for n, v in asked.items() if level[v] > level[granted.get(n, "none")]}
    assert not short, f"{job}: deploy.yml grants too little: {short}"


def test_build_pushes_as_the_pusher_and_deploy_runs_as_the_deployer(
    deploy, ci_defaults: dict
) -> None:
    build, release = deploy["jobs"]["build"], deploy["jobs"]["deploy"]
    build_auth = steps_using(build, "google-github-actions/auth@")
    deploy_auth = steps_using(release, "google-github-actions/auth@")

    assert [s["with"]["service_account"] for s in build_auth] == ["${{ vars.GCP_PUSHER_SA }}"]
    assert deploy_auth
    assert {s["with"]["service_account"] for s in deploy_auth} == {"${{ vars.GCP_DEPLOYER_SA }}"}
    assert "environment" not in build, "the pusher's subject is the branch ref"
    assert release["environment"]["name"] == ci_defaults["deploy_environment"] == "production"
    with_id_token = {
        name for name, job in deploy["jobs"].items() if "id-token" in job.get("permissions", {})
    }
    assert with_id_token == {"build", "deploy"}
    # The trust rule names this file on this branch (job_workflow_ref).
    assert (REPO_ROOT / ci_defaults["deploy_workflow_path"]).resolve() == (WORKFLOWS / "deploy.yml")
    assert ci_defaults["deploy_branch"] == "main"


def test_rollback_covers_the_deploy_steps_and_the_smoke_tests(deploy) -> None:
    steps = deploy["jobs"]["deploy"]["steps"]
    names = [s["name"] for s in steps]
    rollback = steps[names.index("Roll back")]
    previous = next(s for s in steps if s.get("id") == "previous")

    assert names[-1] == "Roll back"
    assert rollback["if"] == "failure() && steps.previous.outcome == 'success'"
    # Everything that changes or checks production runs after the rollback targets are
    # recorded, in the job the rollback belongs to.
    changing = [n for n in names if n.startswith(("Deploy", "Smoke"))]
    assert changing == [
        "Deploy API",
        "Deploy subscriber",
        "Smoke test (API)",
        "Smoke test (subscriber -> BigQuery -> API)",
    ]
    assert all(names.index(previous["name"]) < names.index(n) for n in changing)


def test_the_pipeline_smoke_test_gets_what_it_needs(deploy) -> None:
    step = next(
        s for s in deploy["jobs"]["deploy"]["steps"] if "smoke_pipeline.sh" in s.get("run", "")
    )

    assert step["run"] == "bash .github/scripts/smoke_pipeline.sh"
    assert {"SMOKE_BASE_URL", "SMOKE_ID_TOKEN", "SMOKE_PROJECT", "SMOKE_TOPIC"} <= set(step["env"])
    assert "github.sha" in step["env"]["SMOKE_RECORD_ID"]


# --- smoke_pipeline.sh ------------------------------------------------------------------


@dataclass
class FakeApi:
    """GET /records/<id>: 404 for the first `misses` reads, then the stored record."""

    record: dict[str, str] | None = None
    misses: int = 0
    requests: list[tuple[str, str | None]] = field(default_factory=list)


@pytest.fixture
def api() -> Iterator[tuple[FakeApi, str]]:
    state = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("Authorization")))
            found = (
                state.record is not None
                and self.path == f"/records/{state.record['id']}"
                and len(state.requests) > state.misses
            )
            body = json.dumps(state.record if found else {"error": "Registro no encontrado"})
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fake_gcloud(tmp_path: Path, exit_code: int = 0) -> tuple[Path, Path]:
    """A gcloud that records its arguments (one per line) and prints a message id."""
    calls = tmp_path / "gcloud-args"
    script = tmp_path / "gcloud"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$@" > "{calls}"\n'
        f'if [[ {exit_code} -ne 0 ]]; then echo "PERMISSION_DENIED" >&2; exit {exit_code}; fi\n'
        'echo "1234567890"\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, calls


def run_smoke(gcloud: Path, base_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SMOKE_PIPELINE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "GCLOUD": str(gcloud),
            "SMOKE_BASE_URL": base_url,
            "SMOKE_PROJECT": "latam-prod",
            "SMOKE_TOPIC": "data-ingest-topic",
            "SMOKE_RECORD_ID": "smoke-abc123-42-1",
            "SMOKE_ID_TOKEN": "secret-id-token",
            "SMOKE_POLL_SECONDS": "0",
            **env,
        },
    )


def published(calls: Path) -> tuple[list[str], dict[str, str]]:
    args = calls.read_text(encoding="utf-8").splitlines()
    return args, json.loads(args[args.index("--message") + 1])


def test_pipeline_smoke_publishes_a_valid_record_and_waits_until_the_api_serves_it(
    tmp_path: Path, api
) -> None:
    state, base_url = api
    gcloud, calls = fake_gcloud(tmp_path)
    state.record = {
        "id": "smoke-abc123-42-1",
        "nombre": "Smoke",
        "apellido": "Deploy",
        "pais": "Chile",
    }
    state.misses = 2

    result = run_smoke(gcloud, base_url + "/")
    args, message = published(calls)

    assert result.returncode == 0, result.stdout + result.stderr
    assert args[:4] == ["pubsub", "topics", "publish", "data-ingest-topic"]
    assert args[args.index("--project") + 1] == "latam-prod"
    assert message == state.record
    # What the subscriber will accept (the shared Record rules).
    assert record_from_mapping(message).as_dict() == message
    assert [path for path, _ in state.requests] == ["/records/smoke-abc123-42-1"] * 3
    assert {auth for _, auth in state.requests} == {"Bearer secret-id-token"}
    assert "secret-id-token" not in result.stdout + result.stderr
    assert "PASS" in result.stdout


def test_pipeline_smoke_fails_when_the_record_never_arrives(tmp_path: Path, api) -> None:
    state, base_url = api
    gcloud, _ = fake_gcloud(tmp_path)

    result = run_smoke(gcloud, base_url, SMOKE_PIPELINE_TIMEOUT_SECONDS="1")

    assert result.returncode == 1
    assert "FAIL  pipeline" in result.stdout
    assert "not stored yet (404)" in result.stdout
    assert state.requests


def test_pipeline_smoke_fails_when_publishing_fails(tmp_path: Path, api) -> None:
    state, base_url = api
    gcloud, _ = fake_gcloud(tmp_path, exit_code=1)

    result = run_smoke(gcloud, base_url)

    assert result.returncode == 1
    assert "FAIL  publish: PERMISSION_DENIED" in result.stdout
    assert not state.requests


@pytest.mark.parametrize("record_id", ["a/b", "x" * 129, "id with space", "é", "../x?y"])
def test_pipeline_smoke_refuses_an_id_that_is_not_its_own_url(
    tmp_path: Path, api, record_id: str
) -> None:
    _, base_url = api
    gcloud, calls = fake_gcloud(tmp_path)

    result = run_smoke(gcloud, base_url, SMOKE_RECORD_ID=record_id)

    assert result.returncode == 2
    assert not calls.exists()


def test_pipeline_smoke_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")

    result = subprocess.run(
        [shellcheck, str(SMOKE_PIPELINE)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
