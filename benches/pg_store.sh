#!/bin/bash
# BENCHMARKS.md, "Several hosts on one PostgreSQL store": `semel bench --store
# postgres://…`, one host vs two hosts on one database, batch 256, alternating, and the
# floor: the same rows per group commit written by pgbench (benches/pg_floor.sql).
# Needs a release build (cargo build --release -p semel) and PostgreSQL's binaries.
set -e
HERE="$(cd "$(dirname "$0")" && pwd)"
B=${SEMEL:-"$HERE/../target/release/semel"}
PG_PORT=55434
. "$(dirname "$0")/pg_lib.sh"
j() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["tx_per_s"]), "tx/s p50", round(d["p50_us"]), "us p99", round(d["p99_us"]), "us commits", d["fsyncs"])'; }
for round in 1 2; do
  psql "CREATE DATABASE one$round"; psql "CREATE DATABASE two$round"
  echo "round $round one host: $($B --store postgres://semel@127.0.0.1:55434/one$round bench --batch 256 --threads 2 --txs 20000 --json | j)"
  psql "SELECT 'rows/tx', (SELECT count(*) FROM semel_state)+(SELECT count(*) FROM semel_txs)+(SELECT count(*) FROM semel_log)+(SELECT count(*) FROM semel_events)+(SELECT count(*) FROM semel_code) , (SELECT count(*) FROM semel_txs)" one$round
  $B --store postgres://semel@127.0.0.1:55434/two$round bench --batch 256 --threads 1 --txs 10000 --json > $D/a.json &
  $B --store postgres://semel@127.0.0.1:55434/two$round bench --batch 256 --threads 1 --txs 10000 --json > $D/b.json
  wait %1 || true
  echo "round $round two hosts: $(j < $D/a.json) | $(j < $D/b.json)"
  echo "versions: $(psql 'SELECT count(*) FROM semel_log' two$round)"
done
# The floor: one pgbench transaction writes what one group commit of 256 counter
# increments writes (7 rows per transaction, the 2 KiB lattice, the session token).
for t in state txs log events meta; do psql "CREATE TABLE f_$t (k bytea PRIMARY KEY, v bytea NOT NULL)"; done
psql "CREATE TABLE f_sessions (session bytea PRIMARY KEY, token bytea NOT NULL)"
psql "INSERT INTO f_sessions VALUES ('\x01', '\x')"; psql "INSERT INTO f_meta VALUES ('\x76', '\x00')"
for round in 1 2; do
  echo "floor round $round (x256 for tx/s): $($PGB/pgbench -h 127.0.0.1 -p 55434 -U semel -n -f "$HERE/pg_floor.sql" -t 80 -c 1 postgres 2>&1 | grep tps)"
done
