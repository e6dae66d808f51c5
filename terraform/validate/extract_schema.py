"""Regenerate google-schema.json: the hashicorp/google provider schema that the
schema-only provider (provider.py) serves to `terraform validate`.

Where it comes from: the registry cannot be reached from these machines, so the
schema is read from the prebuilt CDK bindings published on PyPI:
`cdktn-provider-google` (CDK Terrain; 20.3.1 carries hashicorp/google 7.46.1).
The wheel holds the jsii tarball `_jsii/provider-google@<v>.jsii.tgz`, which holds

* `.jsii`, the assembly: CDK classes and structs with camelCase properties,
  `optional` flags, primitive types and doc links whose anchors are the Terraform
  names (`…/docs/resources/pubsub_topic#ack_deadline_seconds`). It lacks what
  validate needs: computed flags, list/set/single nesting, max_items, and the
  value of `tfResourceType`.
* `lib/<type>/index.js` (+ `index-structs/`), the generated code, which has it all
  under the original Terraform names:
  - `static tfResourceType = "google_pubsub_topic";` and `extends
    cdktn.TerraformResource` / `TerraformDataSource` / `TerraformProvider`;
  - before every member of the resource class and of every nested
    `<Struct>OutputReference` class, a comment
    `// <tf_name> - computed: <b>, optional: <b>, required: <b>`;
  - `synthesizeHclAttributes()` (resource/provider) and `<struct>ToHclTerraform()`
    (nested blocks) list every *configurable* member as
    `{isBlock, type: simple|list|set|map|struct, storageClassType}`:
    attribute types (`string`, `number`, `boolean`, `stringList`, `numberList`,
    `stringMap`; `list`/`set` says which collection), blocks and their nesting mode
    (`list`, `set`, `struct` = single) and, through the mapper called
    (`<struct>ToHclTerraform`), the struct that describes the nested block;
  - members are built as `new <Struct>OutputReference(this, "name")` (at most one
    item: max_items = 1) or `new <Struct>List(this, "name", <wrapsSet>)`;
    computed-only members that are not in synthesizeHclAttributes get their type
    from the getter (`getStringAttribute`, `getNumberAttribute`,
    `getBooleanAttribute`, `getListAttribute` (`Fn.tolist(...)` = a set),
    `getNumberListAttribute`, `getStringMapAttribute`, `cdktn.StringMap`,
    `cdktn.StringMapList`) or, for computed lists of objects, from the
    OutputReference class of their struct (type list/set of object).

Mapping: tf attribute = comment name; required/optional/computed = the comment
flags; configurable members become attributes or blocks as isBlock says; a
required block gets min_items = 1; a block built from an OutputReference gets
max_items = 1. The provider block's nested blocks (`batching`,
`external_credentials`) have no OutputReference class (their max_items is not
recorded: 0) and their members' flags come from the assembly's `optional`.
Lost on the way (not in the bindings): sensitive/deprecated flags, write-only
flags, max_items > 1, the provider-side validators (ConflictsWith, enums...).
The `google_` type names and the version are checked against the assembly.

The output is in the format of `terraform providers schema -json`, limited to the
resource and data-source types the project's Terraform uses (found by scanning
terraform/**/*.tf) plus `--types` extras, compact (one line per type) to stay small.

Usage (from the repository root):
    .venv/bin/python terraform/validate/extract_schema.py            # download + write
    .venv/bin/python terraform/validate/extract_schema.py --wheel W  # from a wheel
    .venv/bin/python terraform/validate/extract_schema.py --check    # is it current?
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TERRAFORM_DIR = HERE.parent
SCHEMA_FILE = HERE / "google-schema.json"
PACKAGE = "cdktn-provider-google"
PACKAGE_VERSION = "20.3.1"
PROVIDER_ADDRESS = "registry.terraform.io/hashicorp/google"

TYPE_RE = re.compile(r'^\s*(resource|data)\s+"([A-Za-z0-9_-]+)"', re.MULTILINE)
CLASS_RE = re.compile(r"^class (\w+) extends ([\w.]+) \{\n(.*?)^\}\n", re.MULTILINE | re.DOTALL)
HCL_FN_RE = re.compile(
    r"^function (\w+)ToHclTerraform\(struct\) \{\n(.*?)^\}\n", re.MULTILINE | re.DOTALL
)
MEMBER_RE = re.compile(
    r"^    // (\w+) - computed: (true|false), optional: (true|false), required: (true|false)$",
    re.MULTILINE,
)
HCL_ENTRY_RE = re.compile(
    r"^\s+(\w+): \{\n\s+value: (.*),\n\s+isBlock: (true|false),\n"
    r'\s+type: "(\w+)",\n\s+storageClassType: "(\w+)",\n\s+\},$',
    re.MULTILINE,
)
PRIMITIVES = {"string": "string", "number": "number", "boolean": "bool"}


class ExtractError(Exception):
    pass


@dataclass
class Member:
    name: str
    computed: bool
    optional: bool
    required: bool
    code: str


@dataclass
class HclEntry:
    is_block: bool
    kind: str  # simple | list | set | map | struct
    storage: str
    value: str


@dataclass
class Module:
    """Every class and ToHclTerraform function of one lib/<type>/ directory."""

    classes: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (base, body)
    hcl_fns: dict[str, str] = field(default_factory=dict)  # struct name -> body


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def upper_first(name: str) -> str:
    return name[:1].upper() + name[1:]


def strip_sourcemap(text: str) -> str:
    return text.split("\n//# sourceMappingURL=", 1)[0] + "\n"


def load_module(files: list[str]) -> Module:
    module = Module()
    for text in files:
        text = strip_sourcemap(text)
        for m in CLASS_RE.finditer(text):
            module.classes[m.group(1)] = (m.group(2), m.group(3))
        for m in HCL_FN_RE.finditer(text):
            module.hcl_fns[upper_first(m.group(1))] = m.group(2)
    return module


def members(body: str) -> list[Member]:
    # Members end at the next member comment or at the synthesis section.
    body = body.split("    // =========\n    // SYNTHESIS", 1)[0]
    found = list(MEMBER_RE.finditer(body))
    out = []
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(body)
        out.append(
            Member(
                name=m.group(1),
                computed=m.group(2) == "true",
                optional=m.group(3) == "true",
                required=m.group(4) == "true",
                code=body[m.end() : end],
            )
        )
    return out


def hcl_entries(body: str) -> dict[str, HclEntry]:
    return {
        m.group(1): HclEntry(m.group(3) == "true", m.group(4), m.group(5), m.group(2))
        for m in HCL_ENTRY_RE.finditer(body)
    }


def synthesize_hcl_body(class_body: str) -> str:
    start = class_body.find("    synthesizeHclAttributes() {")
    if start < 0:
        raise ExtractError("no synthesizeHclAttributes()")
    return class_body[start:]


def primitive_type(entry: HclEntry, where: str) -> Any:
    storage = entry.storage
    if entry.kind == "simple" and storage in PRIMITIVES:
        return PRIMITIVES[storage]
    if entry.kind in ("list", "set") and storage in ("stringList", "numberList", "booleanList"):
        return [entry.kind, PRIMITIVES[storage[: -len("List")]]]
    if entry.kind == "map" and storage in ("stringMap", "numberMap", "booleanMap"):
        return ["map", PRIMITIVES[storage[: -len("Map")]]]
    raise ExtractError(f"{where}: unknown attribute kind {entry.kind}/{storage}")


GETTER_TYPES = [
    (
        re.compile(r"return cdktn\.Fn\.tolist\(this\.getListAttribute\('(\w+)'\)\);"),
        ["set", "string"],
    ),
    (re.compile(r"return this\.getListAttribute\('(\w+)'\);"), ["list", "string"]),
    (re.compile(r"return this\.getNumberListAttribute\('(\w+)'\);"), ["list", "number"]),
    (re.compile(r"return this\.getStringMapAttribute\('(\w+)'\);"), ["map", "string"]),
    (re.compile(r"return this\.getStringAttribute\('(\w+)'\);"), "string"),
    (re.compile(r"return this\.getNumberAttribute\('(\w+)'\);"), "number"),
    (re.compile(r"return this\.getBooleanAttribute\('(\w+)'\);"), "bool"),
    (re.compile(r'= new cdktn\.StringMap\(this, "(\w+)"\);'), ["map", "string"]),
    (
        re.compile(r'= new cdktn\.StringMapList\(this, "(\w+)", (?:true|false)\);'),
        ["list", ["map", "string"]],
    ),
]
STRUCT_MEMBER_RE = re.compile(
    r'= new (?:index_\d+\.)?(\w+?)(OutputReference|List)\(this, "(\w+)"(?:, (true|false))?\);'
)


class Extractor:
    def __init__(self, module: Module, where: str) -> None:
        self.module = module
        self.where = where

    def struct_members(self, struct: str) -> list[Member]:
        cls = self.module.classes.get(struct + "OutputReference")
        return members(cls[1]) if cls else []

    def struct_member(self, member: Member, where: str) -> tuple[str, bool, bool] | None:
        """(struct, single, wraps_set) when the member is built from a struct class."""
        m = STRUCT_MEMBER_RE.search(member.code)
        if not m:
            return None
        if m.group(3) != member.name:
            raise ExtractError(f"{where}.{member.name}: built as {m.group(3)!r}")
        return m.group(1), m.group(2) == "OutputReference", m.group(4) == "true"

    def computed_type(self, member: Member, where: str) -> Any:
        """Type of a member that is not configurable (computed only)."""
        for pattern, tf_type in GETTER_TYPES:
            m = pattern.search(member.code)
            if m and m.group(1) == member.name:
                return tf_type
        struct = self.struct_member(member, where)
        if struct:
            name, _single, wraps_set = struct
            attrs = {
                sub.name: self.computed_type(sub, f"{where}.{member.name}")
                for sub in self.struct_members(name)
            }
            return ["set" if wraps_set else "list", ["object", attrs]]
        raise ExtractError(f"{where}.{member.name}: cannot tell the type of {member.code!r}")

    def block(self, flags: list[Member], entries: dict[str, HclEntry], where: str) -> dict:
        """A schema block from the members' flags and their synthesis entries."""
        attributes: dict[str, dict] = {}
        block_types: dict[str, dict] = {}
        by_name = {m.name: m for m in flags}
        names = list(by_name) + [n for n in entries if n not in by_name]
        for name in names:
            member = by_name.get(name)
            entry = entries.get(name)
            path = f"{where}.{name}"
            if member is None:
                raise ExtractError(f"{path}: in the synthesis but without flags")
            if entry is None:
                if not member.computed or member.optional or member.required:
                    raise ExtractError(f"{path}: configurable but not synthesized")
                attributes[name] = {"type": self.computed_type(member, where), "computed": True}
                continue
            if not entry.is_block:
                attr: dict[str, Any] = {"type": primitive_type(entry, path)}
                for flag in ("required", "optional", "computed"):
                    if getattr(member, flag):
                        attr[flag] = True
                attributes[name] = attr
                continue
            block_types[name] = self.nested_block(member, entry, path)
        return {"attributes": attributes, "block_types": block_types}

    def nested_block(self, member: Member, entry: HclEntry, where: str) -> dict:
        fn = re.search(r"(?:index_\d+\.)?(\w+)ToHclTerraform\b", entry.value)
        if not fn:
            raise ExtractError(f"{where}: no struct mapper in {entry.value!r}")
        struct = upper_first(fn.group(1))
        built = self.struct_member(member, where)
        if built and built[0] != struct:
            raise ExtractError(f"{where}: built from {built[0]}, synthesized from {struct}")
        single = bool(built and built[1])
        nesting = {"list": "list", "set": "set", "struct": "single"}.get(entry.kind)
        if nesting is None:
            raise ExtractError(f"{where}: unknown block kind {entry.kind}")
        hcl_body = self.module.hcl_fns.get(struct)
        if hcl_body is None:
            raise ExtractError(f"{where}: no {lower_first(struct)}ToHclTerraform")
        inner = self.block(self.struct_members(struct), hcl_entries(hcl_body), where)
        block: dict[str, Any] = {"nesting_mode": nesting, "block": inner}
        if nesting != "single":
            if member.required:
                block["min_items"] = 1
            if single:
                block["max_items"] = 1
        return block


