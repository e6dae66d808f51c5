"""The real `terraform validate`, offline (terraform/validate/run_validate.py with the
schema-only google provider), accepts today's tree and refuses broken copies of it.

Tests marked `terraform_validate` need the terraform binary. `make test` runs them
through terraform/check.sh, the script that also validates the tree, and which
prints a loud `SKIPPED: terraform validate (no terraform binary)` when there is no
terraform (its pytest run deselects them). Run directly (`pytest terraform/tests`)
on a machine without terraform they fail, saying terraform is required. The other
tests (the skip line, the provider's gRPC answers) need no terraform and always run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import msgpack
import pytest

TERRAFORM_DIR = Path(__file__).resolve().parents[1]
VALIDATE_DIR = TERRAFORM_DIR / "validate"
RUNNER = VALIDATE_DIR / "run_validate.py"
needs_terraform = pytest.mark.terraform_validate


def validate(tree: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(RUNNER), "--dir", str(tree), "--require-terraform"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if result.returncode == 3:
        pytest.fail(f"terraform is required for this test: {result.stderr.strip()}")
    return result


def refused(tree: Path, *needles: str) -> str:
    result = validate(tree)
    output = result.stdout + result.stderr
    assert result.returncode == 1, f"validate accepted a broken tree:\n{output}"
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"
    return output


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of terraform/ (the configuration only) to break."""
    copy = tmp_path / "terraform"
    shutil.copytree(
        TERRAFORM_DIR,
        copy,
        ignore=shutil.ignore_patterns(".terraform", "tests", "validate", "__pycache__"),
    )
    return copy


# --- the tree as it is ------------------------------------------------------------------


@needs_terraform
def test_the_tree_is_valid(tree: Path) -> None:
    result = validate(tree)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "terraform validate: ok" in result.stdout


# --- (a) resource arguments -------------------------------------------------------------


@needs_terraform
def test_unknown_resource_argument_is_refused(tree: Path) -> None:
    main = tree / "modules/pubsub/main.tf"
    edit(main, "  retain_acked_messages      = false\n", "  retain_acked_msgs = false\n")

    refused(tree, 'An argument named "retain_acked_msgs" is not expected here', "pubsub/main.tf")


@needs_terraform
def test_missing_required_argument_is_refused(tree: Path) -> None:
    edit(tree / "modules/pubsub/main.tf", "  topic   = google_pubsub_topic.ingest.id\n", "")

    refused(tree, 'The argument "topic" is required')


@needs_terraform
def test_wrongly_typed_argument_is_refused(tree: Path) -> None:
    edit(
        tree / "modules/pubsub/main.tf",
        "  retain_acked_messages      = false\n",
        '  retain_acked_messages      = ["no"]\n',
    )

    refused(tree, "Incorrect attribute value type")


@needs_terraform
def test_computed_only_attribute_is_refused(tree: Path) -> None:
    # Core lets this through; the provider refuses it (as the real SDK does).
    edit(
        tree / "modules/pubsub/main.tf",
        "  retain_acked_messages      = false\n",
        "  retain_acked_messages      = false\n  terraform_labels = var.labels\n",
    )

    refused(tree, "Value for unconfigurable attribute", "terraform_labels = var.labels")


# --- (b) blocks -------------------------------------------------------------------------


@needs_terraform
def test_unknown_block_is_refused(tree: Path) -> None:
    edit(tree / "modules/pubsub/main.tf", "  retry_policy {\n", "  retry_settings {\n")

    refused(tree, 'Blocks of type "retry_settings" are not expected here')


@needs_terraform
def test_wrongly_nested_block_is_refused(tree: Path) -> None:
    main = tree / "modules/pubsub/main.tf"
    # retry_policy moved inside dead_letter_policy.
    edit(
        main,
        "  retry_policy {\n"
        "    minimum_backoff = var.retry_minimum_backoff\n"
        "    maximum_backoff = var.retry_maximum_backoff\n"
        "  }\n",
        "",
    )
    edit(
        main,
        "    max_delivery_attempts = var.max_delivery_attempts\n",
        "    max_delivery_attempts = var.max_delivery_attempts\n"
        "    retry_policy {\n"
        '      minimum_backoff = "10s"\n'
        "    }\n",
    )

    refused(tree, 'Blocks of type "retry_policy" are not expected here')


@needs_terraform
def test_too_many_blocks_are_refused(tree: Path) -> None:
    # dead_letter_policy has max_items = 1 in the provider's schema.
    edit(
        tree / "modules/pubsub/main.tf",
        "  dead_letter_policy {\n",
        "  dead_letter_policy {\n    max_delivery_attempts = 5\n  }\n  dead_letter_policy {\n",
    )

    refused(tree, "Too many dead_letter_policy blocks")


@needs_terraform
def test_block_given_as_an_attribute_is_refused(tree: Path) -> None:
    edit(tree / "modules/pubsub/main.tf", "  retry_policy {\n", "  retry_policy = {\n")

    refused(tree, 'An argument named "retry_policy" is not expected here')


# --- (c) module inputs ------------------------------------------------------------------


@needs_terraform
def test_undeclared_module_input_is_refused(tree: Path) -> None:
    edit(
        tree / "main.tf",
        "  labels                         = var.labels\n\n  depends_on",
        "  labels                         = var.labels\n  retention_days = 7\n\n  depends_on",
    )

    refused(tree, 'An argument named "retention_days" is not expected here', 'module "pubsub"')


@needs_terraform
def test_missing_module_input_is_refused(tree: Path) -> None:
    edit(tree / "main.tf", "  topic_name                     = var.pubsub_topic\n", "")

    refused(tree, 'The argument "topic_name" is required')


