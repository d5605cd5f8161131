#!/usr/bin/env bash
# Fault drills (see bench/drills.py): sluice under load while a consumer, Elasticsearch, a
# gateway or sluice itself is killed, refused or overloaded; prints a table of records
# acknowledged, delivered, lost and duplicated, peak RSS, and whether sluice stayed up.
#
#   bench/drills.sh                   # all seven, about 15 minutes
#   DRILLS="3" DRILL_SCALE=0.5 bench/drills.sh
#
# Needs root for the network namespace of drill 3 (two gateway addresses behind one name, as a
# headless Service gives them), socat, and python3. Exits non-zero if any drill lost an
# acknowledged record (beyond what README says TCP cannot promise) or sluice went down.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins >/dev/null
NS=${DRILL_NETNS:-sluice-drill}
cleanup() {
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "/etc/netns/$NS"
}
trap cleanup EXIT
cleanup
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip addr add 10.77.0.2/32 dev lo
ip netns exec "$NS" ip addr add 10.77.0.3/32 dev lo
# `ip netns exec` mounts /etc/netns/NS/hosts over /etc/hosts: `gateway` names both addresses.
mkdir -p "/etc/netns/$NS"
printf '127.0.0.1 localhost\n10.77.0.2 gateway\n10.77.0.3 gateway\n' > "/etc/netns/$NS/hosts"
DRILL_NETNS=$NS python3 bench/drills.py
