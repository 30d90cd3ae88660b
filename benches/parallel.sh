#!/bin/bash
# One sitting for BENCHMARKS.md's parallel-execution table (issue 15): token transfers
# between A accounts, each mode × workers, batch 1,000 and 10,000, in memory and
# durable, ROUNDS times (default 2) with the modes alternating inside each round. Run
# from the repository root after `cargo build --release -p semel`; prints one line per
# run: storage batch accounts mode workers tx/s re-executions parallel-s in-order-s
# peak-RSS-MiB idle-s (the workers' time with no task, summed).
set -e
S=${SEMEL:-target/release/semel}
ROUNDS=${ROUNDS:-2}
TXS=${TXS:-20000}
one() { # storage batch accounts mode workers
  local storage=$1 batch=$2 accounts=$3 mode=$4 workers=$5
  local extra=()
  [ "$storage" = memory ] && extra=(--in-memory)
  $S --json bench --workload transfer --txs "$TXS" --accounts "$accounts" --batch "$batch" \
    --concurrency "$mode" --workers "$workers" "${extra[@]}" 2>/dev/null |
    python3 -c "
import json, sys
r = json.load(sys.stdin)
print('$storage $batch $accounts $mode $workers', round(r['tx_per_s']), r['reexecutions'],
      round(r['parallel_seconds'], 3), round(r['in_order_seconds'], 3),
      r['peak_rss_bytes'] // (1 << 20), round(r['idle_seconds'], 3))"
}
date; git log --oneline -1; nproc
for round in $(seq "$ROUNDS"); do
  for storage in memory durable; do
    for batch in 1000 10000; do
      for accounts in 2 10 100 1000 10000; do
        one $storage $batch $accounts sequential 1
        for workers in 1 2; do
          one $storage $batch $accounts optimistic $workers
          one $storage $batch $accounts pessimistic $workers
        done
      done
    done
  done
done
date
