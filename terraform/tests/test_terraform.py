"""Static checks of the Terraform code: parse every file with python-hcl2 and
assert the properties the platform depends on (dead-lettering, least privilege,
private-by-default, alerting, schema, keyless CI). Runs offline: no provider,
no `terraform init`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

TERRAFORM_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TERRAFORM_DIR.parent
RUNBOOKS_DIR = REPO_ROOT / "docs" / "runbooks"
HCL_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False)

TF_FILES = sorted(p for p in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in p.parts)

PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
# The subscriber's one BigQuery role: a custom role holding exactly this permission.
TABLE_WRITER_ROLE = "${google_project_iam_custom_role.records_table_writer.name}"
TABLE_WRITER_PERMISSIONS = ["bigquery.tables.updateData"]
# Every role any identity may be granted through IAM, anywhere in this code (dataset
# ACLs, in `access` blocks, are checked by the BigQuery tests).
ALLOWED_ROLES = {
    "roles/bigquery.dataViewer",
    "roles/bigquery.jobUser",
    TABLE_WRITER_ROLE,
    "roles/pubsub.publisher",
    "roles/pubsub.subscriber",
    "roles/secretmanager.secretAccessor",
    "roles/artifactregistry.writer",
    "roles/run.developer",
    "roles/run.invoker",
    "roles/iam.serviceAccountUser",
    "roles/iam.serviceAccountTokenCreator",
    "roles/iam.workloadIdentityUser",
    "roles/monitoring.metricWriter",
}
# Roles that may be bound at project level, and the only accounts that may hold each:
# BigQuery query/copy jobs live in a project (the API's queries, the DR copy), and so do
# metrics (the subscriber's collector sidecar writes its Prometheus metrics).
PROJECT_LEVEL_GRANTS = {
    "roles/bigquery.jobUser": {
        "serviceAccount:${google_service_account.api.email}",
        "serviceAccount:${google_service_account.dr_copy[0].email}",
    },
    "roles/monitoring.metricWriter": {"serviceAccount:${google_service_account.subscriber.email}"},
}
# The GitHub repository the WIF tests plug in for var.github_repository.
GITHUB_REPOSITORY = "example-org/latam"
GITHUB_REPOSITORY_ID = "123456789"
DESIGN_ENV = {
    "GCP_PROJECT",
    "BIGQUERY_DATASET",
    "BIGQUERY_TABLE",
    "PUBSUB_TOPIC",
    "PUBSUB_SUBSCRIPTION",
    "PUBSUB_DEAD_LETTER_TOPIC",
    "PUBSUB_DEAD_LETTER_SUBSCRIPTION",
    "DJANGO_ALLOWED_HOSTS",
}


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    body: dict[str, Any]
    path: Path

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"


def hcl_load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=HCL_OPTIONS)


def entries(block: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Key/value pairs of a parsed block, without python-hcl2's comment entries."""
    return ((k, v) for k, v in block.items() if k != "__comments__")


def first(value: Any) -> Any:
    """Blocks parse as lists of dicts; most appear once."""
    return value[0] if isinstance(value, list) and value else value