def provider_struct_flags(assembly: dict, struct: str, hcl_body: str) -> list[Member]:
    """Flags of a provider nested block's members, from the assembly's `optional`."""
    fqn = f"@cdktn/provider-google.provider.{struct}"
    props = {p["name"]: p for p in assembly["types"][fqn]["properties"]}
    flags = []
    for m in re.finditer(r"(\w+): \{\n\s+value: [^\n]*\(struct\.(\w+)\)", hcl_body):
        prop = props[m.group(2)]
        anchor = f"#{m.group(1)} "
        if anchor not in json.dumps(prop.get("docs", {})):
            raise ExtractError(f"{fqn}.{m.group(2)}: doc link does not name {m.group(1)}")
        optional = bool(prop.get("optional"))
        flags.append(Member(m.group(1), False, optional, not optional, ""))
    return flags


def strip_empty(block: dict) -> dict:
    """Drop empty attributes/block_types maps to keep the file small."""
    out = {k: v for k, v in block.items() if v}
    for nested in out.get("block_types", {}).values():
        nested["block"] = strip_empty(nested["block"])
    return out


def used_types(root: Path) -> tuple[set[str], set[str]]:
    resources: set[str] = set()
    data: set[str] = set()
    for path in sorted(root.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        for kind, name in TYPE_RE.findall(path.read_text(encoding="utf-8")):
            (resources if kind == "resource" else data).add(name)
    return resources, data


def download_wheel(dest: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--dest",
            str(dest),
            f"{PACKAGE}=={PACKAGE_VERSION}",
        ],
        check=True,
    )
    return next(dest.glob("*.whl"))


