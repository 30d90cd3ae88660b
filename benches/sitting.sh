#!/bin/bash
# One benchmark sitting: every workload row of BENCHMARKS.md, with the one-client fsync
# floor before and after each batch-1 run. Run from the repository root after
# `cargo build --release -p semel`; prints each run's JSON after a `== args` line.
set -e
S=target/release/semel
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
run() { rm -rf "$DIR/data"; echo "== $*"; $S --json bench --data-dir "$DIR/data" "$@"; echo; }
floor() { echo "== floor $*"; python3 benches/fsync_floor.py --bytes 2456 "$@" | tail -1; }
date; git log --oneline -1
for i in 1 2 3; do floor; run --workload counter --txs 15000; done; floor
floor --direct
run --workload counter --txs 20000 --batch 16
for i in 1 2 3; do
  run --workload counter --txs 40000 --batch 256
  run --workload counter --txs 40000 --batch 256 --threads 2
done
run --workload counter --txs 100000 --batch 256 --threads 2
for i in 1 2; do
  run --workload transfer --txs 40000 --batch 256
  run --workload transfer --txs 40000 --batch 256 --threads 2
done
run --workload swap --accounts 100 --txs 10000 --batch 64
for i in 1 2 3 4 5 6; do run --workload counter --txs 100000 --in-memory; done
for i in 1 2 3; do run --workload counter --txs 100000 --in-memory --threads 2; done
run --workload transfer --txs 40000 --in-memory
run --workload transfer --txs 60000 --in-memory --threads 2
for t in 2 4 8; do run --workload counter --txs 15000 --threads $t; done
date