def strings_in(value: Any) -> Iterator[str]:
    """Every string value below `value`, comments excluded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "__comments__":
                yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def comments_in(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "__comments__":
                yield from (c.get("value", "") for c in item)
            else:
                yield from comments_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from comments_in(item)


@pytest.fixture(scope="module")
def parsed() -> dict[Path, dict[str, Any]]:
    return {path: hcl_load(path) for path in TF_FILES}


@pytest.fixture(scope="module")
def resources(parsed: dict[Path, dict[str, Any]]) -> list[Resource]:
    found = []
    for path, tree in parsed.items():
        for block in tree.get("resource", []):
            for rtype, named in entries(block):
                for name, body in entries(named):
                    found.append(Resource(rtype, name, body, path))
    return found


@pytest.fixture(scope="module")
def locals_by_dir(parsed: dict[Path, dict[str, Any]]) -> dict[Path, dict[str, Any]]:
    merged: dict[Path, dict[str, Any]] = {}
    for path, tree in parsed.items():
        for block in tree.get("locals", []):
            merged.setdefault(path.parent, {}).update(block)
    return merged


@pytest.fixture(scope="module")
def root_variables(parsed: dict[Path, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    tree = parsed[TERRAFORM_DIR / "variables.tf"]
    return {name: body for block in tree.get("variable", []) for name, body in entries(block)}


@pytest.fixture(scope="module")
def variables_by_dir(parsed: dict[Path, dict[str, Any]]) -> dict[Path, dict[str, dict]]:
    merged: dict[Path, dict[str, dict]] = {}
    for path, tree in parsed.items():
        for block in tree.get("variable", []):
            for name, body in entries(block):
                merged.setdefault(path.parent, {})[name] = body
    return merged


def of_type(resources: list[Resource], rtype: str) -> list[Resource]:
    return [r for r in resources if r.type == rtype]


def the(resources: list[Resource], rtype: str, name: str) -> Resource:
    matches = [r for r in resources if r.type == rtype and r.name == name]
    assert len(matches) == 1, f"expected exactly one {rtype}.{name}, found {len(matches)}"
    return matches[0]


def resolve_locals(text: str, local_values: dict[str, Any]) -> str:
    """Inline `${local.x}` string locals (enough to read monitoring filters)."""
    for _ in range(10):
        replaced = re.sub(
            r"\$\{local\.(\w+)\}",
            lambda m: str(local_values.get(m.group(1), m.group(0))),
            text,
        )
        if replaced == text:
            return replaced
        text = replaced
    return text


# --- structure ------------------------------------------------------------------


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM_DIR)))
def test_every_tf_file_parses(path: Path) -> None:
    tree = hcl_load(path)

    assert isinstance(tree, dict)
    assert tree, f"{path} parsed to nothing"


def test_layout_has_root_files_and_modules_per_concern() -> None:
    root_files = {p.name for p in TERRAFORM_DIR.glob("*.tf")}
    modules = {p.parent.name for p in TERRAFORM_DIR.glob("modules/*/main.tf")}

    assert {"versions.tf", "variables.tf", "outputs.tf", "main.tf"} <= root_files
    assert {"pubsub", "bigquery", "run", "iam", "monitoring", "ci"} <= modules


def test_providers_are_pinned_and_backend_is_partial_gcs(parsed: dict) -> None:
    terraform = first(parsed[TERRAFORM_DIR / "versions.tf"]["terraform"])
    google = first(terraform["required_providers"])["google"]
    backend = first(terraform["backend"])

    assert terraform["required_version"] == ">= 1.6"
    assert google["source"] == "hashicorp/google"
    assert re.fullmatch(r"~> \d+\.\d+", google["version"]), google["version"]
    assert "gcs" in backend
    assert "bucket" not in first(backend["gcs"]), "the state bucket is passed at init"


def test_every_variable_has_a_description(parsed: dict) -> None:
    missing = [
        f"{path.relative_to(TERRAFORM_DIR)}:{name}"
        for path, tree in parsed.items()
        for block in tree.get("variable", [])
        for name, body in entries(block)
        if not body.get("description")
    ]

    assert not missing


def test_tfvars_example_sets_every_root_variable(root_variables: dict) -> None:
    example = hcl_load(TERRAFORM_DIR / "terraform.tfvars.example")

    assert {k for k, _ in entries(example)} == set(root_variables)


def test_required_services_never_disabled_on_destroy(resources: list[Resource]) -> None:
    services = of_type(resources, "google_project_service")

    assert services
    assert all(s.body.get("disable_on_destroy") is False for s in services)


# --- Pub/Sub --------------------------------------------------------------------


def ingest_subscription(resources: list[Resource]) -> Resource:
    with_dlq = [
        r
        for r in of_type(resources, "google_pubsub_subscription")
        if "dead_letter_policy" in r.body
    ]
    assert len(with_dlq) == 1, "exactly one subscription carries the dead-letter policy"
    return with_dlq[0]


def test_subscription_has_dead_letter_and_exponential_retry(
    resources: list[Resource], root_variables: dict
) -> None:
    subscription = ingest_subscription(resources)
    policy = first(subscription.body["dead_letter_policy"])
    retry = first(subscription.body["retry_policy"])

    assert policy["dead_letter_topic"].startswith("${google_pubsub_topic.")
    assert "max_delivery_attempts" in policy
    assert retry["minimum_backoff"] and retry["maximum_backoff"]
    assert first(subscription.body["expiration_policy"])["ttl"] == ""
    assert root_variables["pubsub_max_delivery_attempts"]["default"] == 5
    assert root_variables["pubsub_ack_deadline_seconds"]["default"] == 60


def test_dead_letter_subscription_never_expires_and_keeps_messages(
    resources: list[Resource], root_variables: dict
) -> None:
    subscription = ingest_subscription(resources)
    dl_topic = first(subscription.body["dead_letter_policy"])["dead_letter_topic"]
    dl_topic_ref = dl_topic.removesuffix(".id}").removeprefix("${")
    dl_subscriptions = [
        r
        for r in of_type(resources, "google_pubsub_subscription")
        if dl_topic_ref in r.body.get("topic", "")
    ]

    assert len(dl_subscriptions) == 1
    body = dl_subscriptions[0].body
    assert first(body["expiration_policy"])["ttl"] == ""
    assert body["retain_acked_messages"] is True
    assert root_variables["pubsub_dead_letter_retention"]["default"] == "604800s"


def test_pubsub_service_agent_can_dead_letter(
    resources: list[Resource], locals_by_dir: dict
) -> None:
    subscription = ingest_subscription(resources)
    dl_topic_name = re.search(
        r"google_pubsub_topic\.(\w+)\.",
        first(subscription.body["dead_letter_policy"])["dead_letter_topic"],
    ).group(1)
    agent = re.compile(r"^serviceAccount:service-.+@gcp-sa-pubsub\.iam\.gserviceaccount\.com$")
    local_values = locals_by_dir.get(subscription.path.parent, {})

    def agent_grants(rtype: str, role: str, target: str) -> list[Resource]:
        return [
            r
            for r in of_type(resources, rtype)
            if r.body["role"] == role
            and agent.match(resolve_locals(r.body["member"], local_values))
            and target in str(r.body.get("topic", r.body.get("subscription")))
        ]

    publisher = agent_grants(
        "google_pubsub_topic_iam_member",
        "roles/pubsub.publisher",
        f"google_pubsub_topic.{dl_topic_name}.",
    )
    subscriber = agent_grants(
        "google_pubsub_subscription_iam_member",
        "roles/pubsub.subscriber",
        f"google_pubsub_subscription.{subscription.name}.",
    )

    assert publisher, "Pub/Sub service agent needs publisher on the dead-letter topic"
    assert subscriber, "Pub/Sub service agent needs subscriber on the source subscription"
    comments = " ".join(comments_in(hcl_load(subscription.path)))
    assert "silently" in comments, "explain why the grants exist next to them"


# --- BigQuery -------------------------------------------------------------------


def test_records_table_schema_clustering_and_protection(resources: list[Resource]) -> None:
    tables = of_type(resources, "google_bigquery_table")
    assert len(tables) == 1
    table = tables[0]
    schema_file = re.search(r"path\.module\}/([^\"\\]+)", table.body["schema"]).group(1)
    schema = json.loads((table.path.parent / schema_file).read_text(encoding="utf-8"))
    columns = {c["name"]: (c["type"], c.get("mode", "NULLABLE")) for c in schema}

    assert table.body["clustering"] == ["id"]
    assert table.body["deletion_protection"] is True
    for name in ("id", "nombre", "apellido", "pais"):
        assert columns[name] == ("STRING", "REQUIRED"), name
    assert columns["message_id"] == ("STRING", "NULLABLE")
    assert columns["published_at"] == ("TIMESTAMP", "REQUIRED")
    assert columns["ingested_at"] == ("TIMESTAMP", "REQUIRED")
    assert set(columns) == {
        "id",
        "nombre",
        "apellido",
        "pais",
        "message_id",
        "published_at",
        "ingested_at",
    }


def test_disaster_recovery_copy_is_optional_cross_region(resources: list[Resource]) -> None:
    transfers = of_type(resources, "google_bigquery_data_transfer_config")

    assert len(transfers) == 1
    assert transfers[0].body["data_source_id"] == "cross_region_copy"
    assert "dr_enabled" in transfers[0].body["count"]


def dataset_access(dataset: Resource) -> list[dict[str, Any]]:
    """The dataset's ACL entries, static and dynamic (the latter's content)."""
    static = list(dataset.body.get("access", []))
    dynamic = [
        {**first(d["access"]["content"]), "for_each": d["access"]["for_each"]}
        for d in dataset.body.get("dynamic", [])
        if "access" in d
    ]
    return static + dynamic


def test_datasets_declare_a_closed_acl(resources: list[Resource]) -> None:
    datasets = of_type(resources, "google_bigquery_dataset")

    assert {d.name for d in datasets} == {"main", "replica"}
    for dataset in datasets:
        access = dataset_access(dataset)
        assert access, f"{dataset.name}: an ACL left to BigQuery's defaults lets project readers in"
        groups = {a.get("special_group") for a in access} - {None}
        assert groups == {"projectOwners"}, f"{dataset.name}: {groups}"
        assert all(a["role"] in {"OWNER", "READER", "WRITER"} for a in access), (
            "legacy role names: what the API returns (no perpetual diff)"
        )
    assert not [
        r
        for r in resources
        if r.type.startswith("google_bigquery_dataset_iam")
        or r.type == "google_bigquery_dataset_access"
    ], "they would fight the authoritative access blocks"


def test_dataset_readers_are_only_the_dr_copy(resources: list[Resource]) -> None:
    main = the(resources, "google_bigquery_dataset", "main")
    replica = the(resources, "google_bigquery_dataset", "replica")
    grantees = {
        (a["role"], a.get("user_by_email"), a.get("for_each"))
        for a in dataset_access(main)
        if "special_group" not in a
    }

    assert grantees == {("READER", "${access.value.email}", "${google_service_account.dr_copy}")}
    assert {
        (a["role"], a.get("user_by_email")) for a in dataset_access(replica) if "user_by_email" in a
    } == {("WRITER", "${google_service_account.dr_copy[0].email}")}


def test_query_usage_per_user_per_day_is_capped(
    resources: list[Resource], root_variables: dict, parsed: dict
) -> None:
    (quota,) = of_type(resources, "google_cloud_quotas_quota_preference")
    variable = root_variables["bigquery_query_usage_per_user_per_day_tib"]
    root_locals = {k: v for b in parsed[TERRAFORM_DIR / "main.tf"]["locals"] for k, v in b.items()}

    assert quota.body["service"] == "bigquery.googleapis.com"
    assert quota.body["quota_id"] == "QueryUsagePerUserPerDay"
    assert quota.body["parent"] == "projects/${var.project_id}"
    assert first(quota.body["quota_config"])["preferred_value"] == (
        "${tostring(floor(var.query_usage_per_user_per_day_tib * 1024 * 1024))}"
    ), "the quota counts MiB"
    assert variable["default"] == 1
    assert "per day" in variable["description"]
    assert "cloudquotas.googleapis.com" in root_locals["services"]


# --- identity -------------------------------------------------------------------


def iam_grants(resources: list[Resource]) -> list[Resource]:
    return [r for r in resources if re.search(r"_iam_(member|binding|policy)$", r.type)]


def test_no_primitive_roles_anywhere(resources: list[Resource]) -> None:
    used = {s for r in resources for s in strings_in(r.body) if s in PRIMITIVE_ROLES}

    assert not used


def test_every_granted_role_is_allow_listed(resources: list[Resource]) -> None:
    grants = iam_grants(resources)
    roles = {r.body["role"] for r in grants}

    assert grants
    assert roles <= ALLOWED_ROLES, roles - ALLOWED_ROLES
    assert not [r for r in grants if not r.type.endswith("_iam_member")], (
        "use additive *_iam_member grants, never authoritative bindings/policies"
    )


def test_project_level_grants_are_only_jobs_and_metric_writes(resources: list[Resource]) -> None:
    grants = of_type(resources, "google_project_iam_member")

    assert grants
    for grant in grants:
        role, member = grant.body["role"], grant.body["member"]
        assert role in PROJECT_LEVEL_GRANTS, f"{grant.address}: {role} at project level"
        assert member in PROJECT_LEVEL_GRANTS[role], (
            f"{grant.address}: only {PROJECT_LEVEL_GRANTS[role]} may hold {role}"
        )


def grants_to(resources: list[Resource], account: str) -> dict[str, tuple[str, str]]:
    """address -> (role, target) of every IAM grant naming `account` directly (the root's
    for_each grants of the DJANGO_SECRET_KEY secret to the API and subscriber aside)."""
    member = f"serviceAccount:${{google_service_account.{account}.email}}"
    found = {}
    for grant in iam_grants(resources):
        if grant.body["member"] == member:
            target = next(
                str(grant.body[key])
                for key in (
                    "table_id",
                    "subscription",
                    "topic",
                    "secret_id",
                    "repository",
                    "service_account_id",
                    "name",
                    "project",
                )
                if key in grant.body
            )
            found[grant.address] = (grant.body["role"], target)
    return found


def test_subscriber_gets_exactly_what_its_code_calls(resources: list[Resource]) -> None:
    grants = set(grants_to(resources, "subscriber").values())
    (role,) = of_type(resources, "google_project_iam_custom_role")

    assert grants == {
        ("roles/pubsub.subscriber", "${var.subscription_name}"),
        ("roles/pubsub.publisher", "${var.dead_letter_topic_name}"),
        (TABLE_WRITER_ROLE, "${var.table_id}"),
        ("roles/monitoring.metricWriter", "${var.project_id}"),  # its collector sidecar
    }
    assert role.name == "records_table_writer"
    assert role.body["permissions"] == TABLE_WRITER_PERMISSIONS
    assert not [
        r
        for r in of_type(resources, "google_bigquery_table_iam_member")
        if r.body["role"] == TABLE_WRITER_ROLE and "subscriber" not in r.body["member"]
    ]


def test_operator_gets_exactly_what_dead_letters_calls(resources: list[Resource]) -> None:
    grants = set(grants_to(resources, "operator").values())

    assert grants == {
        ("roles/pubsub.subscriber", "${var.dead_letter_subscription_name}"),
        ("roles/pubsub.publisher", "${var.topic_name}"),
    }


def test_every_workload_has_its_own_service_account(resources: list[Resource]) -> None:
    accounts = {r.body["account_id"] for r in of_type(resources, "google_service_account")}

    assert {"latam-api", "latam-subscriber", "latam-deployer", "latam-image-pusher"} <= accounts


def test_deployer_acts_only_as_the_runtime_accounts(resources: list[Resource]) -> None:
    act_as = [
        r
        for r in of_type(resources, "google_service_account_iam_member")
        if r.body["role"] == "roles/iam.serviceAccountUser"
    ]

    assert len(act_as) == 1
    assert "deployer" in act_as[0].body["member"]
    assert act_as[0].body["for_each"] == "${var.runtime_service_account_names}"
    root = hcl_load(TERRAFORM_DIR / "main.tf")
    ci = first(next(b["ci"] for b in root["module"] if "ci" in b))
    assert set(ci["runtime_service_account_names"]) == {"api", "subscriber"}


def test_no_service_account_keys(resources: list[Resource]) -> None:
    assert not of_type(resources, "google_service_account_key")


def ci_values(parsed: dict, variables_by_dir: dict) -> dict[str, str]:
    """var.* and local.* of modules/ci with their values (the repository plugged in)."""
    ci_dir = TERRAFORM_DIR / "modules" / "ci"
    values = {
        f"var.{name}": str(body["default"])
        for name, body in variables_by_dir[ci_dir].items()
        if "default" in body
    }
    values["var.github_repository"] = GITHUB_REPOSITORY
    values["var.github_repository_id"] = GITHUB_REPOSITORY_ID
    values["google_iam_workload_identity_pool.github.name"] = (
        "projects/1/locations/global/workloadIdentityPools/github-actions"
    )
    for block in parsed[ci_dir / "main.tf"].get("locals", []):
        for name, value in entries(block):
            values[f"local.{name}"] = value
    return values


def render(text: str, values: dict[str, str]) -> str:
    for _ in range(10):
        rendered = re.sub(r"\$\{([\w.\[\]]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)
        if rendered == text:
            return rendered
        text = rendered
    return text


def wif_condition(provider: dict, values: dict[str, str]) -> str:
    """The provider's attribute_condition as deployed: join(" && ", [...]) rendered."""
    match = re.fullmatch(r'\$\{join\(" && ", (\[.*\])\)\}', provider["attribute_condition"], re.S)
    assert match, provider["attribute_condition"]
    return " && ".join(render(part, values) for part in json.loads(match.group(1)))


