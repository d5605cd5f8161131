#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/seeds/<target>/): small valid inputs for each target, from
which libFuzzer mutates. Protobuf is encoded by hand here, so the script needs only Python."""
import gzip, json, os, zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, payload):
    """A length-delimited field."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def vfield(num, v):
    return varint(num << 3) + varint(v)


def f64(num, v):
    return varint(num << 3 | 1) + v.to_bytes(8, "little")


def kv(k, v):
    return field(1, k.encode()) + field(2, field(1, v.encode()))


resource = field(1, kv("service.name", "checkout") + kv("k8s.pod.uid", "uid-1"))
scope = field(1, b"shop") + field(2, b"1.0")
record = (f64(1, 1764288000000000000) + vfield(2, 9) + field(3, b"INFO")
          + field(5, field(1, b"order 42 paid")) + field(6, kv("user", "u1"))
          + field(9, b"\x01" * 16) + field(10, b"\x02" * 8))
logs = field(1, field(1, resource) + field(2, field(1, scope) + field(2, record)))
span = (field(1, b"\x01" * 16) + field(2, b"\x02" * 8) + field(5, b"GET /")
        + vfield(6, 2) + f64(7, 1) + f64(8, 2) + field(9, kv("http.method", "GET")))
traces = field(1, field(1, resource) + field(2, field(1, scope) + field(2, span)))
# as_double 1.5 (its IEEE 754 bits).
point = field(7, kv("state", "used")) + f64(3, 5) + f64(4, 0x3FF8000000000000)
gauge = field(1, b"system.memory.usage") + field(3, b"By") + field(5, field(1, point))
metrics = field(1, field(1, resource) + field(2, field(1, scope) + field(2, gauge)))

# Elasticsearch steering and document shapes, for the `otel` documents written from encoded
# records against those from decoded ones: routing attributes on record, scope and resource,
# geo points, `event.name`, `_id` and pipeline attributes, every kind of body, overflowing
# numbers, a receiver's scope name, and a resource and a scope left out.
import struct


def dv(num, d):
    return f64(num, struct.unpack("<Q", struct.pack("<d", d))[0])


def kva(k, anyvalue):
    return field(1, k.encode()) + field(2, anyvalue)


geo_resource = b"".join(field(1, a) for a in [
    kv("data_stream.namespace", "prod"), kva("host.geo.location.lat", dv(4, 52.5)),
    kva("host.geo.location.lon", dv(4, 13.4)), kv("service.name", "cart")])
receiver_scope = (field(1, b"github.com/x/receiver/hostmetricsreceiver/internal") + field(2, b"2")
                  + field(3, kv("data_stream.dataset", "scoped")) + vfield(4, 3))
kvlist = field(6, field(1, kv("a", "b")) + field(1, kva("n", vfield(3, 7))))
bodies = [
    field(6, field(1, kv("k", "v")) + field(1, kva("deep", kvlist))),       # map
    field(5, field(1, kvlist) + field(1, kvlist)),                          # array of maps
    field(5, field(1, field(1, b"x")) + field(1, vfield(3, 2**64 - 5))),    # array, mixed
    field(5, b""),                                                          # empty array
    b"",                                                                    # unset
    field(7, b"\x00\xff"), dv(4, -0.5), vfield(2, 1), vfield(3, 2**64 - 5),
    field(1, 'caf\u00e9 "quoted"\n'.encode()),
]
steering = [
    [kv("event.name", "checkout.done"), kv("data_stream.dataset", ""), kv("data_stream.dataset", "mine"),
     kv("elasticsearch.document_id", "doc-1"), kv("elasticsearch.ingest_pipeline", "pipe"),
     kva("a.geo.location.lat", dv(4, 1.5)), kva("a.geo.location.lon", dv(4, 2.5))],
    [kva("data_stream.namespace", vfield(3, 1)), kv("elasticsearch.index", "static-logs"),
     field(1, b"no.value")],
    [kva("b.geo.location.lat", field(1, b"not a double")), kv("event.name", ""), kv("plain", "x")],
]
records = b""
for i, body in enumerate(bodies):
    r = (dv(11, 0) if i % 3 else f64(1, 1764288000000000000 + i)) + f64(11, 1764288000000000999)
    r += vfield(2, 300 if i == 0 else i) + field(3, b"WARN" if i % 2 else b"")
    r += field(5, body) + field(6, b"") + b"".join(field(6, a) for a in steering[i % 3])
    r += vfield(7, 2**33 + i) + (field(12, b"named") if i == 1 else b"")
    r += field(9, b"\x00" * 16 if i == 2 else b"\x03" * 16) + field(10, b"\x04" * 8 if i % 2 else b"")
    records += field(2, r)