# --- (d) references ---------------------------------------------------------------------


@needs_terraform
def test_reference_to_undeclared_resource_is_refused(tree: Path) -> None:
    edit(
        tree / "modules/pubsub/main.tf",
        "  topic   = google_pubsub_topic.ingest.id\n",
        "  topic   = google_pubsub_topic.ingset.id\n",
    )

    refused(tree, "Reference to undeclared resource", "ingset")


@needs_terraform
def test_reference_to_unknown_attribute_is_refused(tree: Path) -> None:
    edit(
        tree / "modules/pubsub/main.tf",
        "  topic   = google_pubsub_topic.ingest.id\n",
        "  topic   = google_pubsub_topic.ingest.topic_id\n",
    )

    refused(tree, "Unsupported attribute", "topic_id")


@needs_terraform
def test_reference_to_undeclared_module_output_is_refused(tree: Path) -> None:
    edit(
        tree / "main.tf",
        "    BIGQUERY_TABLE                  = module.bigquery.table_id\n",
        "    BIGQUERY_TABLE                  = module.bigquery.table_name\n",
    )

    refused(tree, "Unsupported attribute", "table_name")


# --- variables.tf: the RE2 repeat-count defect ------------------------------------------


@needs_terraform
def test_regex_repeat_count_over_1000_is_refused(tree: Path) -> None:
    # The defect once in variables.tf: RE2 refuses {1,1024}, can() turns the error
    # into false, and the rule fails for every value, the default included.
    edit(
        tree / "variables.tf",
        'length(var.bigquery_dataset) <= 1024 && can(regex("^[A-Za-z0-9_]+$", '
        "var.bigquery_dataset))",
        'can(regex("^[A-Za-z0-9_]{1,1024}$", var.bigquery_dataset))',
    )

    refused(tree, "Invalid value for variable", 'variable "bigquery_dataset"')


# --- types missing from google-schema.json ----------------------------------------------


@needs_terraform
def test_type_missing_from_the_schema_file_fails_loudly(tree: Path) -> None:
    with (tree / "main.tf").open("a", encoding="utf-8") as handle:
        handle.write('\nresource "google_pubsub_schema" "extra" {\n  name = "x"\n}\n')

    refused(tree, "unknown resource type 'google_pubsub_schema'", "extract_schema.py")


# --- without terraform (no binary needed) ----------------------------------------------


def test_without_terraform_the_check_says_skipped_loudly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TERRAFORM"}
    env["PATH"] = str(tmp_path)  # no terraform here
    run = [sys.executable, str(RUNNER)]

    skipped = subprocess.run(run, env=env, capture_output=True, text=True, check=False)
    required = subprocess.run(
        [*run, "--require-terraform"], env=env, capture_output=True, text=True, check=False
    )

    assert skipped.returncode == 0
    assert "SKIPPED: terraform validate (no terraform binary)" in skipped.stdout.splitlines()
    assert required.returncode == 3
    assert "terraform is required" in required.stderr


# --- the schema-only provider over gRPC (no binary needed) ------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    socket = tmp_path_factory.mktemp("provider") / "p.sock"
    proc = subprocess.Popen(
        [sys.executable, str(VALIDATE_DIR / "provider.py"), "--socket", str(socket)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        reattach = json.loads(proc.stdout.readline())
        addr = reattach["registry.terraform.io/hashicorp/google"]["Addr"]["String"]
        with grpc.insecure_channel(f"unix:{addr}") as channel:
            yield channel
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def call(channel: grpc.Channel, method: str, request, response_type):
    rpc = channel.unary_unary(
        f"/tfplugin6.Provider/{method}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=response_type.FromString,
    )
    return rpc(request, timeout=10)


@pytest.fixture(scope="module")
def pb():
    sys.path.insert(0, str(VALIDATE_DIR))
    try:
        import tfplugin6_pb2
    finally:
        sys.path.remove(str(VALIDATE_DIR))
    return tfplugin6_pb2


def test_provider_serves_the_schema_of_every_type_used(provider: grpc.Channel, pb) -> None:
    schema = call(
        provider, "GetProviderSchema", pb.GetProviderSchema.Request(), pb.GetProviderSchema.Response
    )
    used = json.loads((VALIDATE_DIR / "google-schema.json").read_text())
    expected = used["provider_schemas"]["registry.terraform.io/hashicorp/google"]

    assert set(schema.resource_schemas) == set(expected["resource_schemas"])
    assert set(schema.data_source_schemas) == {"google_project"}
    subscription = schema.resource_schemas["google_pubsub_subscription"].block
    attrs = {a.name: a for a in subscription.attributes}
    blocks = {b.type_name: b for b in subscription.block_types}
    assert attrs["topic"].required
    assert json.loads(attrs["labels"].type) == ["map", "string"]
    assert blocks["dead_letter_policy"].nesting == pb.Schema.NestedBlock.LIST
    assert blocks["dead_letter_policy"].max_items == 1
    assert {a.name for a in schema.provider.block.attributes} >= {"project", "region"}


def test_provider_refuses_computed_only_values(provider: grpc.Channel, pb) -> None:
    config = {"name": "t", "effective_labels": {"a": "b"}, "labels": None}
    response = call(
        provider,
        "ValidateResourceConfig",
        pb.ValidateResourceConfig.Request(
            type_name="google_pubsub_topic",
            config=pb.DynamicValue(msgpack=msgpack.packb(config)),
        ),
        pb.ValidateResourceConfig.Response,
    )

    [diagnostic] = response.diagnostics
    assert diagnostic.severity == pb.Diagnostic.ERROR
    assert '"effective_labels"' in diagnostic.detail
    assert diagnostic.attribute.steps[0].attribute_name == "effective_labels"