def cel_accepts(condition: str, token: dict[str, str]) -> bool:
    """Evaluate the condition (==, &&, || and parentheses over assertion.* claims)."""
    assert re.fullmatch(r'[\w.\s()"=&|:/@-]+', condition), condition
    python = condition.replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"assertion\.(\w+)", lambda m: f"claims.get({m.group(1)!r}, '')", python)
    return bool(eval(python, {"__builtins__": {}}, {"claims": token}))  # noqa: S307


@pytest.fixture(scope="module")
def federation(resources: list[Resource], parsed: dict, variables_by_dir: dict):
    """(token -> set of account names it may impersonate), as Google would decide it."""
    (provider,) = of_type(resources, "google_iam_workload_identity_pool_provider")
    values = ci_values(parsed, variables_by_dir)
    condition = wif_condition(provider.body, values)
    mapping = provider.body["attribute_mapping"]
    bindings = [
        r
        for r in of_type(resources, "google_service_account_iam_member")
        if r.body["role"] == "roles/iam.workloadIdentityUser"
    ]

    def may_impersonate(token: dict[str, str]) -> set[str]:
        if not cel_accepts(condition, token):
            return set()
        subject = token[mapping["google.subject"].removeprefix("assertion.")]
        pool = values["google_iam_workload_identity_pool.github.name"]
        return {
            re.search(r"google_service_account\.(\w+)\.name", r.body["service_account_id"]).group(1)
            for r in bindings
            if render(r.body["member"], values)
            == f"principal://iam.googleapis.com/{pool}/subject/{subject}"
        }

    return provider.body, condition, may_impersonate


