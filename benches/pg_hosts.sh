#!/bin/bash
# BENCHMARKS.md, "Several hosts on one PostgreSQL store": one host vs two hosts on one
# PostgreSQL database (fsync on), counter increments from 64 connections in all,
# alternating. Needs a release build (cargo build --release -p semel) and PostgreSQL 15.
# OFF="store-turns" runs the hosts with that mechanism off (`semel serve --off`).
set -e
B="$(cd "$(dirname "$0")/.." && pwd)/target/release/semel"
PG_PORT=55433
. "$(dirname "$0")/pg_lib.sh"
serve() { $B --store "$1" serve --listen 127.0.0.1:$2 --allow-unsigned --progress-secs 0 ${OFF:+--off $OFF} >/dev/null 2>&1 & echo $!; }
for round in 1 2; do
  psql "CREATE DATABASE one$round"; psql "CREATE DATABASE two$round"
  U1=postgres://semel@127.0.0.1:55433/one$round
  p=$(serve $U1 7601); sleep 1
  echo "round $round one host:"; $B bench --server http://127.0.0.1:7601 --threads 64 --txs 30000 --seconds 12 --json | tr -d '\n' | head -c 600; echo
  kill -TERM $p; wait $p 2>/dev/null || true
  U2=postgres://semel@127.0.0.1:55433/two$round
  p1=$(serve $U2 7602); p2=$(serve $U2 7603); sleep 1
  echo "round $round two hosts:"
  $B bench --server http://127.0.0.1:7602 --threads 32 --txs 15000 --seconds 12 --json > $D/a.json &
  $B bench --server http://127.0.0.1:7603 --threads 32 --txs 15000 --seconds 12 --json > $D/b.json
  wait %1 2>/dev/null || true; sleep 1
  tr -d '\n' < $D/a.json | head -c 600; echo; tr -d '\n' < $D/b.json | head -c 600; echo
  echo "versions: $($PGB/psql -h 127.0.0.1 -p 55433 -U semel -d two$round -qAt -c 'SELECT count(*) FROM semel_log')"
  kill -TERM $p1 $p2; wait $p1 $p2 2>/dev/null || true
done
