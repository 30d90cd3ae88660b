#!/bin/bash
# One sitting for BENCHMARKS.md's index of latency mechanisms: each mechanism's
# workload with the mechanism on and off (`semel bench --off NAME`), alternating, ROUNDS
# times (default 5). Run from the repository root after `cargo build --release -p semel`;
# prints one line per run: mechanism, on/off, tx/s, p50 µs, CPU µs per transaction.
set -e
S=${SEMEL:-target/release/semel}
ROUNDS=${ROUNDS:-5}
one() { # label, on|off, bench args...
  local label=$1 state=$2; shift 2
  local extra=()
  [ "$state" = off ] && extra=(--off "$label")
  $S --json bench "$@" "${extra[@]}" 2>/dev/null |
    python3 -c "import json,sys; r=json.load(sys.stdin); print('$label $state', round(r['tx_per_s']), round(r['p50_us'],2), round(r['cpu_seconds']*1e6/r['txs'],2))"
}
date; git log --oneline -1
for i in $(seq "$ROUNDS"); do
  for state in on off; do
    one all "$state" --workload counter --txs 100000 --in-memory
    one recycler "$state" --workload counter --txs 100000 --in-memory
    one recent-ids "$state" --workload counter --txs 100000 --in-memory
    one prewarm "$state" --workload counter --txs 100000 --in-memory --threads 2
    one writer-spin "$state" --workload counter --txs 100000 --in-memory --threads 2
    one merge-buffer "$state" --workload counter --txs 40000 --batch 256 --threads 2
    one recycler "$state" --workload counter --txs 5000
    one avx512 "$state" --workload counter --txs 100000 --in-memory
    one avx512 "$state" --workload transfer --txs 40000 --batch 1000 --in-memory --concurrency sequential
    one avx512 "$state" --workload transfer --txs 40000 --batch 1000 --in-memory --workers 2
  done
done
date