def github_token(**claims: str) -> dict[str, str]:
    """Claims of a GitHub Actions OIDC token of the deploy workflow's build job on main."""
    token = {
        "repository": GITHUB_REPOSITORY,
        "repository_id": GITHUB_REPOSITORY_ID,
        "sub": f"repo:{GITHUB_REPOSITORY}:ref:refs/heads/main",
        "ref": "refs/heads/main",
        "job_workflow_ref": f"{GITHUB_REPOSITORY}/.github/workflows/deploy.yml@refs/heads/main",
    }
    return {**token, **claims}


PRODUCTION = f"repo:{GITHUB_REPOSITORY}:environment:production"


@pytest.mark.parametrize(
    ("token", "accounts"),
    [
        (github_token(), {"pusher"}),
        (github_token(sub=PRODUCTION), {"deployer"}),
        # Any other job of the repository on main: not the production environment.
        (github_token(sub=f"repo:{GITHUB_REPOSITORY}:environment:staging"), set()),
        # The production environment, but another workflow file, or deploy.yml elsewhere.
        (
            github_token(
                sub=PRODUCTION,
                job_workflow_ref=f"{GITHUB_REPOSITORY}/.github/workflows/ci.yml@refs/heads/main",
            ),
            set(),
        ),
        (
            github_token(
                job_workflow_ref=f"{GITHUB_REPOSITORY}/.github/workflows/evil.yml@refs/heads/main"
            ),
            set(),
        ),
        (
            github_token(
                sub=PRODUCTION,
                job_workflow_ref=f"{GITHUB_REPOSITORY}/.github/workflows/deploy.yml@refs/heads/x",
            ),
            set(),
        ),
        (
            github_token(
                sub=f"repo:{GITHUB_REPOSITORY}:ref:refs/heads/x",
                job_workflow_ref=f"{GITHUB_REPOSITORY}/.github/workflows/deploy.yml@refs/heads/x",
            ),
            set(),
        ),
        (github_token(sub=f"repo:{GITHUB_REPOSITORY}:pull_request"), set()),
        # A re-created repository of the same name has another numeric id.
        (github_token(repository_id="987654321"), set()),
        (github_token(sub=PRODUCTION, repository_id="987654321"), set()),
        (github_token(repository_id=""), set()),
    ],
    ids=[
        "build-job-main",
        "deploy-job-production",
        "other-environment",
        "production-other-workflow",
        "main-other-workflow",
        "production-deploy-yml-other-branch",
        "deploy-yml-other-branch",
        "pull-request",
        "recreated-repository",
        "recreated-repository-production",
        "no-repository-id",
    ],
)
def test_who_may_impersonate_which_ci_account(federation, token: dict, accounts: set) -> None:
    _, _, may_impersonate = federation

    assert may_impersonate(token) == accounts


