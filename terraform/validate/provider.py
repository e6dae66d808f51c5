"""A schema-only hashicorp/google provider for `terraform validate`, offline.

It speaks Terraform's plugin protocol 6 (tfplugin6) over gRPC on a unix socket and
serves the schema in google-schema.json (see extract_schema.py). Terraform reaches it
through TF_REATTACH_PROVIDERS, so nothing is downloaded. It answers what `terraform
init -backend=false` and `terraform validate` ask: GetMetadata, GetProviderSchema,
ValidateProviderConfig, ValidateResourceConfig, ValidateDataResourceConfig,
StopProvider (and go-plugin's health check and controller). Terraform core checks
arguments, blocks, types and references against the schema; the one provider-side
check done here is the SDK's "Computed attributes cannot be set" (a value given to a
computed-only attribute, which core lets through). Value validators of the real
provider (enums, ConflictsWith...) are not in the schema and are not run.
Everything else (plan, apply, read...) is UNIMPLEMENTED.

Usage: provider.py --socket PATH [--schema FILE]
Once listening it prints one line, the TF_REATTACH_PROVIDERS value, and serves until
SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tfplugin6_pb2 as pb  # noqa: E402
import tfplugin6_pb2_grpc as pb_grpc  # noqa: E402

PROVIDER_ADDRESS = "registry.terraform.io/hashicorp/google"
SCHEMA_FILE = HERE / "google-schema.json"
NESTING = {
    "single": pb.Schema.NestedBlock.SINGLE,
    "list": pb.Schema.NestedBlock.LIST,
    "set": pb.Schema.NestedBlock.SET,
    "map": pb.Schema.NestedBlock.MAP,
    "group": pb.Schema.NestedBlock.GROUP,
}


def block_proto(block: dict[str, Any]) -> pb.Schema.Block:
    """A `terraform providers schema -json` block as a tfplugin6 Schema.Block."""
    out = pb.Schema.Block()
    for name, attr in sorted(block.get("attributes", {}).items()):
        out.attributes.append(
            pb.Schema.Attribute(
                name=name,
                # tfplugin6 carries attribute types as JSON-encoded cty types, which is
                # exactly the "type" of the JSON schema format.
                type=json.dumps(attr["type"]).encode(),
                required=attr.get("required", False),
                optional=attr.get("optional", False),
                computed=attr.get("computed", False),
                sensitive=attr.get("sensitive", False),
                deprecated=attr.get("deprecated", False),
            )
        )
    for name, nested in sorted(block.get("block_types", {}).items()):
        out.block_types.append(
            pb.Schema.NestedBlock(
                type_name=name,
                block=block_proto(nested["block"]),
                nesting=NESTING[nested["nesting_mode"]],
                min_items=nested.get("min_items", 0),
                max_items=nested.get("max_items", 0),
            )
        )
    return out


def schema_proto(schema: dict[str, Any]) -> pb.Schema:
    return pb.Schema(version=schema.get("version", 0), block=block_proto(schema["block"]))


def load_schema(path: Path) -> tuple[dict[str, Any], pb.GetProviderSchema.Response]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    provider = doc["provider_schemas"][PROVIDER_ADDRESS]
    return provider, pb.GetProviderSchema.Response(
        provider=schema_proto(provider["provider"]),
        resource_schemas={
            k: schema_proto(v) for k, v in provider.get("resource_schemas", {}).items()
        },
        data_source_schemas={
            k: schema_proto(v) for k, v in provider.get("data_source_schemas", {}).items()
        },
        server_capabilities=pb.ServerCapabilities(get_provider_schema_optional=False),
    )


UNKNOWN = object()  # cty's msgpack encoding of an unknown value is extension type 0


def decode(value: pb.DynamicValue) -> Any:
    if value.msgpack:
        return msgpack.unpackb(
            value.msgpack, raw=False, strict_map_key=False, ext_hook=lambda code, data: UNKNOWN
        )
    return json.loads(value.json) if value.json else None


def attr_step(name: str) -> pb.AttributePath.Step:
    return pb.AttributePath.Step(attribute_name=name)


def computed_only_values(
    block: dict[str, Any], value: Any, path: list[pb.AttributePath.Step]
) -> list[pb.Diagnostic]:
    """The SDK's check: a computed-only attribute given a value (known or not)."""
    if not isinstance(value, dict):
        return []
    diags = []
    for name, attr in block.get("attributes", {}).items():
        settable = attr.get("optional") or attr.get("required")
        if attr.get("computed") and not settable and value.get(name) is not None:
            diags.append(
                pb.Diagnostic(
                    severity=pb.Diagnostic.ERROR,
                    summary="Value for unconfigurable attribute",
                    detail=f'Computed attributes cannot be set, but a value was set for "{name}".',
                    attribute=pb.AttributePath(steps=[*path, attr_step(name)]),
                )
            )
    for name, nested in block.get("block_types", {}).items():
        inner = value.get(name)
        here = [*path, attr_step(name)]
        if nested["nesting_mode"] == "single" or isinstance(inner, dict):
            diags += computed_only_values(nested["block"], inner, here)
        elif isinstance(inner, list):
            for i, item in enumerate(inner):
                # A set element has no index to point at: point at the block.
                step = (
                    []
                    if nested["nesting_mode"] == "set"
                    else [pb.AttributePath.Step(element_key_int=i)]
                )
                diags += computed_only_values(nested["block"], item, here + step)
    return diags


