#!/usr/bin/env bash
# The figures of BENCHMARKS.md "Load against the limits": every `distnet bench load`
# scenario at concurrency 1, 16 and 64, each followed by pgbench with its reference
# script on the same database, then one Markdown table. `ping` (the health check: the
# gRPC transport alone) comes first, and every scenario's rate is also given as a
# share of ping's at the same concurrency: how much of the transport's ceiling on
# this machine the call reaches.
#
#   cargo build --release -p distnet --bins -p distnet-customers -p distnet-accreditation \
#       -p distnet-allocation -p distnet-logistics
#   DISTNET__SERVER__RATE_LIMIT__PER_SECOND=0 DISTNET__TELEMETRY__LOG_FILTER=warn \
#       target/release/distnet up --demo --data-dir /tmp/demo-pg &
#   (warn: as the recorded matrices; it also leaves every call's INFO span out)
#   DATABASE_URL=postgres://postgres@127.0.0.1:<port up printed>/distnet bench/load-matrix.sh [out-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/distnet-load-matrix}"
seconds="${SECONDS_PER_RUN:-10}"
mkdir -p "$out"
for scenario in ping get-customer list-customers get-entitlements place-order mixed; do
  for concurrency in 1 16 64; do
    target/release/distnet bench load "$scenario" --concurrency "$concurrency" --duration "$seconds" \
      --pgbench --json "$out/$scenario-$concurrency.json" >"$out/$scenario-$concurrency.log" 2>&1 \
      || { echo "$scenario at $concurrency failed: see $out/$scenario-$concurrency.log"; exit 1; }
    echo "$scenario at $concurrency done"
  done
done
python3 - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print("| scenario | conc. | calls/s | p50 ms | p95 ms | p99 ms | errors | pgbench script | pgbench tps | ratio | of ping |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
ping = {c: json.loads((out / f"ping-{c}.json").read_text())["rate"] for c in [1, 16, 64]}
for scenario in ["ping", "get-customer", "list-customers", "get-entitlements", "place-order", "mixed"]:
    for c in [1, 16, 64]:
        r = json.loads((out / f"{scenario}-{c}.json").read_text())
        lat, pg = r["latency_ms"], r.get("pgbench") or {}
        print(f"| {scenario} | {c} | {r['rate']:,.0f} | {lat['p50']:.2f} | {lat['p95']:.2f} | {lat['p99']:.2f} "
              f"| {r['failed']} | {pg.get('script', '—')} | {pg.get('tps', 0):,.0f} | {pg.get('ratio', 0):.2f} "
              f"| {r['rate'] / ping[c]:.2f} |")
PY
