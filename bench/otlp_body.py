"""Writes one OTLP ExportLogsServiceRequest (protobuf) with RECORDS log records shaped like an
instrumented service's: a resource with service and k8s attributes, a scope, and per record a
timestamp, severity, a message body, trace/span ids and a handful of attributes.

Usage: otlp_body.py OUT_FILE [RECORDS]. Uses the opentelemetry-proto package (installed with
the OpenTelemetry SDK, see tests/python/requirements.txt).
"""
import random
import sys

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100
rng = random.Random(42)


def kv(k, v):
    if isinstance(v, bool):
        return KeyValue(key=k, value=AnyValue(bool_value=v))
    if isinstance(v, int):
        return KeyValue(key=k, value=AnyValue(int_value=v))
    return KeyValue(key=k, value=AnyValue(string_value=v))


resource = Resource(attributes=[
    kv("service.name", "checkout"), kv("service.version", "1.4.2"),
    kv("k8s.namespace.name", "shop"), kv("k8s.pod.name", "checkout-7d9f8b6c4-x2x9z"),
    kv("host.name", "node-3"),
])
records = []
for i in range(n):
    records.append(LogRecord(
        time_unix_nano=1_763_800_000_000_000_000 + i * 1_000_000,
        severity_number=rng.choice([9, 9, 9, 13, 17]),
        severity_text=rng.choice(["INFO", "INFO", "INFO", "WARN", "ERROR"]),
        body=AnyValue(string_value="order %d processed for user u%d in %d ms" % (i, rng.randrange(10000), rng.randrange(500))),
        attributes=[kv("http.method", rng.choice(["GET", "POST"])), kv("http.route", "/api/orders/{id}"),
                    kv("http.status_code", rng.choice([200, 200, 201, 404, 500])), kv("user.id", "u%d" % rng.randrange(10000))],
        trace_id=rng.randbytes(16), span_id=rng.randbytes(8), flags=1,
    ))
req = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
    resource=resource,
    scope_logs=[ScopeLogs(scope=InstrumentationScope(name="checkout.logger", version="1.0"), log_records=records)],
)])
open(out, "wb").write(req.SerializeToString())
