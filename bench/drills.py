#!/usr/bin/env python3
"""Fault drills: run sluice under load, break something, and count what was lost.

Every record carries a unique number (`sluice-loadgen --acked`, or a numbered line a writer
appends for the filelog drill). A drill knows which numbers the sender was told were taken (2xx /
gRPC OK, or a line written to a file) and which arrived at the far end (lines a TCP consumer
wrote, or documents `sluice-es-mock` stored), and prints one table row:

  drill | acknowledged | delivered | lost | duplicated | peak RSS | stayed up

lost = acknowledged records that never arrived; duplicated = arrivals beyond the first of a
number. Peak RSS is the highest VmHWM of the sluice processes in the drill (for one that was
killed, read just before the kill). "stayed up" says every sluice the drill did not kill itself
was still running at the end (and one that was sent SIGTERM exited 0).

Run through `bench/drills.sh`, which builds the binaries and makes the network namespace drill 3
needs. `DRILLS="1 3"` picks drills; `DRILL_SCALE=0.5` halves every phase.
"""
import collections
import http.client
import json
import threading
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SLUICE_BIN_DIR", os.path.join(ROOT, "target", "release"))
HERE = os.path.join(ROOT, "bench", "drills")
SCALE = float(os.environ.get("DRILL_SCALE", "1"))
NETNS = os.environ.get("DRILL_NETNS", "sluice-drill")
WORK = tempfile.mkdtemp(prefix="sluice-drills-")