def test_github_federation_pins_repository_id_and_workflow(
    federation, root_variables: dict
) -> None:
    provider, condition, _ = federation
    repository_id = root_variables["github_repository_id"]

    assert first(provider["oidc"])["issuer_uri"] == "https://token.actions.githubusercontent.com"
    assert f'assertion.repository_id == "{GITHUB_REPOSITORY_ID}"' in condition
    assert (
        f'assertion.job_workflow_ref == "{GITHUB_REPOSITORY}/.github/workflows/deploy.yml'
        '@refs/heads/main"' in condition
    )
    assert "principalSet" not in json.dumps(provider)
    assert "default" not in repository_id, "the repository id is the operator's to give"
    assert "^[1-9][0-9]" in first(repository_id["validation"])["condition"]


def test_ci_accounts_hold_only_their_grants(resources: list[Resource]) -> None:
    pusher = set(grants_to(resources, "pusher").values())
    deployer = {role for role, _ in grants_to(resources, "deployer").values()}

    assert pusher == {("roles/artifactregistry.writer", "${var.repository_id}")}
    assert deployer == {
        "roles/run.developer",
        "roles/iam.serviceAccountUser",
        "roles/pubsub.publisher",
    }
    publish = [
        r
        for r in of_type(resources, "google_pubsub_topic_iam_member")
        if "deployer" in r.body["member"]
    ]
    assert [r.body["topic"] for r in publish] == ["${var.ingest_topic_name}"]


# --- Cloud Run ------------------------------------------------------------------


def test_public_access_only_behind_the_explicit_flag(
    resources: list[Resource], root_variables: dict
) -> None:
    public = [
        r
        for r in resources
        if any(s in ("allUsers", "allAuthenticatedUsers") for s in strings_in(r.body))
    ]

    assert root_variables["allow_public_access"]["default"] is False
    assert public, "the opt-in grant should exist (gated)"
    for resource in public:
        assert "var.allow_public_access ? 1 : 0" in str(resource.body.get("count")), (
            resource.address
        )
        assert "allAuthenticatedUsers" not in list(strings_in(resource.body))


def test_api_probes_port_and_concurrency(resources: list[Resource], locals_by_dir: dict) -> None:
    service = the(resources, "google_cloud_run_v2_service", "api")
    template = first(service.body["template"])
    container = first(template["containers"])
    startup = first(first(container["startup_probe"])["http_get"])
    liveness = first(first(container["liveness_probe"])["http_get"])
    run_locals = locals_by_dir[service.path.parent]

    assert startup["path"] == "/readyz"
    assert liveness["path"] == "/healthz"
    assert first(container["ports"])["container_port"] == 8080 == startup["port"]
    assert first(container["resources"])["startup_cpu_boost"] is True
    assert template["max_instance_request_concurrency"] == "${local.api_concurrency}"
    assert run_locals["api_concurrency"] == "${var.gunicorn_workers * var.gunicorn_threads}"
    assert "GUNICORN_WORKERS = tostring(var.gunicorn_workers)" in run_locals["api_env"]
    assert "GUNICORN_THREADS = tostring(var.gunicorn_threads)" in run_locals["api_env"]
    assert 'DJANGO_DEBUG = "false"' in run_locals["api_env"]


def test_api_secret_key_comes_from_secret_manager(resources: list[Resource]) -> None:
    service = the(resources, "google_cloud_run_v2_service", "api")
    container = first(first(service.body["template"])["containers"])
    secret_env = [e for e in container["env"] if e["name"] == "DJANGO_SECRET_KEY"]
    versions = of_type(resources, "google_secret_manager_secret_version")

    assert len(secret_env) == 1
    assert "value" not in secret_env[0]
    assert first(first(secret_env[0]["value_source"])["secret_key_ref"])["secret"]
    assert not [v for v in versions if "django_secret_key" in v.body["secret"]], (
        "the secret key's value is added out of band, never by Terraform"
    )


def test_app_environment_matches_design(parsed: dict) -> None:
    root_locals = {k: v for b in parsed[TERRAFORM_DIR / "main.tf"]["locals"] for k, v in b.items()}

    assert set(root_locals["app_env"]) >= DESIGN_ENV


