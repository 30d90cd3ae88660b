#!/bin/bash
# BENCHMARKS.md, "Several hosts on one PostgreSQL store": two `semel bench --store
# postgres://…` hosts on one database with turns on (the default) and off (`--off
# store-turns`), against one host, alternating, a fresh database each run; counter
# increments, batch 256. THREADS sets each of the two hosts' submitting threads (the
# one host has 2). Needs a release build (cargo build --release -p semel).
set -e
B=${SEMEL:-"$(cd "$(dirname "$0")" && pwd)/../target/release/semel"}
THREADS=${THREADS:-2}
TXS=${TXS:-100000}
PG_PORT=55435
. "$(dirname "$0")/pg_lib.sh"
j() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["tx_per_s"]), "tx/s p99", round(d["p99_us"]/1000,1), "ms lost races", d["lost_races"])'; }
# Both hosts' transactions over the longer of their two runs: a host that finishes
# first leaves the other alone, which summing their rates would count as throughput.
agg() { python3 -c 'import json,sys; a,b=[json.load(open(f)) for f in sys.argv[1:]]; print(round((a["txs"]+b["txs"])/max(a["seconds"],b["seconds"])), "tx/s")' "$@"; }
n=0
for round in ${ROUNDS:-1 2}; do
  n=$((n+1)); psql "CREATE DATABASE d$n"
  echo "round $round one host: $($B --store postgres://semel@127.0.0.1:$PG_PORT/d$n bench --batch 256 --threads 2 --txs $TXS --json | j)"
  for off in "" "--off store-turns"; do
    n=$((n+1)); psql "CREATE DATABASE d$n"
    url=postgres://semel@127.0.0.1:$PG_PORT/d$n
    $B --store $url bench --batch 256 --threads $THREADS --txs $((TXS / 2)) --json $off > $D/a.json &
    $B --store $url bench --batch 256 --threads $THREADS --txs $((TXS / 2)) --json $off > $D/b.json
    wait %1 || true
    echo "round $round two hosts ${off:-(turns)}: $(j < $D/a.json) | $(j < $D/b.json) | both: $(agg $D/a.json $D/b.json)"
  done
done
