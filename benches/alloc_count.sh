#!/bin/bash
# Heap allocations per transaction, counted exactly: unlike time on a shared VM, the
# count does not move between runs. Uprobes on mimalloc's allocation entry points in
# the release binary (every Rust allocation goes through one of them), `perf stat` of
# one run of N transactions and one of 2N, and the difference over N, so that setup
# and start-up cancel out. Run from the repository root after
# `cargo build --release -p semel`; needs `perf` and root (uprobes).
#
#   benches/alloc_count.sh                      # transfers between 1,000 accounts, in memory
#   benches/alloc_count.sh --workload counter --in-memory
#   N=20000 benches/alloc_count.sh --workload transfer --accounts 1000 --batch 1000 \
#       --in-memory --concurrency optimistic --workers 2
#
# Pessimistic runs count the bench's simulation of each transaction (before the clock)
# as well.
set -e
S=${SEMEL:-target/release/semel}
N=${N:-10000}
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--workload transfer --accounts 1000 --batch 1000 --in-memory)
group=semel_alloc
trap 'perf probe -q -d "$group:*" 2>/dev/null || true' EXIT
for f in mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned; do
  perf probe -q -x "$S" -f --add "$group:$f=$f"
done
count() {
  perf stat -x, -e "$group:*" -- "$S" --json bench --txs "$1" "${args[@]}" 2>&1 >/dev/null |
    awk -F, '$1 ~ /^[0-9]+$/ {s += $1} END {print s}'
}
one=$(count "$N")
two=$(count $((2 * N)))
python3 -c "print(f'{($two - $one) / $N:.1f} allocations per transaction ({$N} more transactions: {$two - $one})')"