def test_terraform_leaves_image_and_traffic_to_the_deploy_workflow(
    resources: list[Resource],
) -> None:
    service = the(resources, "google_cloud_run_v2_service", "api")
    pool = the(resources, "google_cloud_run_v2_worker_pool", "subscriber")
    service_ignored = first(service.body["lifecycle"])["ignore_changes"]
    pool_ignored = first(pool.body["lifecycle"])["ignore_changes"]

    # A rollback pins traffic to the previous revision: an apply must not send it back
    # to the latest (rolled-back) one, nor put an image back.
    assert {"${template[0].containers[0].image}", "traffic"} <= set(service_ignored)
    assert {"${template[0].containers[0].image}", "instance_splits"} <= set(pool_ignored)


def test_redis_is_on_by_default_with_tls(
    resources: list[Resource], root_variables: dict, parsed: dict
) -> None:
    instance = the(resources, "google_redis_instance", "cache")
    url = the(resources, "google_secret_manager_secret_version", "cache_url")
    redis_tf = TERRAFORM_DIR / "modules" / "redis" / "main.tf"

    assert root_variables["enable_redis"]["default"] is True
    assert instance.body["transit_encryption_mode"] == "SERVER_AUTHENTICATION"
    assert instance.body["auth_enabled"] is True
    assert instance.body["deletion_protection"] is False, "set on purpose (7.x: unset = true)"
    assert url.body["secret_data"].startswith("rediss://")
    assert "CKV_GCP_97" not in redis_tf.read_text(encoding="utf-8")


def test_redis_server_ca_reaches_the_api_as_a_file(
    resources: list[Resource], locals_by_dir: dict
) -> None:
    ca = the(resources, "google_secret_manager_secret_version", "cache_ca")
    accessor = the(resources, "google_secret_manager_secret_iam_member", "api_cache_ca")
    service = the(resources, "google_cloud_run_v2_service", "api")
    template = first(service.body["template"])
    container = first(template["containers"])
    run_locals = locals_by_dir[service.path.parent]
    volume = next(d["volumes"] for d in template["dynamic"] if "volumes" in d)
    mount = next(d["volume_mounts"] for d in container["dynamic"] if "volume_mounts" in d)
    env = [
        d["env"]
        for d in container["dynamic"]
        if "env" in d and first(d["env"]["content"])["name"] == "CACHE_REDIS_CA_FILE"
    ]

    assert "google_redis_instance.cache.server_ca_certs" in ca.body["secret_data"]
    assert accessor.body["secret_id"] == "${google_secret_manager_secret.cache_ca.secret_id}"
    assert "api_service_account_email" in accessor.body["member"]
    assert volume["for_each"] == "${var.enable_redis ? [var.cache_ca_secret_id] : []}"
    item = first(first(first(volume["content"])["secret"])["items"])
    assert item == {"version": "latest", "path": "${local.redis_ca_file}"}
    assert first(mount["content"])["name"] == first(volume["content"])["name"]
    assert mount["for_each"] == "${var.enable_redis ? [local.redis_ca_dir] : []}"
    (ca_env,) = env
    assert ca_env["for_each"] == (
        '${var.enable_redis ? ["${local.redis_ca_dir}/${local.redis_ca_file}"] : []}'
    )
    assert run_locals["redis_ca_dir"].startswith("/") and run_locals["redis_ca_file"]


def test_image_variable_requires_a_digest(root_variables: dict) -> None:
    validation = first(root_variables["image"]["validation"])

    assert "@sha256:" in validation["condition"]


def test_subscriber_runs_the_management_command_always_on(resources: list[Resource]) -> None:
    pool = the(resources, "google_cloud_run_v2_worker_pool", "subscriber")
    container = first(first(pool.body["template"])["containers"])
    scaling = first(pool.body["scaling"])
    env = next(d for d in container["dynamic"] if "env" in d)["env"]

    assert container["command"] == ["python"]
    assert container["args"] == ["manage.py", "run_subscriber"]
    assert scaling.get("scaling_mode", "MANUAL") == "MANUAL"
    assert scaling["manual_instance_count"] == "${var.subscriber_instance_count}"
    assert env["for_each"] == "${local.subscriber_env}"


def test_subscriber_instances_and_streams_per_instance_are_variables_wired_through(
    parsed: dict, resources: list[Resource], root_variables: dict, locals_by_dir: dict
) -> None:
    """N processes (worker pool instances) × streams per process: both are root variables
    that reach the worker pool, and the streams' bounds are what run_subscriber accepts."""
    pool = the(resources, "google_cloud_run_v2_worker_pool", "subscriber")
    run_call = first(
        next(b["run"] for b in parsed[TERRAFORM_DIR / "main.tf"]["module"] if "run" in b)
    )
    run_variables = {
        name: body
        for block in parsed[TERRAFORM_DIR / "modules" / "run" / "variables.tf"]["variable"]
        for name, body in entries(block)
    }
    streams = root_variables["subscriber_streams"]
    condition = first(streams["validation"])["condition"]
    app_limit = re.search(
        r"^MAX_STREAMS = (\d+)$",
        (REPO_ROOT / "ingestion" / "subscriber.py").read_text(encoding="utf-8"),
        re.MULTILINE,
    )

    assert streams["default"] == 1 and streams["type"] == "number"
    assert app_limit and f"var.subscriber_streams <= {app_limit.group(1)}" in condition
    assert "var.subscriber_streams >= 1" in condition
    assert run_call["subscriber_streams"] == "${var.subscriber_streams}"
    assert run_call["subscriber_instance_count"] == "${var.subscriber_instance_count}"
    assert {"subscriber_streams", "subscriber_instance_count"} <= set(run_variables)
    subscriber_env = locals_by_dir[pool.path.parent]["subscriber_env"]
    assert "INGEST_STREAMS = tostring(var.subscriber_streams)" in subscriber_env
    assert first(pool.body["scaling"])["manual_instance_count"] == (
        "${var.subscriber_instance_count}"
    )


