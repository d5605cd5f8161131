#!/usr/bin/env python3
"""What one costly request costs sluice: peak RSS of the whole process (VmHWM) after one
request of each shape, each in a fresh process, with the answer it got. The shapes are the
costliest each decoder accepts or refuses (empty records, attributes, one-character lines)
beside ordinary ones. Pipelines: `otlp -> log_transform -> debug` (every record decoded) and
`http_logs -> debug`.

    bench/request_cost.py                       # target/release/sluice
    SLUICE="/path/a /path/b" bench/request_cost.py   # several builds, side by side

Prints a Markdown table, one column per build.
"""
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDS = os.environ.get("SLUICE", os.path.join(ROOT, "target", "release", "sluice")).split()


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


def field(number, payload):
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def fixed64(number, value):
    return varint(number << 3 | 1) + value.to_bytes(8, "little")


def request(resource_attrs, scopes):
    """ExportLogsServiceRequest of one ResourceLogs: `resource_attrs` empty attributes and the
    given ScopeLogs payloads."""
    resource = b"".join(field(1, b"") for _ in range(resource_attrs))
    rl = field(1, resource) + b"".join(field(2, s) for s in scopes)
    return field(1, rl)


def scope(records):
    return b"".join(field(2, r) for r in records)


EMPTY = b""
NINE = fixed64(11, 1)  # observed_time_unix_nano: 9 bytes on the wire
REAL = fixed64(1, 1_700_000_000_000_000_000) + field(5, field(1, b"GET /api/items 200 in 12 ms, ok!"))
MB4 = 4 << 20


def otlp_shapes():
    return [
        ("OTLP, 8,000 empty resource attributes x 8,000 ScopeLogs of an empty record (48 KB)",
         request(8000, [scope([EMPTY])] * 8000)),
        ("OTLP, the same attributes x 2,000 ScopeLogs of one real record (118 KB)",
         request(8000, [scope([REAL])] * 2000)),
        ("OTLP, 4 MiB of empty records", request(0, [scope([EMPTY] * (MB4 // 2))])),
        ("OTLP, 4 MiB of 9-byte records (just within the limit)",
         request(0, [scope([NINE] * (MB4 // 11))])),
        ("OTLP, 4 MiB of records with a timestamp and a 34-byte body",
         request(0, [scope([REAL] * (MB4 // len(field(2, REAL))))])),
        ("OTLP, 4 MiB of empty attributes on one record",
         request(0, [scope([b"".join([field(6, b"")] * (MB4 // 2))])])),
    ]


def lines_shapes():
    apache = (b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" '
              b'200 2326\n')
    mb10 = 10 << 20
    return [
        ("`http_logs`, 10 MiB of 1-character lines", b"a\n" * (mb10 // 2)),
        ("`http_logs`, 10 MiB of 8-byte lines (just within the limit)", b"abcdefg\n" * (mb10 // 8)),
        ("`http_logs`, 10 MiB of Apache lines", apache * (mb10 // len(apache))),
    ]


CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
  http_logs:
    endpoint: 127.0.0.1:{lines}
processors:
  log_transform: {{}}
exporters:
  debug: {{queue_size: 10000000}}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs/otlp:
      receivers: [otlp]
      processors: [log_transform]
      exporters: [debug]
    logs/lines:
      receivers: [http_logs]
      exporters: [debug]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def peak_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return 0


def one(binary, port_key, path, body, content_type):
    ports = {"otlp": free_port(), "lines": free_port(), "metrics": free_port()}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(CONFIG.format(**ports))
        config = f.name
    p = subprocess.Popen([binary, "--config", config], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_port(ports[port_key])
        c = http.client.HTTPConnection("127.0.0.1", ports[port_key], timeout=120)
        c.request("POST", path, body, {"Content-Type": content_type})
        status = c.getresponse().status
        time.sleep(0.2)
        return status, peak_mib(p.pid)
    finally:
        p.kill()
        p.wait()
        os.unlink(config)


def main():
    rows = [(name, "otlp", "/v1/logs", body, "application/x-protobuf")
            for name, body in otlp_shapes()]
    rows += [(name, "lines", "/", body, "text/plain") for name, body in lines_shapes()]
    print("| request | " + " | ".join(os.path.relpath(b, ROOT) for b in BUILDS) + " |")
    print("|---|" + "---|" * len(BUILDS))
    for name, key, path, body, ctype in rows:
        cells = []
        for b in BUILDS:
            status, mib = one(b, key, path, body, ctype)
            cells.append(f"{mib} MiB" if status == 200 else f"refused ({status}), {mib} MiB")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