def read_tarball(wheel: Path) -> tarfile.TarFile:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
        data = zf.read(name)
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def extract(wheel: Path, resources: set[str], data_sources: set[str]) -> dict:
    tar = read_tarball(wheel)
    js_by_dir: dict[str, list[str]] = {}
    assembly_member = None
    package_json = None
    for member in tar.getmembers():
        name = member.name
        if name == "package/.jsii":
            assembly_member = member
        elif name == "package/package.json":
            package_json = member
        elif name.startswith("package/lib/") and name.endswith(".js"):
            top = name.split("/")[2]
            handle = tar.extractfile(member)
            if handle is None:
                continue
            js_by_dir.setdefault(top, []).append(handle.read().decode("utf-8"))
    if assembly_member is None or package_json is None:
        raise ExtractError("no .jsii assembly in the wheel")
    assembly_file = tar.extractfile(assembly_member)
    package_file = tar.extractfile(package_json)
    if assembly_file is None or package_file is None:
        raise ExtractError("unreadable .jsii or package.json")
    assembly = json.load(assembly_file)
    package = json.load(package_file)

    # Which directory declares which Terraform type.
    owners: dict[tuple[str, str], str] = {}
    provider_version = None
    for top, files in js_by_dir.items():
        text = files[0] if len(files) == 1 else "\n".join(files)
        for m in re.finditer(
            r"^class (\w+) extends cdktn\.(TerraformResource|TerraformDataSource) \{\n"
            r'.*?static tfResourceType = "([\w-]+)";',
            text,
            re.MULTILINE | re.DOTALL,
        ):
            kind = "resource" if m.group(2) == "TerraformResource" else "data"
            owners[(kind, m.group(3))] = top
        version = re.search(r"providerVersion: '([\d.]+)'", text)
        if version:
            provider_version = provider_version or version.group(1)

    def type_schema(kind: str, tf_type: str) -> dict:
        top = owners.get((kind, tf_type))
        if top is None:
            raise ExtractError(f"{kind} type {tf_type} is not in {PACKAGE} {PACKAGE_VERSION}")
        module = load_module(js_by_dir[top])
        base = "cdktn.TerraformResource" if kind == "resource" else "cdktn.TerraformDataSource"
        classes = [
            (name, body)
            for name, (b, body) in module.classes.items()
            if b == base and f'static tfResourceType = "{tf_type}";' in body
        ]
        if len(classes) != 1:
            raise ExtractError(f"{tf_type}: {len(classes)} classes")
        body = classes[0][1]
        extractor = Extractor(module, tf_type)
        block = extractor.block(members(body), hcl_entries(synthesize_hcl_body(body)), tf_type)
        return {"version": 0, "block": strip_empty(block)}

    provider_module = load_module(js_by_dir["provider"])
    provider_cls = [
        body for b, body in provider_module.classes.values() if b == "cdktn.TerraformProvider"
    ]
    if len(provider_cls) != 1:
        raise ExtractError("no provider class")
    provider_flags = [m for m in members(provider_cls[0]) if m.name != "alias"]
    provider_entries = hcl_entries(synthesize_hcl_body(provider_cls[0]))
    provider_entries.pop("alias", None)  # a Terraform meta-argument, not a schema attribute
    for entry in provider_entries.values():
        if entry.is_block:
            fn = re.search(r"(\w+)ToHclTerraform\b", entry.value)
            if fn is None:
                raise ExtractError(f"provider: no struct mapper in {entry.value!r}")
            struct = upper_first(fn.group(1))
            hcl_body = provider_module.hcl_fns[struct]
            # No OutputReference class for provider blocks: flags from the assembly.
            provider_module.classes[struct + "OutputReference"] = (
                "",
                "".join(
                    f"    // {f.name} - computed: false, optional: {str(f.optional).lower()},"
                    f" required: {str(f.required).lower()}\n"
                    for f in provider_struct_flags(assembly, struct, hcl_body)
                ),
            )
    provider_block = Extractor(provider_module, "provider").block(
        provider_flags, provider_entries, "provider"
    )

    return {
        "format_version": "1.0",
        "x_source": {
            "package": f"{PACKAGE}=={PACKAGE_VERSION} (PyPI)",
            "assembly": f"{package['name']}@{package['version']}",
            "provider_version": provider_version,
            "regenerate": "terraform/validate/extract_schema.py",
        },
        "provider_schemas": {
            PROVIDER_ADDRESS: {
                "provider": {"version": 0, "block": strip_empty(provider_block)},
                "resource_schemas": {t: type_schema("resource", t) for t in sorted(resources)},
                "data_source_schemas": {t: type_schema("data", t) for t in sorted(data_sources)},
            }
        },
    }


