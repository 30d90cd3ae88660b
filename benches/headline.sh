#!/bin/bash
# The headline rows of BENCHMARKS.md's parallel section (issue 15's targets): ROUNDS
# rounds (default 15), each running every row once, so that the machine's fast and
# slow stretches fall on every row alike. Run from the repository root after
# `cargo build --release -p semel`. Prints each row's median [range] of tx/s and of CPU
# per transaction, and each parallel row's ratio to its sequential row as the median
# of the rounds' ratios [their range].
#
#   benches/headline.sh            # 15 rounds
#   ROUNDS=6 SEMEL=/tmp/other-build benches/headline.sh
set -e
S=${SEMEL:-target/release/semel}
ROUNDS=${ROUNDS:-15}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
one() { # round row bench-args...
  local round=$1 row=$2
  shift 2
  $S --json bench "$@" 2>/dev/null | python3 -c "
import json, sys
r = json.load(sys.stdin)
print($round, '$row', r['tx_per_s'], r['cpu_seconds'] / r['txs'] * 1e6, r['p50_us'])" >>"$OUT"
}
date; git log --oneline -1
T=(--workload transfer --txs 20000 --batch 1000 --workers 2)
for round in $(seq "$ROUNDS"); do
  for accounts in 1000 10000; do
    for mode in sequential optimistic pessimistic; do
      one "$round" "memory-$accounts-$mode" "${T[@]}" --accounts $accounts --in-memory --concurrency $mode
    done
  done
  for mode in sequential optimistic; do
    one "$round" "memory-2-$mode" "${T[@]}" --accounts 2 --in-memory --concurrency $mode
    one "$round" "durable-1000-$mode" "${T[@]}" --accounts 1000 --concurrency $mode
  done
  one "$round" counter --workload counter --txs 100000 --in-memory
done
date
python3 - "$OUT" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, row, tps, cpu, p50 = line.split()
    runs[row][int(rnd)] = (float(tps), float(cpu), float(p50))
for row, by_round in runs.items():
    tps, cpu, p50 = zip(*by_round.values())
    print(f"{row}: {statistics.median(tps) / 1e3:.1f}k [{min(tps) / 1e3:.1f}–{max(tps) / 1e3:.1f}k], "
          f"CPU {statistics.median(cpu):.2f} µs a transaction, p50 {statistics.median(p50):.1f} µs")
for row in runs:
    if row.endswith("-sequential") or row == "counter":
        continue
    base = runs[row.rsplit("-", 1)[0] + "-sequential"]
    ratios = [runs[row][r][0] / base[r][0] for r in runs[row] if r in base]
    print(f"{row} ÷ sequential: {statistics.median(ratios):.2f}× "
          f"[{min(ratios):.2f}–{max(ratios):.2f}] over {len(ratios)} rounds")
PY