# --- monitoring -----------------------------------------------------------------


@pytest.fixture(scope="module")
def alert_filters(resources: list[Resource], locals_by_dir: dict) -> dict[str, list[str]]:
    """Alert policy name -> its condition filters with locals inlined."""
    policies = {}
    for policy in of_type(resources, "google_monitoring_alert_policy"):
        local_values = locals_by_dir.get(policy.path.parent, {})
        policies[policy.name] = [
            resolve_locals(first(c["condition_threshold"])["filter"], local_values)
            for c in policy.body["conditions"]
        ]
    return policies


def policies_matching(alert_filters: dict[str, list[str]], *needles: str) -> list[str]:
    return [
        name
        for name, filters in alert_filters.items()
        if any(all(n in f for n in needles) for f in filters)
    ]


@pytest.mark.parametrize(
    "needles",
    [
        ("run.googleapis.com/request_count", 'response_code_class="5xx"'),
        ("run.googleapis.com/request_latencies",),
        ("pubsub.googleapis.com/subscription/oldest_unacked_message_age", "var.subscription_name"),
        ("pubsub.googleapis.com/subscription/num_undelivered_messages", "var.subscription_name"),
        ("pubsub.googleapis.com/topic/send_message_operation_count", "var.dead_letter_topic_name"),
        ("monitoring.googleapis.com/uptime_check/check_passed",),
    ],
    ids=["5xx", "latency", "oldest-unacked", "backlog", "dead-letter", "uptime"],
)
def test_alert_policy_exists(alert_filters: dict, needles: tuple[str, ...]) -> None:
    assert policies_matching(alert_filters, *needles)


def test_latency_alert_uses_p95(resources: list[Resource], alert_filters: dict) -> None:
    (name,) = policies_matching(alert_filters, "run.googleapis.com/request_latencies")
    policy = the(resources, "google_monitoring_alert_policy", name)
    condition = first(first(policy.body["conditions"])["condition_threshold"])
    aggregation = first(condition["aggregations"])

    assert aggregation["cross_series_reducer"] == "REDUCE_PERCENTILE_95"


def test_five_xx_alert_is_a_ratio(resources: list[Resource], alert_filters: dict) -> None:
    (name,) = policies_matching(alert_filters, 'response_code_class="5xx"')
    policy = the(resources, "google_monitoring_alert_policy", name)
    condition = first(first(policy.body["conditions"])["condition_threshold"])

    assert "denominator_filter" in condition


def test_availability_slo(resources: list[Resource], root_variables: dict) -> None:
    slo = the(resources, "google_monitoring_slo", "api_availability").body
    ratio = first(first(slo["request_based_sli"])["good_total_ratio"])

    assert slo["rolling_period_days"] == 28
    assert root_variables["slo_availability_goal"]["default"] == 0.999
    assert "total_service_filter" in ratio
    assert {"good_service_filter", "bad_service_filter"} & set(ratio)


@pytest.mark.parametrize("slo_name", ["api_availability", "ingest_freshness"])
@pytest.mark.parametrize(
    ("rate", "windows"),
    [(14.4, {"3600s", "300s"}), (6, {"21600s", "1800s"})],
    ids=["fast-burn", "slow-burn"],
)
def test_multi_window_burn_rate_alert(
    resources: list[Resource], slo_name: str, rate: float, windows: set[str]
) -> None:
    slo = the(resources, "google_monitoring_slo", slo_name)
    matching = []
    for policy in of_type(resources, "google_monitoring_alert_policy"):
        conditions = [first(c["condition_threshold"]) for c in policy.body["conditions"]]
        found = {
            m.group(1)
            for c in conditions
            if c["threshold_value"] == rate
            and (m := re.search(r'select_slo_burn_rate\(.+, \\?"(\d+s)\\?"\)', c["filter"]))
            and f"google_monitoring_slo.{slo.name}.name" in c["filter"]
        }
        if found == windows and policy.body["combiner"] == "AND":
            matching.append(policy.name)

    assert len(matching) == 1


def test_every_alert_links_an_existing_runbook(resources: list[Resource]) -> None:
    policies = of_type(resources, "google_monitoring_alert_policy")
    assert policies
    for policy in policies:
        content = first(policy.body["documentation"])["content"]
        links = re.findall(r"runbook_base_url\}/([\w.-]+\.md)", content)
        assert links, f"{policy.name} documentation must link a runbook"
        for link in links:
            assert (RUNBOOKS_DIR / link).is_file(), f"{policy.name}: missing docs/runbooks/{link}"
        assert policy.body.get("notification_channels")


def test_uptime_check_probes_healthz_over_https(resources: list[Resource]) -> None:
    (check,) = of_type(resources, "google_monitoring_uptime_check_config")
    http = first(check.body["http_check"])

    assert http["path"] == "/healthz"
    assert http["use_ssl"] is True
    assert http["port"] == 443


def test_dashboard_is_declared(resources: list[Resource]) -> None:
    assert of_type(resources, "google_monitoring_dashboard")


COST_REFUSAL_LINE = "warehouse query refused for its cost"


