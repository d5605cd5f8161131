"""Sends N log records through the OpenTelemetry Python SDK's OTLP/HTTP or OTLP/gRPC exporter.

Usage: send_logs.py ENDPOINT N [http|grpc]. Prints {"trace_id": ..., "span_id": ...} of the span the records
were logged under, so the test can compare ids field by field.
"""
import json
import logging
import sys

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

endpoint, n = sys.argv[1], int(sys.argv[2])
protocol = sys.argv[3] if len(sys.argv) > 3 else "http"
if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=30)
else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint=endpoint, timeout=30)
resource = Resource.create({"service.name": "checkout", "service.version": "1.4.2"})
provider = LoggerProvider(resource=resource)
provider.add_log_record_processor(
    BatchLogRecordProcessor(exporter, max_export_batch_size=100)
)
log = logging.getLogger("shop")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))

tracer = TracerProvider(resource=resource).get_tracer("shop")
with tracer.start_as_current_span("checkout") as span:
    ctx = span.get_span_context()
    for i in range(n):
        log.warning("order %d failed", i, extra={"order.id": i, "user": "u%d" % i})
provider.force_flush()
provider.shutdown()
print(json.dumps({"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}))
