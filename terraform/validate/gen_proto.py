"""Regenerate tfplugin6.proto and its Python modules (tfplugin6_pb2.py,
tfplugin6_pb2_grpc.py) used by the schema-only provider.

Source: Terraform's plugin protocol 6.5 (`tfplugin6`, MPL-2.0, HashiCorp) as
compiled into the PyPI package `tfplugin-proto-all` 0.1.0 (module
`tfplugin_proto/tfplugin6_5_pb2.py`). That package targets an older protobuf
runtime, so it is not installed: its serialized FileDescriptorProto is read from the
wheel, written back as .proto text, compiled again with grpcio-tools (the protoc
bundled with the protobuf runtime pinned here), and the result is checked to be
the very same descriptor. Protocol 6.5 is all that `terraform init`/`validate`
need; newer Terraform releases speak to older 6.x servers.

Usage (from the repository root, needs grpcio-tools, which bqemulator pulls in):
    .venv/bin/python terraform/validate/gen_proto.py
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from google.protobuf import descriptor_pb2

HERE = Path(__file__).resolve().parent
PACKAGE = "tfplugin-proto-all==0.1.0"
MODULE = "tfplugin_proto/tfplugin6_5_pb2.py"
PROTO = "tfplugin6.proto"

FDP = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    FDP.TYPE_DOUBLE: "double",
    FDP.TYPE_FLOAT: "float",
    FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64",
    FDP.TYPE_INT32: "int32",
    FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32",
    FDP.TYPE_BOOL: "bool",
    FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes",
    FDP.TYPE_UINT32: "uint32",
    FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64",
    FDP.TYPE_SINT32: "sint32",
    FDP.TYPE_SINT64: "sint64",
}


def original_descriptor(dest: Path) -> descriptor_pb2.FileDescriptorProto:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(dest), PACKAGE],
        check=True,
    )
    wheel = next(dest.glob("*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read(MODULE).decode("utf-8")
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "AddSerializedFile"
        ):
            arg = node.args[0]
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, bytes)):
                break
            return descriptor_pb2.FileDescriptorProto.FromString(arg.value)
    raise SystemExit(f"no serialized descriptor in {MODULE}")


def type_name(field: descriptor_pb2.FieldDescriptorProto, package: str) -> str:
    if field.type in SCALARS:
        return SCALARS[field.type]
    return field.type_name.removeprefix(f".{package}.")


def render_message(
    msg: descriptor_pb2.DescriptorProto, package: str, indent: str, scope: str
) -> list[str]:
    lines = [f"{indent}message {msg.name} {{"]
    inner = indent + "  "
    maps = {m.name: m for m in msg.nested_type if m.options.map_entry}
    for enum in msg.enum_type:
        lines += render_enum(enum, inner)
    for nested in msg.nested_type:
        if not nested.options.map_entry:
            lines += render_message(nested, package, inner, f"{scope}.{msg.name}")
    real_oneofs: dict[int, list[descriptor_pb2.FieldDescriptorProto]] = {}
    for field in msg.field:
        if field.HasField("oneof_index") and not field.proto3_optional:
            real_oneofs.setdefault(field.oneof_index, []).append(field)
    done_oneofs: set[int] = set()
    for field in msg.field:
        if field.HasField("oneof_index") and not field.proto3_optional:
            index = field.oneof_index
            if index in done_oneofs:
                continue
            done_oneofs.add(index)
            lines.append(f"{inner}oneof {msg.oneof_decl[index].name} {{")
            lines += [render_field(f, package, inner + "  ", maps) for f in real_oneofs[index]]
            lines.append(f"{inner}}}")
            continue
        lines.append(render_field(field, package, inner, maps))
    lines.append(f"{indent}}}")
    return lines


def render_field(
    field: descriptor_pb2.FieldDescriptorProto,
    package: str,
    indent: str,
    maps: dict[str, descriptor_pb2.DescriptorProto],
) -> str:
    entry = field.type_name.rsplit(".", 1)[-1]
    if field.label == FDP.LABEL_REPEATED and entry in maps and field.type == FDP.TYPE_MESSAGE:
        key, value = maps[entry].field
        kind = f"map<{type_name(key, package)}, {type_name(value, package)}>"
    else:
        kind = type_name(field, package)
        if field.label == FDP.LABEL_REPEATED:
            kind = f"repeated {kind}"
        elif field.proto3_optional:
            kind = f"optional {kind}"
    options = " [deprecated = true]" if field.options.deprecated else ""
    if field.options.ListFields() and not (
        field.options.deprecated and len(field.options.ListFields()) == 1
    ):
        raise SystemExit(f"unsupported field options on {field.name}")
    return f"{indent}{kind} {field.name} = {field.number}{options};"


def render_enum(enum: descriptor_pb2.EnumDescriptorProto, indent: str) -> list[str]:
    lines = [f"{indent}enum {enum.name} {{"]
    lines += [f"{indent}  {v.name} = {v.number};" for v in enum.value]
    return [*lines, f"{indent}}}"]


def render(fd: descriptor_pb2.FileDescriptorProto) -> str:
    lines = [
        "// Terraform Plugin RPC protocol version 6.5 (tfplugin6), MPL-2.0, HashiCorp.",
        f"// Rendered by gen_proto.py from the descriptor compiled into {PACKAGE} (PyPI).",
        "// Do not edit: regenerate with `.venv/bin/python terraform/validate/gen_proto.py`.",
        "",
        f'syntax = "{fd.syntax or "proto2"}";',
        f"package {fd.package};",
    ]
    if fd.options.go_package:
        lines.append(f'option go_package = "{fd.options.go_package}";')
    for dep in fd.dependency:
        lines.append(f'import "{dep}";')
    lines.append("")
    for enum in fd.enum_type:
        lines += [*render_enum(enum, ""), ""]
    for msg in fd.message_type:
        lines += [*render_message(msg, fd.package, "", ""), ""]
    for service in fd.service:
        lines.append(f"service {service.name} {{")
        for method in service.method:
            req = method.input_type.removeprefix(f".{fd.package}.")
            resp = method.output_type.removeprefix(f".{fd.package}.")
            cs = "stream " if method.client_streaming else ""
            ss = "stream " if method.server_streaming else ""
            lines.append(f"  rpc {method.name}({cs}{req}) returns ({ss}{resp});")
        lines += ["}", ""]
    return "\n".join(lines)


def clear_json_names(fd: descriptor_pb2.FileDescriptorProto) -> None:
    def walk(msg: descriptor_pb2.DescriptorProto) -> None:
        for field in msg.field:
            field.ClearField("json_name")
        for nested in msg.nested_type:
            walk(nested)

    for msg in fd.message_type:
        walk(msg)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        original = original_descriptor(work)
        text = render(original)
        (HERE / PROTO).write_text(text, encoding="utf-8")
        descriptor_set = work / "set.pb"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"--proto_path={HERE}",
                f"--python_out={HERE}",
                f"--grpc_python_out={HERE}",
                f"--descriptor_set_out={descriptor_set}",
                PROTO,
            ],
            check=True,
        )
        compiled = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file[0]
    original.name = compiled.name
    clear_json_names(compiled)  # --descriptor_set_out adds them; the embedded copy has none
    if compiled != original:
        raise SystemExit("the rendered .proto does not compile back to the packaged descriptor")
    print(f"wrote {PROTO}, tfplugin6_pb2.py, tfplugin6_pb2_grpc.py (descriptor identical)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