def render(schema: dict) -> str:
    """Compact JSON, one line per type, so that a diff shows which type changed."""
    provider = schema["provider_schemas"][PROVIDER_ADDRESS]

    def dump(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def section(name: str) -> str:
        items = provider[name]
        lines = [f"    {json.dumps(k)}:{dump(v)}" for k, v in items.items()]
        return f'  "{name}":{{\n' + ",\n".join(lines) + "\n  }"

    head = {k: v for k, v in schema.items() if k != "provider_schemas"}
    return (
        "{\n"
        + "".join(f"{json.dumps(k)}:{dump(v)},\n" for k, v in head.items())
        + f'"provider_schemas":{{"{PROVIDER_ADDRESS}":{{\n'
        + f'  "provider":{dump(provider["provider"])},\n'
        + section("resource_schemas")
        + ",\n"
        + section("data_source_schemas")
        + "\n}}}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help=f"a {PACKAGE} wheel (default: pip download)")
    parser.add_argument("--types", nargs="*", default=[], help="extra types: resource.X / data.X")
    parser.add_argument("--output", type=Path, default=SCHEMA_FILE)
    parser.add_argument("--check", action="store_true", help="fail if --output is out of date")
    args = parser.parse_args(argv)

    resources, data_sources = used_types(TERRAFORM_DIR)
    for extra in args.types:
        kind, _, name = extra.partition(".")
        (resources if kind == "resource" else data_sources).add(name)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        text = render(extract(wheel, resources, data_sources))
    if args.check:
        if args.output.read_text(encoding="utf-8") != text:
            print(f"{args.output} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{args.output.name}: up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(
        f"wrote {args.output} ({len(text) // 1024} KiB): "
        f"{len(resources)} resource and {len(data_sources)} data-source types"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