es_logs = (field(1, field(1, geo_resource) + field(2, field(1, receiver_scope) + records + field(3, b"s-url"))
                 + field(3, b"r-url"))
           + field(1, field(2, field(2, f64(1, 5)))))

json_logs = json.dumps({"resourceLogs": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "checkout"}}]},
    "scopeLogs": [{"logRecords": [{"timeUnixNano": "1764288000000000000",
                                   "body": {"stringValue": "hi"}}]}]}]}).encode()
json_traces = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
    "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
    "name": "GET /"}]}]}]}).encode()
json_metrics = json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
    "name": "up", "gauge": {"dataPoints": [{"asInt": "1"}]}}]}]}]}).encode()

line = b'127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326\n' * 4
bulk = json.dumps({"took": 3, "errors": True, "items": [
    {"create": {"_index": "logs-a", "_id": "1", "status": 201}},
    {"create": {"_index": "logs-a", "_id": "2", "status": 429,
                "error": {"type": "es_rejected_execution_exception", "reason": "busy"}}},
    {"create": {"_index": "logs-a", "_id": "3", "status": 409}}]}).encode()
config = open(os.path.join(HERE, "..", "src", "default.yaml"), "rb").read()

def grpc_frame(payload, compressed=False):
    return bytes([int(compressed)]) + len(payload).to_bytes(4, "big") + payload


def zstd(data):
    """zstd by the command-line tool (Python's standard library has no zstd before 3.14)."""
    import subprocess
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout


seeds = {
    "otlp_logs": {"logs": logs, "es_steering": es_logs},
    "otlp_traces_metrics": {"traces": b"\x02" + traces, "metrics": b"\x03" + metrics},
    "otlp_json": {"logs": b"\x00" + json_logs, "traces": b"\x01" + json_traces,
                  "metrics": b"\x02" + json_metrics},
    "http_body": {"gzip": b"\x00" + gzip.compress(line, mtime=0), "deflate": b"\x01" + zlib.compress(line),
                  "identity": b"\x03" + line},
    "bulk_response": {"three": b"\x03" + bulk, "ok": b"\x01" + b'{"errors":false,"items":[]}'},
    "config": {"default": config,
               "env": b"receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: ${env:X:-127.0.0.1:4318}\n"},
    "container_line": {"cri": b"2026-11-28T01:00:00.000000001Z stdout F payment accepted",
                       "docker": b'{"log":"hi\\n","stream":"stderr","time":"2026-11-28T01:00:00.1Z"}',
                       "path": b"/var/log/pods/shop_checkout-a_7a3c1c1e-0b5e-4b8e-9c61-2f4f1a0e5d11/app/0.log"},
    "grpc_unary": {"plain": b"\x00" + grpc_frame(logs),
                   "gzip": b"\x01" + grpc_frame(gzip.compress(logs, mtime=0), True),
                   "zstd": b"\x02" + grpc_frame(zstd(logs), True),
                   "identity": b"\x03" + grpc_frame(logs)},
    "http_logs": {"lines": b"\x00" + line + b"\r\n\nlast",
                  "gzip": b"\x01" + gzip.compress(line, mtime=0), "deflate": b"\x02" + zlib.compress(line),
                  "zstd": b"\x03" + zstd(line), "bytes": b"\x04" + line},
    # Bytes that the generator reads as items, quantifiers and line choices.
    "log_format": {"fields": bytes([6, 3, 0x0b, 4, 0x00, 7, 1, 0x12, 5, 0x41, 9, 2, 1]) + bytes(range(40)),
                   "runs": bytes([3, 0x13, 2, 0x07, 0x2b, 1, 0x46, 6]) + bytes(range(7, 200, 3))},
    "alloc_ops": {"mixed": bytes([0, 10, 3, 1, 200, 0x45, 2, 0, 9, 0, 7, 0xe1, 3, 1, 0, 2, 1, 11, 3, 0, 0])},
    "otlp_nesting": {"at_limit": b"\x01" + bytes([0, 1] * 15) + b"\x00",
                     "past_limit": b"\x03" + bytes([1, 0] * 16),
                     "empty_maps": b"\x00" + bytes([1] * 32)},
    "str_json": {
        "escapes": b"\x03" + 'a "quoted" \\ line\n\ttab \u00e9\u4e2d\U0001F600 end'.encode(),
        # Escapes on both sides of the 16-byte chunk edges, a control at 0x1f, DEL (no escape)
        # and bytes from 0x80, past 32 bytes so the inline, shared and chunked paths all run.
        "chunk_edges": b"\x00" + b"0123456789abcde\"" + b"\\123456789abcd\x1f\x7f" + b"x" * 15
        + b"\n" + "\u00e9t\u00e9 GET /index.html HTTP/1.1 ".encode() * 2,
    },
}
for target, files in seeds.items():
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
print("seeds written for", len(seeds), "targets")
