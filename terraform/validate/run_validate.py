"""Run the real `terraform init -backend=false` and `terraform validate` offline.

The hashicorp/google provider is replaced by provider.py, a schema-only provider
(tfplugin6 over a unix socket) attached with TF_REATTACH_PROVIDERS: Terraform then
neither downloads nor looks up the provider, and `init` only installs the local
modules. Everything happens in a temporary copy of the tree (so no .terraform/ or
lock file is written into the repository), with an empty CLI configuration
(TF_CLI_CONFIG_FILE), no checkpoint calls and no inherited TF_* settings.

Before Terraform runs, every resource and data-source type of the tree must be in
google-schema.json: a type that is not fails here, loudly, with the command that
regenerates the file (Terraform itself would only say the provider does not
support it).

Usage (from the repository root):
    .venv/bin/python terraform/validate/run_validate.py [--dir DIR] [--require-terraform]
Exit status: 0 valid (or skipped: no terraform binary, unless --require-terraform),
1 invalid, 3 terraform missing with --require-terraform, 2 usage/setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TERRAFORM_DIR = HERE.parent
SCHEMA_FILE = HERE / "google-schema.json"
PROVIDER_ADDRESS = "registry.terraform.io/hashicorp/google"
TYPE_RE = re.compile(r'^\s*(resource|data)\s+"([A-Za-z0-9_-]+)"', re.MULTILINE)
# Not part of the Terraform configuration: never copied.
IGNORED = shutil.ignore_patterns(
    ".terraform",
    ".terraform.lock.hcl",
    "*.tfstate",
    "*.tfstate.*",
    "*.tfvars",
    "tests",
    "validate",
    "__pycache__",
)
SKIPPED = "SKIPPED: terraform validate (no terraform binary)"
PROVIDER_START_SECONDS = 30
TERRAFORM_SECONDS = 120


def banner(line: str) -> str:
    bar = "!" * len(line)
    return f"{bar}\n{line}\n{bar}"


def unknown_types(tree: Path, schema: dict) -> list[str]:
    provider = schema["provider_schemas"][PROVIDER_ADDRESS]
    known = {
        "resource": provider.get("resource_schemas", {}),
        "data": provider.get("data_source_schemas", {}),
    }
    problems = []
    for path in sorted(tree.rglob("*.tf")):
        for kind, name in TYPE_RE.findall(path.read_text(encoding="utf-8")):
            if name.startswith("google_") and name not in known[kind]:
                label = "resource type" if kind == "resource" else "data-source type"
                problems.append(f"{path.relative_to(tree)}: unknown {label} {name!r}")
    return problems


def start_provider(python: str, socket: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [python, str(HERE / "provider.py"), "--socket", str(socket)],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    if proc.stdout is None:
        raise RuntimeError("no pipe to the provider")
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    line = b""
    if selector.select(timeout=PROVIDER_START_SECONDS):
        line = proc.stdout.readline()
    selector.close()
    if not line.strip():
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the schema-only provider did not start:\n{log.read_text()}")
    json.loads(line)  # the TF_REATTACH_PROVIDERS value
    return proc, line.decode().strip()


def terraform_env(reattach: str, cli_config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "CHECKPOINT_"))}
    env.update(
        TF_REATTACH_PROVIDERS=reattach,
        TF_CLI_CONFIG_FILE=str(cli_config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
    )
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TERRAFORM_SECONDS,
        check=False,
    )


def validate(terraform: str, source: Path, schema_file: Path) -> int:
    started = time.monotonic()
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    problems = unknown_types(source, schema)
    if problems:
        print("terraform validate: FAILED", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print(
            f"  {schema_file.name} holds only the google types this project uses: if the type "
            "is real, regenerate it with\n"
            "  .venv/bin/python terraform/validate/extract_schema.py",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory(prefix="tf-validate-") as tmp:
        work = Path(tmp)
        tree = work / "terraform"
        shutil.copytree(source, tree, ignore=IGNORED)
        cli_config = work / "terraformrc"
        cli_config.write_text("# empty: no plugin cache, no mirrors, no credentials\n")
        proc, reattach = start_provider(
            sys.executable, work / "provider.sock", work / "provider.log"
        )
        try:
            env = terraform_env(reattach, cli_config)
            steps = [
                [terraform, "init", "-backend=false", "-input=false", "-no-color"],
                [terraform, "validate", "-no-color"],
            ]
            for cmd in steps:
                result = run(cmd, tree, env)
                if result.returncode != 0:
                    print(f"terraform validate: FAILED ({' '.join(cmd[1:])})", file=sys.stderr)
                    sys.stderr.write(result.stdout + result.stderr)
                    log = (work / "provider.log").read_text(errors="replace").strip()
                    if log:
                        print(f"schema-only provider's log:\n{log}", file=sys.stderr)
                    return 1
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    version = schema.get("x_source", {}).get("provider_version", "?")
    print(
        f"terraform validate: ok (hashicorp/google {version} schema, offline, "
        f"{time.monotonic() - started:.1f}s)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=TERRAFORM_DIR, help="the tree to validate")
    parser.add_argument("--schema", type=Path, default=SCHEMA_FILE)
    parser.add_argument(
        "--require-terraform",
        action="store_true",
        help="exit 3 instead of skipping when there is no terraform binary",
    )
    args = parser.parse_args(argv)
    terraform = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not terraform:
        if args.require_terraform:
            print(
                "terraform is required: no `terraform` on PATH (nor $TERRAFORM); "
                "install Terraform >= 1.6 to run terraform validate",
                file=sys.stderr,
            )
            return 3
        print(banner(SKIPPED))
        return 0
    if not (args.dir / "versions.tf").is_file():
        print(f"{args.dir}: not a Terraform root (no versions.tf)", file=sys.stderr)
        return 2
    return validate(terraform, args.dir.resolve(), args.schema)


if __name__ == "__main__":
    sys.exit(main())
