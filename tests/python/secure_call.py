"""Calls a TLS-protected, authenticated OTLP endpoint with a real client and reports the result.

Usage: secure_call.py CLIENT ENDPOINT CA TOKEN [CERT KEY]
  CLIENT   grpcio (one raw logs Export call), sdk-grpc or sdk-http (the OpenTelemetry Python SDK's
           OTLP span exporter, gRPC or HTTP, exporting one span)
  ENDPOINT host:port for gRPC, https://host:port for HTTP
  CA       PEM file of the CA to trust
  TOKEN    sent as "authorization: Bearer TOKEN"; "-" sends no credentials
  CERT KEY a client certificate and key, for mutual TLS
Prints {"result": "OK" | a gRPC status name | "FAILURE"}.
"""
import json
import os
import sys

# requests lets these override a session's CA file (psf/requests#3829), which is how the SDK's
# HTTP exporter applies certificate_file; a machine that sets them would otherwise ignore it.
for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(var, None)

import grpc

client, endpoint, ca, token = sys.argv[1:5]
cert, key = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 6 else (None, None)
read = lambda p: open(p, "rb").read() if p else None
headers = {} if token == "-" else {"authorization": "Bearer " + token}

if client == "grpcio":
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    req = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                scope_logs=[ScopeLogs(log_records=[LogRecord(body=AnyValue(string_value="grpcio"))])]
            )
        ]
    )
    creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
    with grpc.secure_channel(endpoint, creds) as channel:
        call = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        try:
            call(req.SerializeToString(), timeout=10, metadata=list(headers.items()))
            result = "OK"
        except grpc.RpcError as e:
            result = e.code().name
else:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    if client == "sdk-grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
        exporter = OTLPSpanExporter(endpoint=endpoint, credentials=creds, headers=headers, timeout=10)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=endpoint + "/v1/traces",
            certificate_file=ca,
            client_certificate_file=cert,
            client_key_file=key,
            headers=headers,
            timeout=10,
        )
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "secure"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("secured"):
        pass
    outcome = exporter.export(memory.get_finished_spans())
    result = "OK" if outcome.name == "SUCCESS" else "FAILURE"
    exporter.shutdown()
print(json.dumps({"result": result}))