def test_queries_refused_for_their_cost_raise_an_alert_with_a_runbook(
    resources: list[Resource],
) -> None:
    """The API logs COST_REFUSAL_LINE (records/repository.py) when BigQuery refuses a query
    over BIGQUERY_MAX_BYTES_BILLED; a log-based metric counts it and an alert watches it."""
    repository_source = (REPO_ROOT / "records" / "repository.py").read_text(encoding="utf-8")
    metrics = [
        m
        for m in of_type(resources, "google_logging_metric")
        if COST_REFUSAL_LINE in m.body["filter"].replace('\\"', '"')
    ]

    assert f'"{COST_REFUSAL_LINE}"' in repository_source
    (metric,) = metrics
    log_filter = metric.body["filter"].replace('\\"', '"')
    assert f'jsonPayload.message="{COST_REFUSAL_LINE}"' in log_filter
    assert 'jsonPayload.logger="records.repository"' in log_filter
    assert "severity=WARNING" in log_filter
    assert metric.body["label_extractors"]["operation"] == "EXTRACT(jsonPayload.operation)"
    alerts = [
        policy
        for policy in of_type(resources, "google_monitoring_alert_policy")
        if any(
            f"google_logging_metric.{metric.name}.name" in first(c["condition_threshold"])["filter"]
            for c in policy.body["conditions"]
        )
    ]
    assert len(alerts) == 1
    documentation = first(alerts[0].body["documentation"])["content"]
    assert "runbook_base_url}/api-query-cost.md" in documentation
    assert "api-query-cost.md" in (RUNBOOKS_DIR / "README.md").read_text(encoding="utf-8")


# --- freshness: the subscriber's histogram, its way to Cloud Monitoring, the SLO -------

FRESHNESS_HISTOGRAM = "latam_ingest_publish_to_stored_seconds"


def histogram_bounds(name: str) -> list[float]:
    """The finite bucket bounds of one of the subscriber's histograms, as it exports them."""
    from ingestion import metrics

    (family,) = next(
        m for m in vars(metrics).values() if getattr(m, "_name", None) == name
    ).collect()
    return [
        float(s.labels["le"])
        for s in family.samples
        if s.name.endswith("_bucket") and s.labels["le"] != "+Inf"
    ]


def test_freshness_slo_cuts_the_subscribers_histogram_at_the_objective(
    resources: list[Resource], root_variables: dict, locals_by_dir: dict
) -> None:
    """99 % of records queryable within 60 s, over what the collector sidecar writes of
    the subscriber's histogram (MSP names it prometheus.googleapis.com/<name>/histogram)."""
    slo = the(resources, "google_monitoring_slo", "ingest_freshness")
    cut = first(first(slo.body["request_based_sli"])["distribution_cut"])
    series = resolve_locals(cut["distribution_filter"], locals_by_dir[slo.path.parent])
    objective = root_variables["slo_freshness_seconds"]
    allowed = re.search(r"contains\(\[([\d, ]+)\]", first(objective["validation"])["condition"])

    assert f'prometheus.googleapis.com/{FRESHNESS_HISTOGRAM}/histogram\\"' in series
    assert 'resource.type=\\"prometheus_target\\"' in series
    assert 'resource.labels.namespace=\\"${var.subscriber_name}\\"' in series
    assert first(cut["range"]) == {"max": "${var.freshness_seconds}"}  # no min: -infinity
    assert slo.body["rolling_period_days"] == 28
    assert slo.body["goal"] == "${var.freshness_goal}"
    assert root_variables["slo_freshness_goal"]["default"] == 0.99
    assert objective["default"] == 60
    bounds = histogram_bounds(FRESHNESS_HISTOGRAM)
    assert 60.0 in bounds and max(bounds) >= 3600
    # Every objective Terraform accepts is a bucket bound: the cut is exact, not estimated.
    assert allowed and {float(v) for v in allowed.group(1).split(",")} <= set(bounds)


def test_freshness_alerts_link_their_runbook(resources: list[Resource]) -> None:
    alerts = [
        policy
        for policy in of_type(resources, "google_monitoring_alert_policy")
        if any(
            "google_monitoring_slo.ingest_freshness.name"
            in first(c["condition_threshold"])["filter"]
            for c in policy.body["conditions"]
        )
    ]

    assert len(alerts) == 2
    for alert in alerts:
        assert (
            "runbook_base_url}/ingest-freshness.md" in first(alert.body["documentation"])["content"]
        )
    assert "ingest-freshness.md" in (RUNBOOKS_DIR / "README.md").read_text(encoding="utf-8")


def test_subscriber_metrics_reach_cloud_monitoring_through_the_collector_sidecar(
    parsed: dict, resources: list[Resource], root_variables: dict
) -> None:
    """The worker pool runs Managed Service for Prometheus' collector beside the subscriber;
    it reads its RunMonitoring document from /etc/rungmp/config.yaml (a pinned secret
    version), which scrapes the subscriber's METRICS_PORT."""
    pool = the(resources, "google_cloud_run_v2_worker_pool", "subscriber")
    template = first(pool.body["template"])
    subscriber, collector = template["containers"]  # the deploy workflow's image is [0]
    (volume,) = template["volumes"]
    secret = first(volume["secret"])
    mount = first(collector["volume_mounts"])
    config = the(resources, "google_secret_manager_secret_version", "subscriber_metrics_config")
    run_call = first(
        next(b["run"] for b in parsed[TERRAFORM_DIR / "main.tf"]["module"] if "run" in b)
    )

    assert subscriber["name"] == "subscriber"
    assert collector["image"] == "${var.metrics_collector_image}"
    assert collector["depends_on"] == ["subscriber"]
    assert (mount["name"], mount["mount_path"]) == (volume["name"], "/etc/rungmp")
    assert first(secret["items"])["path"] == "config.yaml"
    assert first(secret["items"])["version"] == "${var.metrics_collector_config_version}"
    assert run_call["metrics_collector_config_version"] == (
        "${google_secret_manager_secret_version.subscriber_metrics_config.version}"
    )
    document = config.body["secret_data"]
    assert "RunMonitoring" in document and "var.subscriber_metrics_port" in document
    image = root_variables["subscriber_metrics_collector_image"]
    assert "cloud-run-gmp-sidecar" in image["default"]
    assert not image["default"].endswith(":latest")
    # Who reads the document: the subscriber's identity, on that secret only.
    accessor = the(
        resources, "google_secret_manager_secret_iam_member", "subscriber_metrics_config_accessor"
    )
    assert (
        accessor.body["member"] == "serviceAccount:${module.iam.subscriber_service_account_email}"
    )
    assert accessor.body["role"] == "roles/secretmanager.secretAccessor"