class SchemaOnlyProvider(pb_grpc.ProviderServicer):
    def __init__(self, schema: pb.GetProviderSchema.Response, doc: dict[str, Any]) -> None:
        self.schema = schema
        self.resources = doc.get("resource_schemas", {})
        self.data_sources = doc.get("data_source_schemas", {})

    def check(self, schemas: dict[str, Any], type_name: str, config: pb.DynamicValue) -> list:
        schema = schemas.get(type_name)
        if schema is None:  # core refuses unknown types before asking
            return []
        return computed_only_values(schema["block"], decode(config), [])

    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(
            server_capabilities=self.schema.server_capabilities,
            resources=[
                pb.GetMetadata.ResourceMetadata(type_name=t) for t in self.schema.resource_schemas
            ],
            data_sources=[
                pb.GetMetadata.DataSourceMetadata(type_name=t)
                for t in self.schema.data_source_schemas
            ],
        )

    def GetProviderSchema(self, request, context):
        return self.schema

    def ValidateProviderConfig(self, request, context):
        return pb.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request, context):
        diags = self.check(self.resources, request.type_name, request.config)
        return pb.ValidateResourceConfig.Response(diagnostics=diags)

    def ValidateDataResourceConfig(self, request, context):
        diags = self.check(self.data_sources, request.type_name, request.config)
        return pb.ValidateDataResourceConfig.Response(diagnostics=diags)

    def StopProvider(self, request, context):
        return pb.StopProvider.Response()


def raw_unary(handler):
    """A unary gRPC method on raw bytes (for go-plugin's own small services)."""
    return grpc.unary_unary_rpc_method_handler(
        handler, request_deserializer=None, response_serializer=None
    )


def go_plugin_services() -> list[grpc.GenericRpcHandler]:
    # grpc.health.v1 Check -> HealthCheckResponse{status: SERVING} (field 1 = 1).
    health = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": raw_unary(lambda req, ctx: b"\x08\x01")}
    )
    # go-plugin's controller: Terraform may ask a reattached ("test mode") plugin to
    # shut down when it is done; it stays up for the next command and is stopped by
    # whoever started it.
    controller = grpc.method_handlers_generic_handler(
        "plugin.GRPCController", {"Shutdown": raw_unary(lambda req, ctx: b"")}
    )
    return [health, controller]


def serve(socket_path: Path, schema_path: Path) -> None:
    doc, schema = load_schema(schema_path)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_ProviderServicer_to_server(SchemaOnlyProvider(schema, doc), server)
    server.add_generic_rpc_handlers(go_plugin_services())
    if socket_path.exists():
        socket_path.unlink()
    if not server.add_insecure_port(f"unix:{socket_path}"):
        raise SystemExit(f"cannot listen on {socket_path}")
    server.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    reattach = {
        PROVIDER_ADDRESS: {
            "Protocol": "grpc",
            "ProtocolVersion": 6,
            "Pid": os.getpid(),
            "Test": True,
            "Addr": {"Network": "unix", "String": str(socket_path)},
        }
    }
    print(json.dumps(reattach), flush=True)
    stop.wait()
    server.stop(grace=1).wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="schema-only google provider (tfplugin6)")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--schema", type=Path, default=SCHEMA_FILE)
    args = parser.parse_args(argv)
    serve(args.socket, args.schema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
