"""Sends N spans and a few metrics through the OpenTelemetry Python SDK's OTLP exporters.

Usage: send_telemetry.py ENDPOINT N [http|grpc] [all]. ENDPOINT is host:port (gRPC) or
http://host:port (HTTP; /v1/traces and /v1/metrics are added). With `all`, a gauge and an
exponential histogram are recorded too (every kind of instrument). Prints, as JSON, every span exactly as the SDK
exported it (a copy goes to an in-memory exporter) and the metric values recorded, so the test
can compare what arrives field by field.
"""
import json
import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

endpoint, n = sys.argv[1], int(sys.argv[2])
protocol = sys.argv[3] if len(sys.argv) > 3 else "http"
every_kind = len(sys.argv) > 4 and sys.argv[4] == "all"
if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    spans_out = OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=30)
    metrics_out = OTLPMetricExporter(endpoint=endpoint, insecure=True, timeout=30)
else:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    spans_out = OTLPSpanExporter(endpoint=endpoint + "/v1/traces", timeout=30)
    metrics_out = OTLPMetricExporter(endpoint=endpoint + "/v1/metrics", timeout=30)

resource = Resource.create({"service.name": "checkout", "service.version": "1.4.2"})
tracing = TracerProvider(resource=resource)
memory = InMemorySpanExporter()
tracing.add_span_processor(SimpleSpanProcessor(memory))
tracing.add_span_processor(BatchSpanProcessor(spans_out, max_export_batch_size=50))
tracer = tracing.get_tracer("shop", "2.0.0")

with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as root:
    for i in range(n - 1):
        with tracer.start_as_current_span(
            "step %d" % i,
            kind=SpanKind.CLIENT,
            attributes={"order.id": i, "ok": i % 2 == 0, "ratio": i / 4, "tags": ["a", "b"]},
            links=[Link(root.get_span_context(), {"why": "parent"})],
        ) as span:
            span.add_event("retry", {"attempt": i})
            if i % 3 == 0:
                span.set_status(Status(StatusCode.ERROR, "declined %d" % i))

views = []
if every_kind:
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

    views = [View(instrument_name="payload", aggregation=ExponentialBucketHistogramAggregation(max_size=20))]
metering = MeterProvider(
    resource=resource,
    metric_readers=[PeriodicExportingMetricReader(metrics_out, export_interval_millis=3_600_000)],
    views=views,
)
meter = metering.get_meter("shop", "2.0.0")
orders = meter.create_counter("orders", unit="1", description="Orders placed")
latency = meter.create_histogram("latency", unit="ms")
for i in range(n):
    orders.add(2, {"region": "eu" if i % 2 else "us"})
    latency.record(i * 10.0)
extra = {}
if every_kind:
    temperature = meter.create_gauge("temperature", unit="Cel")
    payload = meter.create_histogram("payload", unit="By")
    for i in range(n):
        temperature.set(20.0 + i, {"region": "eu" if i % 2 else "us"})
        payload.record(float(2 ** (i % 10)))
    extra = {
        "temperature": {r: 20.0 + max(i for i in range(n) if (i % 2 == 1) == (r == "eu")) for r in ("eu", "us")},
        "payload": {"count": n, "sum": sum(float(2 ** (i % 10)) for i in range(n))},
    }

tracing.force_flush()
tracing.shutdown()
metering.force_flush()
metering.shutdown()


def attrs(a):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (a or {}).items()}


spans = []
for s in memory.get_finished_spans():
    c = s.get_span_context()
    spans.append(
        {
            "name": s.name,
            "trace_id": format(c.trace_id, "032x"),
            "span_id": format(c.span_id, "016x"),
            "parent_span_id": format(s.parent.span_id, "016x") if s.parent else "",
            "kind": s.kind.value + 1,  # OTLP numbers kinds from 1 (INTERNAL)
            "start": s.start_time,
            "end": s.end_time,
            "attributes": attrs(s.attributes),
            "events": [{"name": e.name, "time": e.timestamp, "attributes": attrs(e.attributes)} for e in s.events],
            "links": [
                {"trace_id": format(l.context.trace_id, "032x"), "span_id": format(l.context.span_id, "016x"), "attributes": attrs(l.attributes)}
                for l in s.links
            ],
            "status": {"code": s.status.status_code.value, "message": s.status.description or ""},
        }
    )
print(json.dumps({"spans": spans, "orders": {"eu": 2 * (n // 2), "us": 2 * (n - n // 2)},
                  "latency": {"count": n, "sum": sum(i * 10.0 for i in range(n))}, **extra}))