def secs(s):
    return s * SCALE


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process, its output in WORK, and the peak RSS seen before it ended."""

    def __init__(self, name, argv, env=None, netns=False, cgroup=None):
        self.name, self.argv, self.netns, self.cgroup = name, argv, netns, cgroup
        self.env = dict(os.environ, **(env or {}))
        self.peak_kib = 0
        self.runs = 0
        self.start()

    def start(self):
        self.runs += 1
        argv = (["ip", "netns", "exec", NETNS] if self.netns else []) + self.argv
        log = open(os.path.join(WORK, f"{self.name}.{self.runs}.log"), "wb")
        join = None
        if self.cgroup:
            def join():
                with open(os.path.join(self.cgroup, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
        self.p = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=join)

    def sample(self):
        try:
            with open(f"/proc/{self.p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
        except OSError:
            pass

    def kill(self, sig):
        self.sample()
        self.p.send_signal(sig)

    def restart(self, sig, down):
        """Sends `sig`, waits for the exit, stays down `down` seconds, starts again; returns
        the exit status."""
        self.kill(sig)
        status = self.wait()
        time.sleep(down)
        self.start()
        return status

    def wait(self, timeout=60):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()

    def alive(self):
        self.sample()
        return self.p.poll() is None

    def stop(self):
        """SIGTERM at the end of a drill: True if it drained and exited 0."""
        if self.p.poll() is not None:
            return False
        self.kill(signal.SIGTERM)
        return self.wait() == 0


def sluice(name, config, env, netns=False, cgroup=None):
    env = dict(env, METRICS_PORT=env.get("METRICS_PORT", str(free_port())))
    return Proc(name, [os.path.join(BIN, "sluice"), "--config", os.path.join(HERE, config)],
                env, netns, cgroup)


def gateway(name, url, **extra):
    """A gateway (gateway.yaml) on free ports sending to the Elasticsearch at `url`, started
    and listening; returns it and its OTLP/HTTP port."""
    http, grpc = free_port(), free_port()
    env = {"HTTP_PORT": str(http), "GRPC_PORT": str(grpc), "ES_URL": url, **extra}
    s = sluice(name, "gateway.yaml", env)
    wait_port(http)
    return s, http


def wait_port(port, host="127.0.0.1", netns=False, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if netns:
            ok = subprocess.run(["ip", "netns", "exec", NETNS, "python3", "-c",
                                 f"import socket; socket.create_connection(('{host}', {port}), 1)"],
                                capture_output=True).returncode == 0
        else:
            try:
                socket.create_connection((host, port), 1).close()
                ok = True
            except OSError:
                ok = False
        if ok:
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {host}:{port}")


def es_mock(extra=(), netns=False, port=None):
    port = port or free_port()
    p = Proc("es-mock", [os.path.join(BIN, "sluice-es-mock"), "--listen", f"127.0.0.1:{port}",
                         "--keep-field", "body.text", *extra], netns=netns)
    wait_port(port, netns=netns)
    return p, f"http://127.0.0.1:{port}"


def es_call(url, path, method="GET", netns=False):
    if netns:
        code = (f"import urllib.request, sys; sys.stdout.buffer.write(urllib.request.urlopen("
                f"urllib.request.Request('{url}{path}', method='{method}'), timeout=60).read())")
        return subprocess.run(["ip", "netns", "exec", NETNS, "python3", "-c", code],
                              capture_output=True, check=True).stdout
    return urllib.request.urlopen(urllib.request.Request(url + path, method=method),
                                  timeout=60).read()


def es_bodies(url, netns=False):
    return es_call(url, "/_mock/docs?field=body.text", netns=netns).decode().splitlines()


def loadgen(endpoint, duration, retry_for, name, rate=0, connections=8, records=200,
            netns=False, first=0):
    acked = os.path.join(WORK, f"{name}.acked")
    argv = [os.path.join(BIN, "sluice-loadgen"), endpoint, "--acked", acked,
            "--first-number", str(first),
            "--duration", str(duration), "--retry-for", str(retry_for),
            "--connections", str(connections), "--records", str(records), "--rate", str(rate)]
    return Proc(name, argv, netns=netns), acked


def acked_numbers(path):
    with open(path) as f:
        lines = f.read().split()
    per = int(lines[1])
    out = set()
    for first in lines[2:]:
        out.update(range(int(first), int(first) + per))
    return out


def numbers(bodies):
    """Arrival counts per record number, from bodies `drill-N`."""
    counts = collections.Counter()
    for b in bodies:
        if b.startswith("drill-"):
            counts[int(b[6:])] += 1
    return counts


def wait_until(what, timeout, step=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if what():
            return True
        time.sleep(step)
    return what()


ROWS = []


def row(drill, acked, arrived, procs, up, note="", loss_documented=False):
    lost = len(acked - set(arrived))
    dup = sum(n - 1 for n in arrived.values() if n > 1)
    peak = max(p.peak_kib for p in procs) / 1024 if procs else 0
    ROWS.append((drill, len(acked), len(arrived), lost, dup, f"{peak:.0f} MiB",
                 "yes" if up else "NO", note, loss_documented))
    print(f"  -> acknowledged={len(acked)} delivered={len(arrived)} lost={lost} "
          f"duplicated={dup} peak_rss={peak:.0f}MiB stayed_up={up}", flush=True)


def drain_es(url, acked, netns=False, timeout=120):
    """Waits until every acknowledged number is stored (or the timeout); returns the counts."""
    got = {}

    def done():
        got["c"] = numbers(es_bodies(url, netns))
        return acked <= set(got["c"])

    wait_until(done, timeout, 1)
    return got["c"]


def drill_tcp():
    """1. The TCP consumer (socat writing to a file) SIGKILLed and restarted under load."""
    print("drill 1: TCP consumer SIGKILLed and restarted under load", flush=True)
    port, http = free_port(), free_port()
    out = os.path.join(WORK, "tcp-consumer.txt")
    consumer = Proc("socat", ["socat", "-u", f"TCP-LISTEN:{port},reuseaddr,fork",
                              f"OPEN:{out},creat,append"])
    wait_port(port)
    s = sluice("d1-sluice", "tcp.yaml", {"HTTP_PORT": str(http), "TCP_ADDR": f"127.0.0.1:{port}"})
    wait_port(http)
    gen, acked_file = loadgen(f"http://127.0.0.1:{http}", secs(30), 60, "d1-loadgen", rate=50000)
    time.sleep(secs(8))
    consumer.restart(signal.SIGKILL, secs(3))
    time.sleep(secs(7))
    consumer.restart(signal.SIGKILL, secs(3))
    gen.wait(600)
    acked = acked_numbers(acked_file)

    def arrived():
        with open(out) as f:
            return numbers(f.read().splitlines())

    wait_until(lambda: acked <= set(arrived()), 60)
    up = s.alive()
    up = s.stop() and up
    consumer.kill(signal.SIGTERM)
    row("1. TCP consumer SIGKILLed twice, restarted", acked, arrived(), [s], up,
        "at-least-once; a consumer's unread receive buffer is lost with it (README)",
        loss_documented=True)


def drill_es_faults():
    """2. Elasticsearch answers 30% of items 429 for a minute, then is down for 60 s."""
    print("drill 2: Elasticsearch 30% 429 for a minute, then down 60 s", flush=True)
    mock, url = es_mock(["--reject-share", "0.3", "--reject-seconds", str(int(secs(60)))])
    s, http = gateway("d2-sluice", url)
    gen, acked_file = loadgen(f"http://127.0.0.1:{http}", secs(150), 120, "d2-loadgen",
                              rate=20000)
    time.sleep(secs(60))
    es_call(url, f"/_mock/down?seconds={int(secs(60))}", "POST")
    gen.wait(900)
    acked = acked_numbers(acked_file)
    arrived = drain_es(url, acked)
    up = s.alive()
    up = s.stop() and up
    mock.kill(signal.SIGTERM)
    row("2. Elasticsearch 30% 429 for 60 s, then down 60 s", acked, arrived, [s], up)


def drill_gateways():
    """3. Agent -> two gateways (DNS balancing): one SIGKILLed mid-load, the other SIGTERMed
    and restarted; the agent retries."""
    print("drill 3: agent -> two gateways; one SIGKILLed, the other SIGTERMed", flush=True)
    mock, url = es_mock(netns=True, port=9200)
    env = {"HTTP_PORT": "4318", "GRPC_PORT": "4317", "ES_URL": url, "METRICS_PORT": "8888"}
    a = sluice("d3-gateway-a", "gateway.yaml", dict(env, BIND="10.77.0.2"), netns=True)
    b = sluice("d3-gateway-b", "gateway.yaml", dict(env, BIND="10.77.0.3"), netns=True)
    wait_port(4317, "10.77.0.2", True)
    wait_port(4317, "10.77.0.3", True)
    agent = sluice("d3-agent", "agent.yaml",
                   {"HTTP_PORT": "4319", "GATEWAY": "gateway:4317", "METRICS_PORT": "8889"},
                   netns=True)
    wait_port(4319, netns=True)
    gen, acked_file = loadgen("http://127.0.0.1:4319", secs(40), 90, "d3-loadgen",
                              rate=30000, netns=True)
    time.sleep(secs(10))
    a.restart(signal.SIGKILL, secs(5))
    time.sleep(secs(10))
    b_clean = b.restart(signal.SIGTERM, secs(3)) == 0
    gen.wait(600)
    acked = acked_numbers(acked_file)
    arrived = drain_es(url, acked, netns=True)
    up = agent.alive() and a.alive() and b.alive() and b_clean
    up = all([agent.stop(), a.stop(), b.stop()]) and up
    mock.kill(signal.SIGTERM)
    row("3. agent -> 2 gateways (dns): SIGKILL one, SIGTERM + restart the other", acked,
        arrived, [agent, a, b], up)


def drill_sigterm():
    """4. SIGTERM of a gateway at full load; it is started again and the sender retries."""
    print("drill 4: gateway SIGTERMed at full load", flush=True)
    mock, url = es_mock()
    s, http = gateway("d4-sluice", url)
    gen, acked_file = loadgen(f"http://127.0.0.1:{http}", secs(25), 60, "d4-loadgen",
                              connections=16)
    time.sleep(secs(10))
    s.kill(signal.SIGTERM)
    clean = s.wait() == 0
    s.start()
    gen.wait(600)
    acked = acked_numbers(acked_file)
    arrived = drain_es(url, acked)
    up = s.alive() and clean
    up = s.stop() and up
    mock.kill(signal.SIGTERM)
    row("4. gateway SIGTERMed at full load, restarted", acked, arrived, [s], up,
        "exit 0 after draining" if clean else "did not exit 0")


def drill_overload():
    """5. Four times what Elasticsearch takes, from 600 clients whose requests together are
    more than the limit, against memory_limiter at 100 MiB (soft limit 75): the live heap stays
    under the limit (the note gives its peak beside the RSS column), refused requests are
    retried and arrive."""
    print("drill 5: 4x overload against memory_limiter", flush=True)
    mock, url = es_mock(["--latency-ms", "100"])
    s, http = gateway("d5-sluice", url, LIMIT_MIB="100", SPIKE_MIB="25", QUEUE_SIZE="10000000")
    # What the slowed Elasticsearch takes, measured first.
    probe, probe_file = loadgen(f"http://127.0.0.1:{http}", secs(10), 30, "d5-probe",
                                connections=32, records=1000)
    probe.wait(120)
    capacity = len(acked_numbers(probe_file)) / secs(10)
    rate = int(4 * capacity)
    print(f"  Elasticsearch takes ~{capacity:.0f} records/s; offering {rate}", flush=True)
    gen, acked_file = loadgen(f"http://127.0.0.1:{http}", secs(30), 180, "d5-loadgen",
                              rate=rate, connections=600, records=1000, first=10**9)
    gen.wait(900)
    acked = acked_numbers(acked_file) | acked_numbers(probe_file)
    arrived = drain_es(url, acked, timeout=300)
    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{s.env['METRICS_PORT']}/metrics", timeout=10).read().decode()
    heap_peak = next((float(l.split()[-1]) for l in metrics.splitlines()
                      if l.startswith("sluice_memory_limiter_heap_peak_bytes")), 0)
    up = s.alive()
    up = s.stop() and up
    mock.kill(signal.SIGTERM)
    with open(os.path.join(WORK, "d5-loadgen.1.log")) as f:
        refused = [l for l in f if l.startswith("refused_records=")]
    row("5. 4x overload from 600 clients, memory_limiter 100 MiB (soft 75)", acked,
        arrived, [s], up,
        f"offered {rate}/s vs ~{capacity:.0f}/s taken; {refused[0].strip() if refused else ''}; "
        f"live heap peak {heap_peak / 2**20:.0f} MiB")


def drill_filelog():
    """6. The agent SIGKILLed while tailing a growing container log, then started again."""
    print("drill 6: filelog agent SIGKILLed while tailing", flush=True)
    mock, url = es_mock()
    logs = os.path.join(WORK, "pods")
    storage = os.path.join(WORK, "storage")
    pod = os.path.join(logs, "shop_checkout-1_0000-checkout", "app")
    os.makedirs(pod)
    os.makedirs(storage)
    s = sluice("d6-sluice", "filelog.yaml",
               {"LOG_DIR": logs, "STORAGE_DIR": storage, "ES_URL": url})
    written = 0
    per_tick = 200  # lines every 10 ms: 20k lines/s
    start = time.time()
    killed = restarted = False
    with open(os.path.join(pod, "0.log"), "a") as f:
        while time.time() - start < secs(30):
            f.write("".join(f"2026-11-28T03:00:00.000000000Z stdout F drill-{written + i}\n"
                            for i in range(per_tick)))
            f.flush()
            written += per_tick
            t = time.time() - start
            if t > secs(10) and not killed:
                s.kill(signal.SIGKILL)
                s.wait()
                killed = True
            if t > secs(13) and not restarted:
                s.start()
                restarted = True
            time.sleep(0.01)
    acked = set(range(written))
    arrived = drain_es(url, acked)
    up = s.alive()
    up = s.stop() and up
    mock.kill(signal.SIGTERM)
    row("6. filelog agent SIGKILLed while tailing, restarted", acked, arrived, [s], up,
        "duplicates: read but unacknowledged at the kill (README)")


def memory_cgroup(name, limit):
    """A memory cgroup of `limit` bytes (v2 `memory.max`, else v1 `memory.limit_in_bytes`);
    returns its directory and a function giving its OOM kills so far."""
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    base = "/sys/fs/cgroup" if v2 else "/sys/fs/cgroup/memory"
    path = os.path.join(base, name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "memory.max" if v2 else "memory.limit_in_bytes"), "w") as f:
        f.write(str(limit))

    def oom_kills():
        with open(os.path.join(path, "memory.events" if v2 else "memory.oom_control")) as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        return 0

    return path, oom_kills


def post_until_accepted(port, body, deadline):
    """POSTs `body` to http_logs until it is answered 2xx (True), retrying after 429 / 503 as
    `Retry-After` says, until `deadline`."""
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            c.request("POST", "/", body)
            r = c.getresponse()
            r.read()
            c.close()
            if 200 <= r.status < 300:
                return True
            wait = float(r.getheader("Retry-After") or 1)
        except OSError:
            wait = 1
        time.sleep(wait)
    return False


def drill_burst():
    """7. 32 concurrent 10 MiB bodies of short lines (http_logs) and 32 concurrent 4 MiB OTLP
    requests (decoded by log_transform) against memory_limiter at 400 MiB, with sluice in a
    1 GiB memory cgroup: it stays up (no OOM kill), the live heap peak is stated, and every
    record a client was told was taken arrives."""
    print("drill 7: a burst of costly requests, 400 MiB limiter in a 1 GiB cgroup", flush=True)
    port, http_port, lines_port = free_port(), free_port(), free_port()
    out = os.path.join(WORK, "burst-consumer.txt")
    consumer = Proc("socat7", ["socat", "-u", f"TCP-LISTEN:{port},reuseaddr,fork",
                               f"OPEN:{out},creat,append"])
    wait_port(port)
    cgroup, oom_kills = memory_cgroup(f"sluice-drill7-{os.getpid()}", 1 << 30)
    s = sluice("d7-sluice", "burst.yaml", {"HTTP_PORT": str(http_port),
                                           "LINES_PORT": str(lines_port),
                                           "TCP_ADDR": f"127.0.0.1:{port}"}, cgroup=cgroup)
    wait_port(http_port)
    wait_port(lines_port)
    # 32 OTLP connections with 4 MiB requests (24,000 numbered records each) ...
    gen, acked_file = loadgen(f"http://127.0.0.1:{http_port}", 1, secs(240), "d7-loadgen",
                              connections=32, records=24_000)
    # ... and at the same moment 32 clients with 10 MiB of numbered lines each.
    per_body = (10 << 20) // 18
    first = 10**9
    bodies = [("".join(f"drill-{first + b * per_body + i:010d}\n" for i in range(per_body))
               ).encode() for b in range(32)]
    deadline = time.time() + secs(240)
    taken = [False] * 32

    def send(b):
        taken[b] = post_until_accepted(lines_port, bodies[b], deadline)

    threads = [threading.Thread(target=send, args=(b,)) for b in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gen.wait(600)
    acked = acked_numbers(acked_file)
    for b in range(32):
        if taken[b]:
            acked.update(range(first + b * per_body, first + (b + 1) * per_body))

    def arrived():
        with open(out) as f:
            return numbers(f.read().splitlines())

    kills = oom_kills()
    if s.alive():
        wait_until(lambda: acked <= set(arrived()), 120, 2)
    try:
        metrics = urllib.request.urlopen(
            f"http://127.0.0.1:{s.env['METRICS_PORT']}/metrics", timeout=10).read().decode()
        heap_peak = next((float(l.split()[-1]) for l in metrics.splitlines()
                          if l.startswith("sluice_memory_limiter_heap_peak_bytes")), 0)
        heap = f"{heap_peak / 2**20:.0f} MiB"
    except OSError:
        heap = "unknown (sluice is gone)"
    kills = max(kills, oom_kills())
    up = s.alive() and kills == 0
    up = s.stop() and up
    consumer.kill(signal.SIGTERM)
    os.rmdir(cgroup)
    row("7. 32 x 10 MiB bodies + 32 x 4 MiB OTLP at once, limiter 400 MiB, 1 GiB cgroup",
        acked, arrived(), [s], up,
        f"{sum(taken)}/32 bodies taken; live heap peak {heap}; OOM kills {kills}")


DRILLS = {"1": drill_tcp, "2": drill_es_faults, "3": drill_gateways, "4": drill_sigterm,
          "5": drill_overload, "6": drill_filelog, "7": drill_burst}


def main():
    chosen = os.environ.get("DRILLS", "1 2 3 4 5 6 7").split()
    print(f"work directory {WORK}; scale {SCALE}", flush=True)
    for d in chosen:
        try:
            DRILLS[d]()
        except Exception as e:  # a drill that breaks is a row, not the end of the run
            ROWS.append((f"{d}. (drill failed: {e})", 0, 0, "?", "?", "?", "NO", "", False))
            print(f"  drill {d} failed: {e}", flush=True)
    print()
    print("| drill | acknowledged | delivered | lost | duplicated | peak RSS | stayed up | note |")
    print("|---|---|---|---|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(str(c) for c in r[:8]) + " |")
    sys.exit(0 if all((r[3] == 0 or r[8]) and r[6] == "yes" for r in ROWS) else 1)


if __name__ == "__main__":
    main()
